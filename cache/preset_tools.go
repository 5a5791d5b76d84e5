package cache

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/larder-build/larder/cache/internal/shell"
	"github.com/larder-build/larder/mounts"
)

// AptKeepCacheFile is the path of the configuration file the apt preset
// mounts into its step to keep downloaded packages; see Apt.
const AptKeepCacheFile = "/etc/apt/apt.conf.d/larder-keep-cache"

// aptDockerClean is the file of Docker's official Debian and Ubuntu images
// that deletes downloaded packages after every install.
const aptDockerClean = "/etc/apt/apt.conf.d/docker-clean"

// aptKeepCache is the content of AptKeepCacheFile.
const aptKeepCache = `APT::Keep-Downloaded-Packages "true";
Binary::apt::APT::Keep-Downloaded-Packages "true";
`

// AptUnsafeIOFile is the path of the dpkg configuration file the apt
// preset mounts into its step to make dpkg unpack without syncing each
// file; see Apt.
const AptUnsafeIOFile = "/etc/dpkg/dpkg.cfg.d/larder-unsafe-io"

// aptUnsafeIO is the content of AptUnsafeIOFile.
const aptUnsafeIO = "force-unsafe-io\n"

// Apt returns the preset for apt-get and apt on Debian and Ubuntu: cache
// mounts at /var/cache/apt (downloaded packages and apt's binary caches)
// and /var/lib/apt (package lists), both Locked, because apt locks them and
// fails when another process holds the lock.
//
// Docker's official images delete downloaded packages after every install
// (/etc/apt/apt.conf.d/docker-clean), and apt (unlike apt-get) deletes them
// by default. So that the cache keeps them, the preset shows the step
// read-only files, mounted like the caches and never part of the result: an
// empty file over /etc/apt/apt.conf.d/docker-clean, and AptKeepCacheFile,
// which sets APT::Keep-Downloaded-Packages and
// Binary::apt::APT::Keep-Downloaded-Packages to "true". No step changes the
// image's /etc, so the preset adds no layer of its own; BuildKit removes
// the empty mount points it had to create. Leave out the usual
// `rm -f /etc/apt/apt.conf.d/docker-clean`: in the step the file is a mount
// point, which rm cannot remove (Warnings says so).
//
// A third file, AptUnsafeIOFile, is a dpkg configuration file holding
// force-unsafe-io: dpkg then unpacks without syncing each file to disk, as
// in Docker's official Debian images, whose
// /etc/dpkg/dpkg.cfg.d/docker-apt-speedup says the same. The files
// installed are the same; only a crash of the builder during the step could
// tell, and a build throws such a step away. It makes the step faster where
// syncing is slow; how much depends on the builder's disk.
//
// apt's binary caches, /var/cache/apt/pkgcache.bin and srcpkgcache.bin
// (tens of megabytes, rebuilt from the package lists in about a second),
// are Regenerable: they stay in the cache on the builder, and
// build.PersistCacheMounts leaves them out of its artifacts.
//
// /var/lib/apt also holds apt's extended_states, the record of which
// packages were installed as dependencies; with the preset it stays in the
// cache, so the image's record is the base image's.
//
// The preset sets no environment variable. Its options are Project,
// Sharing, AcrossPlatforms and Owner. See Preset for what of it is part of the step's
// cache key.
func Apt(opts ...AptOption) *Preset {
	return newPreset("apt", opts, func(c *presetConfig, p *Preset) {
		// apt rebuilds its binary caches from the package lists.
		p.addCache("/var/cache/apt", mounts.Locked, "pkgcache.bin", "srcpkgcache.bin")
		p.addCache("/var/lib/apt", mounts.Locked)
		p.files = []File{
			{Path: aptDockerClean, Content: ""},
			{Path: AptKeepCacheFile, Content: aptKeepCache},
			{Path: AptUnsafeIOFile, Content: aptUnsafeIO},
		}
		p.warn = aptWarnings
	})
}

