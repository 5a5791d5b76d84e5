package cache

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/larder-build/larder/cache/internal/shell"
)

// notImage ends the warnings about commands that empty a cache.
const notImage = "the cache is not part of the image, so this saves no space and the next build downloads it again: leave it out"

// boolWord reads a tool's boolean setting as written in the environment:
// true for "true", "1", "yes" and "on", false for "false", "0", "no" and
// "off"; ok is false for anything else.
func boolWord(s string) (v, ok bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1", "yes", "on":
		return true, true
	case "false", "0", "no", "off":
		return false, true
	}
	return false, false
}

// assigned returns the values the command gives the variable name.
func assigned(c shell.Command, name string) []string {
	var out []string
	for _, a := range c.Assigns {
		if a.Name == name {
			out = append(out, a.Value)
		}
	}
	return out
}

// ownArgs returns args up to the first operand at or after index from
// (skipping the values of the options in withValue) and up to a "--": the
// arguments of a tool before those of the command it runs.
func ownArgs(args []string, from int, withValue ...string) []string {
	for i := from; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return args[:i]
		case strings.HasPrefix(a, "-") && len(a) > 1:
			if slices.Contains(withValue, a) {
				i++
			}
		default:
			return args[:i]
		}
	}
	return args
}

// hasArg reports whether args[1:] holds one of names, alone or as
// name=value.
func hasArg(args []string, names ...string) bool {
	for _, a := range args[1:] {
		for _, n := range names {
			if a == n || strings.HasPrefix(a, n+"=") {
				return true
			}
		}
	}
	return false
}

// subcommands returns the first two operands of args, such as "cache" and
// "clean", and the arguments after the second, skipping the values of the
// options in withValue.
func subcommands(args []string, withValue ...string) (string, string, []string) {
	sub, rest := firstOperand(args, withValue...)
	op, rest := firstOperand(append([]string{sub}, rest...), withValue...)
	return sub, op, rest
}

// elsewhere reports the value of the option name in args when it names a
// directory other than dir.
func elsewhere(args []string, name, dir string) (string, bool) {
	v, ok := optionValue(args, name)
	return v, ok && path.Clean(v) != dir
}

func yarnWarnings(p *Preset, cmds []shell.Command) []string {
	dir := p.caches[0].target
	var out []string
	for _, c := range cmds {
		if c.Name() != "yarn" && c.Name() != "yarnpkg" {
			continue
		}
		if sub, op, _ := subcommands(c.Args, "--cache-folder", "--cwd", "--modules-folder", "--global-folder", "--mutex", "--registry", "--network-timeout", "--use-yarnrc"); sub == "cache" && op == "clean" {
			out = append(out, fmt.Sprintf("yarn preset: %q empties the cache at %s; %s", c.Text(), dir, notImage))
		}
		if v, ok := elsewhere(c.Args, "--cache-folder", dir); ok {
			out = append(out, fmt.Sprintf("yarn preset: --cache-folder %s points yarn away from the preset's cache at %s, so the cache saves nothing: leave it out", v, dir))
		}
	}
	return out
}

func yarnBerryWarnings(p *Preset, cmds []shell.Command) []string {
	dir := p.caches[0].target
	var out []string
	for _, c := range cmds {
		for _, v := range assigned(c, "YARN_ENABLE_GLOBAL_CACHE") {
			if on, _ := boolWord(v); on {
				out = append(out, fmt.Sprintf("yarnberry preset: YARN_ENABLE_GLOBAL_CACHE=%s makes a Plug'n'Play install load its packages from %s, which is not part of the image, so the image cannot run them: leave it out", v, dir))
			}
		}
		for _, v := range assigned(c, "YARN_ENABLE_MIRROR") {
			if on, ok := boolWord(v); ok && !on {
				out = append(out, fmt.Sprintf("yarnberry preset: YARN_ENABLE_MIRROR=%s keeps yarn from its mirror at %s, so the cache saves nothing: leave it out", v, path.Join(dir, "cache")))
			}
		}
		if c.Name() != "yarn" && c.Name() != "yarnpkg" {
			continue
		}
		if sub, op, _ := subcommands(c.Args, "--cwd"); sub == "cache" && op == "clean" && hasArg(c.Args, "--mirror", "--all") {
			out = append(out, fmt.Sprintf("yarnberry preset: %q empties the mirror at %s; %s", c.Text(), path.Join(dir, "cache"), notImage))
		}
	}
	return out
}

