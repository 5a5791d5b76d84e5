package build

import (
	"path"
	"slices"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"

	"github.com/larder-build/larder/cache"
)

// dockerfilePresets are the presets whose warnings apply to a Dockerfile's
// RUN lines, when the line mounts one of their caches.
var dockerfilePresets = []*cache.Preset{cache.Apt(), cache.Pip(), cache.Npm(), cache.Go(), cache.Cargo(),
	cache.Yarn(), cache.YarnBerry(), cache.Pnpm(), cache.UV(), cache.Poetry(), cache.Bundler(), cache.Composer(),
	cache.Maven(), cache.Gradle(), cache.NuGet(), cache.Apk(), cache.Dnf(), cache.Ccache()}

// runCaches returns the cache mounts of run, with their ids as the
// converter names them ("/" and the id, or the target when there is none).
func runCaches(run *instructions.RunCommand) map[string]string {
	// The parser reads a mount's fields only when it expands them.
	if err := run.Expand(func(w string) (string, error) { return w, nil }); err != nil {
		return nil
	}
	caches := map[string]string{} // id: target
	for _, m := range instructions.GetMounts(run) {
		if m.Type == instructions.MountTypeCache && m.Target != "" {
			id := m.CacheID
			if id == "" {
				id = path.Clean(m.Target)
			}
			caches["/"+id] = path.Clean(m.Target)
		}
	}
	return caches
}

// regenerable returns, for each of caches (id: target), the files that the
// tool whose preset caches that target rebuilds on its own; persistence
// leaves them out, as it does for the preset's own mounts.
func regenerable(caches map[string]string) map[string][]string {
	out := map[string][]string{}
	for id, target := range caches {
		for _, p := range dockerfilePresets {
			for _, c := range p.Caches() {
				if c.Target == target && len(c.Regenerable) > 0 {
					out[id] = c.Regenerable
				}
			}
		}
	}
	return out
}

// runWarnings returns what run does that defeats one of its cache mounts
// (caches, id: target), as the preset of that cache's tool would warn on a
// step of Larder's own.
func runWarnings(run *instructions.RunCommand, caches map[string]string) []string {
	var targets []string
	for _, t := range caches {
		targets = append(targets, t)
	}
	if len(targets) == 0 {
		return nil
	}
	args := run.CmdLine
	if run.PrependShell {
		args = []string{"/bin/sh", "-c", strings.Join(run.CmdLine, " ")}
	}
	var out []string
	for _, p := range dockerfilePresets {
		if !slices.ContainsFunc(p.Targets(), func(t string) bool { return slices.Contains(targets, t) }) {
			continue
		}
		for _, w := range p.Warnings(args) {
			// Only what defeats a cache the line mounts.
			msg := "RUN " + quoteShort(strings.Join(run.CmdLine, " ")) + ": " + w
			if slices.ContainsFunc(targets, func(t string) bool { return strings.Contains(w, t) }) && !slices.Contains(out, msg) {
				out = append(out, msg)
			}
		}
	}
	return out
}