// Pip returns the preset for pip: a Shared cache mount at
// <home>/.cache/pip, pip's own default for the user (/root/.cache/pip), and
// PIP_CACHE_DIR set to it. Pip locks the files of its cache itself, so steps
// can share it. Its options are Project, Sharing, AcrossPlatforms, Owner
// and Home. See Preset for what of it is part of the step's cache key.
// Warnings reports --no-cache-dir, PIP_NO_CACHE_DIR and `pip cache purge`.
func Pip(opts ...PipOption) *Preset {
	return newPreset("pip", opts, func(c *presetConfig, p *Preset) {
		dir := c.getenv("PIP_CACHE_DIR")
		if dir == "" {
			dir = path.Join(c.cacheHome(), "pip")
		}
		p.addCache(dir, mounts.Shared)
		p.setEnv("PIP_CACHE_DIR", dir)
		p.warn = pipWarnings
	})
}

// Npm returns the preset for npm: a Shared cache mount at <home>/.npm,
// npm's own default for the user (/root/.npm), and npm_config_cache set to
// it. npm's cache is content-addressed and safe to share between steps.
// Its options are Project, Sharing, AcrossPlatforms, Owner and Home.
// See Preset for what of it is part of the step's cache key. Warnings
// reports `npm cache clean` and --cache.
func Npm(opts ...NpmOption) *Preset {
	return newPreset("npm", opts, func(c *presetConfig, p *Preset) {
		dir := c.getenv("npm_config_cache")
		if dir == "" {
			dir = path.Join(c.home, ".npm")
		}
		p.addCache(dir, mounts.Shared)
		p.setEnv("npm_config_cache", dir)
		p.warn = npmWarnings
	})
}

// Go returns the preset for the go command: Shared cache mounts at
// <gopath>/pkg/mod, the module cache (/go/pkg/mod), and at
// <home>/.cache/go-build, the build cache (/root/.cache/go-build), with
// GOMODCACHE and GOCACHE set to them. The go command locks both itself.
// The module cache holds the same files on every platform: give
// AcrossPlatforms("/go/pkg/mod") to download modules once for all of them.
// Its options are Project, Sharing, AcrossPlatforms, Owner, Home and
// GoPath. See Preset for what of it is part of the step's cache key.
// Warnings reports `go clean -modcache` and `go clean -cache`.
func Go(opts ...GoOption) *Preset {
	return newPreset("go", opts, func(c *presetConfig, p *Preset) {
		mod := path.Join(c.goPath, "pkg/mod")
		if c.goPath == "" {
			mod = c.getenv("GOMODCACHE")
		}
		if mod == "" {
			gopath, _, _ := strings.Cut(c.getenv("GOPATH"), ":")
			if gopath == "" {
				gopath = "/go"
			}
			mod = path.Join(gopath, "pkg/mod")
		}
		build := c.getenv("GOCACHE")
		if build == "" {
			build = path.Join(c.cacheHome(), "go-build")
		}
		p.addCache(mod, mounts.Shared)
		p.addCache(build, mounts.Shared)
		p.setEnv("GOMODCACHE", mod)
		p.setEnv("GOCACHE", build)
		p.warn = goWarnings
	})
}