func pnpmWarnings(p *Preset, cmds []shell.Command) []string {
	dir := p.caches[0].target
	var out []string
	for _, c := range cmds {
		if c.Name() != "pnpm" {
			continue
		}
		if sub, op, _ := subcommands(c.Args, "--store-dir", "--dir", "-C", "--filter", "-F", "--reporter", "--loglevel", "--workspace-concurrency", "--virtual-store-dir", "--modules-dir", "--registry", "--config-dir"); sub == "store" && op == "prune" {
			out = append(out, fmt.Sprintf("pnpm preset: %q deletes the packages other builds use from the store at %s; %s", c.Text(), dir, notImage))
		}
		if v, ok := elsewhere(c.Args, "--store-dir", dir); ok {
			out = append(out, fmt.Sprintf("pnpm preset: --store-dir %s points pnpm away from the preset's store at %s, so the cache saves nothing: leave it out", v, dir))
		}
	}
	return out
}

// uvWithValue are uv's options that take a value, among those that come
// before the command `uv run` and uvx run.
var uvWithValue = []string{"--cache-dir", "--directory", "--project", "--config-file", "--color", "--python", "-p",
	"--link-mode", "--with", "-w", "--with-requirements", "--with-editable", "--from", "--package", "--extra",
	"--group", "--env-file", "--index", "--index-url", "-i", "--default-index", "--extra-index-url", "--find-links", "-f"}

func uvWarnings(p *Preset, cmds []shell.Command) []string {
	dir := p.caches[0].target
	var out []string
	for _, c := range cmds {
		for _, v := range assigned(c, "UV_NO_CACHE") {
			if on, _ := boolWord(v); on {
				out = append(out, fmt.Sprintf("uv preset: UV_NO_CACHE=%s keeps uv away from the cache at %s, so the cache saves nothing: leave it out (the cache is not part of the image)", v, dir))
			}
		}
		for _, v := range assigned(c, "UV_LINK_MODE") {
			if v == "symlink" {
				out = append(out, fmt.Sprintf("uv preset: UV_LINK_MODE=symlink links the installed packages to the cache at %s, which is not part of the image, so the image's environment is broken: leave it out", dir))
			}
		}
		var args []string
		switch c.Name() {
		case "uvx":
			args = ownArgs(c.Args, 1, uvWithValue...)
		case "uv":
			args = c.Args
			sub, rest := firstOperand(args, uvWithValue...)
			if sub == "tool" {
				sub, rest = firstOperand(append([]string{sub}, rest...), uvWithValue...)
			}
			if sub == "run" {
				args = ownArgs(args, len(args)-len(rest), uvWithValue...)
			}
			if s, op, rest := subcommands(args, uvWithValue...); s == "cache" && (op == "clean" || op == "prune" && slices.Contains(rest, "--ci")) {
				out = append(out, fmt.Sprintf("uv preset: %q empties the cache at %s; %s", c.Text(), dir, notImage))
			}
		default:
			continue
		}
		if slices.Contains(args[1:], "--no-cache") || slices.Contains(args[1:], "-n") {
			out = append(out, fmt.Sprintf("uv preset: --no-cache keeps uv away from the cache at %s, so the cache saves nothing: leave it out (the cache is not part of the image)", dir))
		}
		if v, ok := elsewhere(args, "--cache-dir", dir); ok {
			out = append(out, fmt.Sprintf("uv preset: --cache-dir %s points uv away from the preset's cache at %s, so the cache saves nothing: leave it out", v, dir))
		}
		if v, _ := optionValue(args, "--link-mode"); v == "symlink" {
			out = append(out, fmt.Sprintf("uv preset: --link-mode symlink links the installed packages to the cache at %s, which is not part of the image, so the image's environment is broken: leave it out", dir))
		}
	}
	return out
}

