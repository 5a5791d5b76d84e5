package cache

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/larder-build/larder/cache/internal/shell"
)

// Warnings returns what the command args does that defeats the preset's
// caches, one message each: pip's --no-cache-dir under the pip preset,
// emptying /var/lib/apt/lists under the apt preset, `npm cache clean`,
// `go clean -modcache`, `cargo clean`, deleting a cache directory with rm,
// or pointing the tool at another cache with an environment variable. args
// is the step's argv; a shell's -c script (["/bin/sh", "-c", "…"]) is read
// command by command, through &&, ;, pipes and nested sh -c. Warnings reads
// commands as written and does not expand variables other than the preset's
// own and HOME; it never changes the step.
func (p *Preset) Warnings(args []string) []string {
	if p == nil || p.tool == "" || len(args) == 0 {
		return nil
	}
	vars := map[string]string{"HOME": p.home}
	for _, e := range p.env {
		vars[e.name] = e.value
	}
	cmds := shell.Commands(args, vars)
	var out []string
	add := func(msg string) {
		if !slices.Contains(out, msg) {
			out = append(out, msg)
		}
	}
	for _, msg := range p.rmWarnings(cmds) {
		add(msg)
	}
	for _, msg := range p.envWarnings(cmds) {
		add(msg)
	}
	if p.warn != nil {
		for _, msg := range p.warn(p, cmds) {
			add(msg)
		}
	}
	return out
}

// rmWarnings reports rm commands that delete a cache directory or what is
// in it.
func (p *Preset) rmWarnings(cmds []shell.Command) []string {
	var out []string
	for _, c := range cmds {
		if c.Name() != "rm" {
			continue
		}
		recursive := false
		var operands []string
		flags := true
		for _, a := range c.Args[1:] {
			switch {
			case flags && a == "--":
				flags = false
			case flags && strings.HasPrefix(a, "--"):
				if a == "--recursive" {
					recursive = true
				}
			case flags && strings.HasPrefix(a, "-") && len(a) > 1:
				if strings.ContainsAny(a[1:], "rR") {
					recursive = true
				}
			default:
				operands = append(operands, a)
			}
		}
		for _, op := range operands {
			dir, ok := globDir(op)
			if !ok {
				continue
			}
			for _, cd := range p.caches {
				inside := within(dir, cd.target) && (dir != cd.target || recursive || dir != path.Clean(op))
				if inside || (recursive && within(cd.target, dir) && dir != cd.target) {
					out = append(out, fmt.Sprintf("%s preset: %q deletes what the cache at %s holds; the cache is not part of the image, so this saves no space and the next build downloads it again: leave it out",
						p.tool, c.Text(), cd.target))
					break
				}
			}
		}
	}
	return out
}

// envWarnings reports commands that point the tool at another cache than
// the preset's, through one of the variables the preset sets.
func (p *Preset) envWarnings(cmds []shell.Command) []string {
	var out []string
	for _, c := range cmds {
		for _, a := range c.Assigns {
			for _, e := range p.env {
				if a.Name == e.name && path.IsAbs(e.value) && path.Clean(a.Value) != e.value {
					out = append(out, fmt.Sprintf("%s preset: %s=%s points %s away from the preset's cache at %s, so the cache saves nothing: leave it out",
						p.tool, a.Name, a.Value, p.tool, e.value))
				}
			}
		}
	}
	return out
}

// within reports whether the clean absolute path p is dir or inside it.
func within(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

// globDir returns the directory an rm operand names, up to its first
// element with a wildcard, and false for a relative operand, which depends
// on the working directory.
func globDir(op string) (string, bool) {
	if !path.IsAbs(op) {
		return "", false
	}
	elems := strings.Split(path.Clean(op), "/")
	for i, e := range elems {
		if strings.ContainsAny(e, "*?[") {
			return path.Clean("/" + strings.Join(elems[:i], "/")), true
		}
	}
	return path.Clean(op), true
}