// Cargo returns the preset for Rust's cargo: Shared cache mounts at
// $CARGO_HOME/registry (the registry index, downloaded crates and their
// sources) and $CARGO_HOME/git/db (git dependencies), and a Locked one at
// the target directory, which cargo does not let two builds use at once.
// It sets CARGO_HOME (default the step's own $CARGO_HOME, as the official
// rust images set /usr/local/cargo, else <home>/.cargo; see CargoHome) and
// CARGO_TARGET_DIR (default the step's $CARGO_TARGET_DIR, else
// <home>/.cache/cargo-target; see TargetDir), so the target directory is
// used wherever the workspace is. What cargo builds stays in the cache, not
// in the image: copy the binaries the image needs out of $CARGO_TARGET_DIR
// in the same step. Give each workspace its own Project, or its own
// TargetDir.
//
// Its options are Project, Sharing, AcrossPlatforms, Owner, Home,
// CargoHome and TargetDir. See Preset for what of it is part of the step's
// cache key. Warnings reports `cargo clean` (without -p) and --target-dir.
func Cargo(opts ...CargoOption) *Preset {
	return newPreset("cargo", opts, func(c *presetConfig, p *Preset) {
		home := c.cargoHome
		if home == "" {
			home = c.getenv("CARGO_HOME")
		}
		if home == "" {
			home = path.Join(c.home, ".cargo")
		}
		target := c.targetDir
		if target == "" {
			target = c.getenv("CARGO_TARGET_DIR")
		}
		if target == "" {
			target = path.Join(c.cacheHome(), "cargo-target")
		}
		p.addCache(path.Join(home, "registry"), mounts.Shared)
		p.addCache(path.Join(home, "git/db"), mounts.Shared)
		p.addCache(target, mounts.Locked)
		p.setEnv("CARGO_HOME", home)
		p.setEnv("CARGO_TARGET_DIR", target)
		p.warn = cargoWarnings
	})
}

// firstOperand returns the first argument after args[0] that is not an
// option, skipping the values of the options in withValue, and the
// arguments after it.
func firstOperand(args []string, withValue ...string) (string, []string) {
	for i := 1; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") || strings.HasPrefix(a, "+") {
			if slices.Contains(withValue, a) {
				i++
			}
			continue
		}
		return a, args[i+1:]
	}
	return "", nil
}

// optionValue returns the value of the option name (--name value or
// --name=value) in args.
func optionValue(args []string, name string) (string, bool) {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1], true
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v, true
		}
	}
	return "", false
}

func aptWarnings(p *Preset, cmds []shell.Command) []string {
	var out []string
	for _, c := range cmds {
		switch c.Name() {
		case "apt-get", "apt", "aptitude":
			sub, _ := firstOperand(c.Args, "-o", "-c", "-t", "--option", "--config-file", "--target-release")
			switch sub {
			case "clean", "autoclean", "auto-clean", "distclean", "dist-clean":
				out = append(out, fmt.Sprintf("apt preset: %q empties the cache at /var/cache/apt; the cache is not part of the image, so this saves no space and the next build downloads the packages again: leave it out", c.Text()))
			}
		case "rm":
			for _, a := range c.Args[1:] {
				if path.IsAbs(a) && path.Clean(a) == aptDockerClean {
					out = append(out, fmt.Sprintf("apt preset: %q fails: the preset mounts an empty file over %s for the step, so it does not delete packages, and rm cannot remove a mount point: leave it out", c.Text(), aptDockerClean))
				}
			}
		}
	}
	return out
}

// isPip reports whether c runs pip, and returns pip's arguments.
func isPip(c shell.Command) ([]string, bool) {
	name := c.Name()
	if name == "pip" || strings.HasPrefix(name, "pip3") || strings.HasPrefix(name, "pip2") {
		return c.Args, true
	}
	if strings.HasPrefix(name, "python") || strings.HasPrefix(name, "pypy") {
		for i := 1; i+1 < len(c.Args); i++ {
			if c.Args[i] == "-m" && c.Args[i+1] == "pip" {
				return c.Args[i+1:], true
			}
		}
	}
	return nil, false
}