func poetryWarnings(p *Preset, cmds []shell.Command) []string {
	dirs := p.caches[0].target + " and " + p.caches[1].target
	var out []string
	for _, c := range cmds {
		if c.Name() != "poetry" {
			continue
		}
		args := c.Args
		withValue := []string{"-C", "--directory", "-P", "--project"}
		sub, rest := firstOperand(args, withValue...)
		if sub == "run" {
			args = args[:len(args)-len(rest)-1]
		}
		if sub == "cache" && slices.Contains(rest, "clear") && hasArg(args, "--all") {
			out = append(out, fmt.Sprintf("poetry preset: %q empties the caches at %s; %s", c.Text(), dirs, notImage))
		}
		if slices.Contains(args[1:], "--no-cache") {
			out = append(out, fmt.Sprintf("poetry preset: --no-cache keeps poetry away from its caches at %s, so they save nothing: leave it out (the caches are not part of the image)", dirs))
		}
	}
	return out
}

func bundlerWarnings(p *Preset, cmds []shell.Command) []string {
	dir := p.caches[0].target
	var out []string
	for _, c := range cmds {
		for _, v := range assigned(c, "BUNDLE_GLOBAL_GEM_CACHE") {
			if on, ok := boolWord(v); ok && !on {
				out = append(out, fmt.Sprintf("bundler preset: BUNDLE_GLOBAL_GEM_CACHE=%s keeps the gems Bundler downloads out of the cache at %s, so the next build downloads them again: leave it out", v, dir))
			}
		}
	}
	return out
}

// composerArgs returns the arguments of Composer when c runs it, directly
// or as `php composer.phar`.
func composerArgs(c shell.Command) ([]string, bool) {
	switch c.Name() {
	case "composer", "composer.phar":
		return c.Args, true
	case "php":
		if args := ownArgs(c.Args, 1, "-c", "-d"); len(args) < len(c.Args) {
			switch path.Base(c.Args[len(args)]) {
			case "composer", "composer.phar":
				return c.Args[len(args):], true
			}
		}
	}
	return nil, false
}

func composerWarnings(p *Preset, cmds []shell.Command) []string {
	dir := p.caches[0].target
	var out []string
	for _, c := range cmds {
		args, ok := composerArgs(c)
		if !ok {
			continue
		}
		if i := slices.Index(args, "--"); i >= 0 { // a script's arguments follow
			args = args[:i]
		}
		switch sub, _ := firstOperand(args, "--working-dir", "-d"); sub {
		case "clear-cache", "clearcache", "cc":
			out = append(out, fmt.Sprintf("composer preset: %q empties the cache at %s; %s", c.Text(), dir, notImage))
		}
		if slices.Contains(args[1:], "--no-cache") {
			out = append(out, fmt.Sprintf("composer preset: --no-cache keeps composer away from the cache at %s, so the cache saves nothing: leave it out (the cache is not part of the image)", dir))
		}
	}
	return out
}

// mavenRepoLocal returns the absolute, cleaned directory that
// -Dmaven.repo.local gives in opts, a MAVEN_OPTS or MAVEN_ARGS value; ""
// when it gives none or a relative one.
func mavenRepoLocal(opts string) string {
	v, ok := mavenRepoArg(strings.Fields(opts))
	if !ok || !path.IsAbs(v) {
		return ""
	}
	return path.Clean(v)
}

// mavenRepoArg returns the last -Dmaven.repo.local value in args, written
// -Dmaven.repo.local=<dir> or -D maven.repo.local=<dir>.
func mavenRepoArg(args []string) (string, bool) {
	var v string
	var ok bool
	for i, a := range args {
		prop, found := strings.CutPrefix(a, "-D")
		if found && prop == "" && i+1 < len(args) {
			prop = args[i+1]
		}
		if val, is := strings.CutPrefix(prop, "maven.repo.local="); found && is {
			v, ok = strings.Trim(val, `"'`), true
		}
	}
	return v, ok
}