func pipWarnings(p *Preset, cmds []shell.Command) []string {
	dir := p.caches[0].target
	var out []string
	for _, c := range cmds {
		for _, a := range c.Assigns {
			if a.Name == "PIP_NO_CACHE_DIR" {
				out = append(out, fmt.Sprintf("pip preset: PIP_NO_CACHE_DIR turns pip's cache off, so the cache at %s saves nothing: leave it out (the cache is not part of the image)", dir))
			}
		}
		args, ok := isPip(c)
		if !ok {
			continue
		}
		for _, a := range args[1:] {
			if a == "--no-cache-dir" || strings.HasPrefix(a, "--no-cache-dir=") {
				out = append(out, fmt.Sprintf("pip preset: --no-cache-dir turns pip's cache off, so the cache at %s saves nothing: leave it out (the cache is not part of the image, so it does not make the image bigger)", dir))
				break
			}
		}
		if v, ok := optionValue(args, "--cache-dir"); ok && path.Clean(v) != dir {
			out = append(out, fmt.Sprintf("pip preset: --cache-dir %s points pip away from the preset's cache at %s, so the cache saves nothing: leave it out", v, dir))
		}
		if sub, rest := firstOperand(args, "--cache-dir", "--index-url", "-i", "--log", "--proxy", "--timeout", "--retries", "--exists-action", "--trusted-host", "--cert", "--client-cert", "--python", "-r", "-c", "-e", "-t", "--target", "--prefix", "--root", "--extra-index-url", "-f", "--find-links"); sub == "cache" {
			if op, _ := firstOperand(append([]string{"cache"}, rest...)); op == "purge" || op == "remove" || op == "rm" {
				out = append(out, fmt.Sprintf("pip preset: %q empties the cache at %s; the cache is not part of the image, so this saves no space: leave it out", c.Text(), dir))
			}
		}
	}
	return out
}

func npmWarnings(p *Preset, cmds []shell.Command) []string {
	dir := p.caches[0].target
	var out []string
	for _, c := range cmds {
		if c.Name() != "npm" {
			continue
		}
		sub, rest := firstOperand(c.Args, "--cache", "--prefix", "--registry", "--loglevel", "-w", "--workspace")
		if sub == "cache" {
			if op, _ := firstOperand(append([]string{"cache"}, rest...)); op == "clean" || op == "clear" || op == "rm" {
				out = append(out, fmt.Sprintf("npm preset: %q empties the cache at %s; the cache is not part of the image, so this saves no space and the next build downloads every package again: leave it out", c.Text(), dir))
			}
		}
		if v, ok := optionValue(c.Args, "--cache"); ok && path.Clean(v) != dir {
			out = append(out, fmt.Sprintf("npm preset: --cache %s points npm away from the preset's cache at %s, so the cache saves nothing: leave it out", v, dir))
		}
	}
	return out
}

func goWarnings(p *Preset, cmds []shell.Command) []string {
	var out []string
	for _, c := range cmds {
		if c.Name() != "go" {
			continue
		}
		if sub, rest := firstOperand(c.Args); sub == "clean" {
			for _, a := range rest {
				switch strings.TrimPrefix(a, "-") {
				case "-modcache", "modcache":
					out = append(out, fmt.Sprintf("go preset: %q empties the module cache at %s, so the next build downloads every module again: leave it out (the cache is not part of the image)", c.Text(), p.caches[0].target))
				case "-cache", "cache":
					out = append(out, fmt.Sprintf("go preset: %q empties the build cache at %s, so the next build compiles everything again: leave it out (the cache is not part of the image)", c.Text(), p.caches[1].target))
				}
			}
		}
	}
	return out
}

func cargoWarnings(p *Preset, cmds []shell.Command) []string {
	target := p.caches[2].target
	var out []string
	for _, c := range cmds {
		if c.Name() != "cargo" {
			continue
		}
		sub, rest := firstOperand(c.Args, "-C", "--config", "-Z", "--color")
		if sub == "clean" {
			onePackage := slices.ContainsFunc(rest, func(a string) bool {
				return a == "-p" || a == "--package" || strings.HasPrefix(a, "--package=") || strings.HasPrefix(a, "-p") && len(a) > 2
			})
			if !onePackage {
				out = append(out, fmt.Sprintf("cargo preset: %q empties the target directory %s, so the build compiles everything again: leave it out (the cache is not part of the image)", c.Text(), target))
			}
		}
		if v, ok := optionValue(c.Args, "--target-dir"); ok && path.Clean(v) != target {
			out = append(out, fmt.Sprintf("cargo preset: --target-dir %s builds outside the preset's target directory %s, so the cache saves nothing: leave it out and copy from $CARGO_TARGET_DIR", v, target))
		}
	}
	return out
}