func mavenWarnings(p *Preset, cmds []shell.Command) []string {
	repo := p.caches[0].target
	var out []string
	other := func(v string) bool { return !path.IsAbs(v) || path.Clean(v) != repo }
	for _, c := range cmds {
		for _, name := range []string{"MAVEN_OPTS", "MAVEN_ARGS"} {
			for _, v := range assigned(c, name) {
				if dir, ok := mavenRepoArg(strings.Fields(v)); ok && other(dir) {
					out = append(out, fmt.Sprintf("maven preset: -Dmaven.repo.local=%s in %s points maven away from the preset's repository at %s, so the cache saves nothing: leave it out", dir, name, repo))
				}
			}
		}
		switch c.Name() {
		case "mvn", "mvnw", "mvnd":
		default:
			continue
		}
		for _, a := range c.Args[1:] {
			if !strings.HasPrefix(a, "-") && (a == "dependency:purge-local-repository" || strings.HasSuffix(a, ":purge-local-repository")) {
				out = append(out, fmt.Sprintf("maven preset: %q deletes the project's dependencies from the repository at %s; %s", c.Text(), repo, notImage))
				break
			}
		}
		if dir, ok := mavenRepoArg(c.Args[1:]); ok && other(dir) {
			out = append(out, fmt.Sprintf("maven preset: -Dmaven.repo.local=%s points maven away from the preset's repository at %s, so the cache saves nothing: leave it out", dir, repo))
		}
	}
	return out
}

func gradleWarnings(p *Preset, cmds []shell.Command) []string {
	caches := p.caches[0].target
	home := path.Dir(caches)
	dirs := caches + " and " + p.caches[1].target
	var out []string
	for _, c := range cmds {
		if c.Name() != "gradle" && c.Name() != "gradlew" {
			continue
		}
		if slices.Contains(c.Args[1:], "--no-build-cache") {
			out = append(out, fmt.Sprintf("gradle preset: --no-build-cache turns off Gradle's build cache, which the preset keeps in %s, so task outputs are built again: leave it out (the cache is not part of the image)", path.Join(caches, "build-cache-1")))
		}
		for _, name := range []string{"-g", "--gradle-user-home"} {
			if v, ok := elsewhere(c.Args, name, home); ok {
				out = append(out, fmt.Sprintf("gradle preset: %s %s points gradle away from the preset's caches at %s, so they save nothing: leave it out", name, v, dirs))
			}
		}
	}
	return out
}

func nugetWarnings(p *Preset, cmds []shell.Command) []string {
	dir := p.caches[0].target
	var out []string
	for _, c := range cmds {
		var locals []string
		switch c.Name() {
		case "dotnet":
			if sub, op, rest := subcommands(c.Args); sub == "nuget" && op == "locals" {
				locals = rest
			}
			if v, ok := elsewhere(c.Args, "--packages", dir); ok {
				out = append(out, fmt.Sprintf("nuget preset: --packages %s points NuGet away from the preset's global packages folder at %s, so the cache saves nothing: leave it out", v, dir))
			}
		case "nuget", "nuget.exe":
			if sub, rest := firstOperand(c.Args); sub == "locals" {
				locals = rest
			}
		}
		if len(locals) == 0 {
			continue
		}
		which, _ := firstOperand(append([]string{"locals"}, locals...))
		which = strings.ToLower(which)
		clear := slices.ContainsFunc(locals, func(a string) bool {
			a = strings.ToLower(a)
			return a == "--clear" || a == "-c" || a == "-clear"
		})
		if clear && (which == "all" || which == "global-packages") {
			out = append(out, fmt.Sprintf("nuget preset: %q empties the global packages folder at %s; %s", c.Text(), dir, notImage))
		}
	}
	return out
}

func apkWarnings(p *Preset, cmds []shell.Command) []string {
	dir := p.caches[0].target
	var out []string
	for _, c := range cmds {
		if c.Name() != "apk" {
			continue
		}
		if slices.Contains(c.Args[1:], "--no-cache") {
			out = append(out, fmt.Sprintf("apk preset: --no-cache keeps apk away from the cache at %s, so the cache saves nothing: leave it out (the cache is not part of the image, so it does not make the image bigger)", dir))
		}
		if v, ok := elsewhere(c.Args, "--cache-dir", dir); ok {
			out = append(out, fmt.Sprintf("apk preset: --cache-dir %s points apk away from the preset's cache at %s, so the cache saves nothing: leave it out", v, dir))
		}
		sub, op, _ := subcommands(c.Args, "-X", "--repository", "-p", "--root", "--cache-dir", "--keys-dir", "--repositories-file", "--arch", "--timeout", "-t", "--virtual")
		if sub == "cache" && (op == "clean" || op == "purge" || op == "sync") {
			out = append(out, fmt.Sprintf("apk preset: %q deletes the packages other builds use from the cache at %s; %s", c.Text(), dir, notImage))
		}
	}
	return out
}

func dnfWarnings(p *Preset, cmds []shell.Command) []string {
	dirs := p.caches[0].target + " and " + p.caches[1].target
	var out []string
	for _, c := range cmds {
		switch c.Name() {
		case "dnf", "dnf5", "dnf-3", "dnf4", "yum":
		default:
			continue
		}
		if sub, _ := firstOperand(c.Args, "--setopt", "-c", "--config", "--installroot", "--releasever", "--repo", "--repoid",
			"--enablerepo", "--disablerepo", "-x", "--exclude", "--destdir", "--downloaddir", "--forcearch", "--color", "-d", "--debuglevel", "-e", "--errorlevel"); sub == "clean" {
			out = append(out, fmt.Sprintf("dnf preset: %q empties the caches at %s; %s", c.Text(), dirs, notImage))
		}
		for i, a := range c.Args {
			opt, ok := strings.CutPrefix(a, "--setopt=")
			if a == "--setopt" && i+1 < len(c.Args) {
				opt, ok = c.Args[i+1], true
			}
			if v, is := strings.CutPrefix(opt, "keepcache="); ok && is {
				if on, known := boolWord(v); known && !on {
					out = append(out, fmt.Sprintf("dnf preset: --setopt=keepcache=%s deletes the downloaded packages from the caches at %s, so the next build downloads them again: leave it out", v, dirs))
				}
			}
		}
	}
	return out
}

// ccacheWithValue are ccache's options that take a value.
var ccacheWithValue = []string{"-M", "--max-size", "-F", "--max-files", "-o", "--set-config", "-d", "--dir",
	"-X", "--recompress", "-k", "--get-config", "--evict-older-than", "--evict-namespace"}

func ccacheWarnings(p *Preset, cmds []shell.Command) []string {
	dir := p.caches[0].target
	var out []string
	for _, c := range cmds {
		for _, v := range assigned(c, "CCACHE_DISABLE") {
			if on, ok := boolWord(v); on || !ok && v != "" {
				out = append(out, fmt.Sprintf("ccache preset: CCACHE_DISABLE=%s turns ccache off, so the cache at %s saves nothing: leave it out", v, dir))
			}
		}
		for _, v := range assigned(c, "CCACHE_RECACHE") {
			if on, ok := boolWord(v); on || !ok && v != "" {
				out = append(out, fmt.Sprintf("ccache preset: CCACHE_RECACHE=%s makes ccache compile everything again instead of reading the cache at %s: leave it out", v, dir))
			}
		}
		if c.Name() != "ccache" {
			continue
		}
		// ccache's own options come before the compiler it runs.
		args := ownArgs(c.Args, 1, ccacheWithValue...)
		if slices.Contains(args[1:], "-C") || slices.Contains(args[1:], "--clear") {
			out = append(out, fmt.Sprintf("ccache preset: %q empties the cache at %s; the cache is not part of the image, so this saves no space and the next build compiles everything again: leave it out", c.Text(), dir))
		}
		for _, name := range []string{"-o", "--set-config"} {
			if v, _ := optionValue(args, name); strings.HasPrefix(strings.ReplaceAll(v, " ", ""), "disable=") {
				if on, _ := boolWord(v[strings.IndexByte(v, '=')+1:]); on {
					out = append(out, fmt.Sprintf("ccache preset: %q turns ccache off in the configuration of the cache at %s, for every later build that uses it: leave it out", c.Text(), dir))
				}
			}
		}
	}
	return out
}
