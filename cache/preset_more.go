package cache

import (
	"path"

	"github.com/larder-build/larder/mounts"
)

// DnfKeepCacheFile is the path of the configuration file the dnf preset
// mounts into its step to keep downloaded packages; see Dnf.
const DnfKeepCacheFile = "/etc/dnf/libdnf5.conf.d/larder-keep-cache.conf"

// dnfKeepCache is the content of DnfKeepCacheFile.
const dnfKeepCache = "[main]\nkeepcache=True\n"

// YarnOption configures Yarn: a PresetOption or Home.
type YarnOption interface {
	applyPreset(*presetConfig)
	yarnOption()
}

// YarnBerryOption configures YarnBerry: a PresetOption or Home.
type YarnBerryOption interface {
	applyPreset(*presetConfig)
	yarnBerryOption()
}

// PnpmOption configures Pnpm: a PresetOption or Home.
type PnpmOption interface {
	applyPreset(*presetConfig)
	pnpmOption()
}

// UVOption configures UV: a PresetOption or Home.
type UVOption interface {
	applyPreset(*presetConfig)
	uvOption()
}

// PoetryOption configures Poetry: a PresetOption or Home.
type PoetryOption interface {
	applyPreset(*presetConfig)
	poetryOption()
}

// BundlerOption configures Bundler: a PresetOption or Home.
type BundlerOption interface {
	applyPreset(*presetConfig)
	bundlerOption()
}

// ComposerOption configures Composer: a PresetOption or Home.
type ComposerOption interface {
	applyPreset(*presetConfig)
	composerOption()
}

// MavenOption configures Maven: a PresetOption or Home.
type MavenOption interface {
	applyPreset(*presetConfig)
	mavenOption()
}

// GradleOption configures Gradle: a PresetOption or Home.
type GradleOption interface {
	applyPreset(*presetConfig)
	gradleOption()
}

// NuGetOption configures NuGet: a PresetOption or Home.
type NuGetOption interface {
	applyPreset(*presetConfig)
	nugetOption()
}

// ApkOption configures Apk: a PresetOption.
type ApkOption interface {
	applyPreset(*presetConfig)
	apkOption()
}

// DnfOption configures Dnf: a PresetOption.
type DnfOption interface {
	applyPreset(*presetConfig)
	dnfOption()
}

// CcacheOption configures Ccache: a PresetOption or Home.
type CcacheOption interface {
	applyPreset(*presetConfig)
	ccacheOption()
}

func (presetOption) yarnOption()      {}
func (presetOption) yarnBerryOption() {}
func (presetOption) pnpmOption()      {}
func (presetOption) uvOption()        {}
func (presetOption) poetryOption()    {}
func (presetOption) bundlerOption()   {}
func (presetOption) composerOption()  {}
func (presetOption) mavenOption()     {}
func (presetOption) gradleOption()    {}
func (presetOption) nugetOption()     {}
func (presetOption) apkOption()       {}
func (presetOption) dnfOption()       {}
func (presetOption) ccacheOption()    {}

func (homeOption) yarnOption()      {}
func (homeOption) yarnBerryOption() {}
func (homeOption) pnpmOption()      {}
func (homeOption) uvOption()        {}
func (homeOption) poetryOption()    {}
func (homeOption) bundlerOption()   {}
func (homeOption) composerOption()  {}
func (homeOption) mavenOption()     {}
func (homeOption) gradleOption()    {}
func (homeOption) nugetOption()     {}
func (homeOption) ccacheOption()    {}

// runsAsRoot reports whether the preset's step runs as root: no step
// (the default), a root user by name, or a user whose uid is 0.
func (c *presetConfig) runsAsRoot() bool {
	s := c.step
	if s == nil {
		return true
	}
	switch s.User {
	case "", "root", "0", "0:0":
		return true
	}
	return s.UID == 0
}

// Yarn returns the preset for Yarn 1 (classic): a Locked cache mount at
// Yarn's cache folder, and YARN_CACHE_FOLDER set to it. The folder is the
// step's own $YARN_CACHE_FOLDER, else $XDG_CACHE_HOME/yarn, else Yarn's
// default for the user: /usr/local/share/.cache/yarn for root, as Yarn
// keeps root's files under /usr/local/share, and <home>/.cache/yarn for
// another user or when Home is given. Yarn 1 does not lock its cache, and
// two installs that fill it at once can fail, so steps take turns.
//
// Use YarnBerry for Yarn 2 and later: Yarn 2 and 3 read YARN_CACHE_FOLDER
// as the project's own cache, from which Plug'n'Play installs load
// packages when the image runs, and Yarn 4 ignores it.
//
// Its options are Project, Sharing, AcrossPlatforms, Owner and Home. See
// Preset for what of it is part of the step's cache key. Warnings reports
// `yarn cache clean` and --cache-folder.
func Yarn(opts ...YarnOption) *Preset {
	return newPreset("yarn", opts, func(c *presetConfig, p *Preset) {
		dir := c.getenv("YARN_CACHE_FOLDER")
		switch {
		case dir != "":
		case c.getenv("XDG_CACHE_HOME") != "":
			dir = path.Join(c.cacheHome(), "yarn")
		case c.runsAsRoot() && !c.homeSet:
			dir = "/usr/local/share/.cache/yarn"
		default:
			dir = path.Join(c.home, ".cache/yarn")
		}
		p.addCache(dir, mounts.Locked)
		p.setEnv("YARN_CACHE_FOLDER", dir)
		p.warn = yarnWarnings
	})
}

// YarnBerry returns the preset for Yarn 2 and later (Berry): a Shared
// cache mount at Yarn's global folder, which holds the mirror of every
// package Yarn downloads (<folder>/cache) and the registry metadata, with
// YARN_GLOBAL_FOLDER set to it and YARN_ENABLE_GLOBAL_CACHE set to false.
// The folder is the step's own $YARN_GLOBAL_FOLDER, else
// $XDG_DATA_HOME/yarn/berry, else <home>/.yarn/berry, Yarn's defaults.
// Yarn writes its cache files whole and under their checksums, so steps
// can share it.
//
// With enableGlobalCache (the default since Yarn 4), Plug'n'Play installs
// would load packages from the global folder at run time, and the image
// does not have it. Turned off, Yarn copies each package from the mirror
// into the project's cache (.yarn/cache), which stays in the image, and
// downloads only what the mirror lacks.
//
// Its options are Project, Sharing, AcrossPlatforms, Owner and Home. See
// Preset for what of it is part of the step's cache key. Warnings reports
// `yarn cache clean --mirror` or --all, YARN_ENABLE_MIRROR=false and
// YARN_ENABLE_GLOBAL_CACHE=true.
func YarnBerry(opts ...YarnBerryOption) *Preset {
	return newPreset("yarnberry", opts, func(c *presetConfig, p *Preset) {
		dir := c.getenv("YARN_GLOBAL_FOLDER")
		if dir == "" {
			if data := c.getenv("XDG_DATA_HOME"); data != "" {
				dir = path.Join(data, "yarn/berry")
			} else {
				dir = path.Join(c.home, ".yarn/berry")
			}
		}
		p.addCache(dir, mounts.Shared)
		p.setEnv("YARN_GLOBAL_FOLDER", dir)
		p.setEnv("YARN_ENABLE_GLOBAL_CACHE", "false")
		p.warn = yarnBerryWarnings
	})
}

// Pnpm returns the preset for pnpm: a Shared cache mount at pnpm's store,
// and pnpm_config_store_dir (read by pnpm 11) and npm_config_store_dir
// (read by earlier versions) set to it. The store is the step's own
// $pnpm_config_store_dir or $npm_config_store_dir, else $PNPM_HOME/store,
// else $XDG_DATA_HOME/pnpm/store, else <home>/.local/share/pnpm/store,
// pnpm's defaults. The store is content-addressed and safe to share. It is
// a mount of its own, which pnpm cannot hard-link from: pnpm copies the
// packages into node_modules instead, so the image is complete.
//
// Its options are Project, Sharing, AcrossPlatforms, Owner and Home. See
// Preset for what of it is part of the step's cache key. Warnings reports
// `pnpm store prune` and --store-dir.
func Pnpm(opts ...PnpmOption) *Preset {
	return newPreset("pnpm", opts, func(c *presetConfig, p *Preset) {
		dir := c.getenv("pnpm_config_store_dir")
		if dir == "" {
			dir = c.getenv("npm_config_store_dir")
		}
		if dir == "" {
			if home := c.getenv("PNPM_HOME"); home != "" {
				dir = path.Join(home, "store")
			} else if data := c.getenv("XDG_DATA_HOME"); data != "" {
				dir = path.Join(data, "pnpm/store")
			} else {
				dir = path.Join(c.home, ".local/share/pnpm/store")
			}
		}
		p.addCache(dir, mounts.Shared)
		p.setEnv("npm_config_store_dir", dir)
		p.setEnv("pnpm_config_store_dir", dir)
		p.warn = pnpmWarnings
	})
}

// UV returns the preset for Astral's uv: a Shared cache mount at
// <home>/.cache/uv, uv's own default ($XDG_CACHE_HOME/uv when the step
// sets it, or the step's own $UV_CACHE_DIR), with UV_CACHE_DIR set to it.
// uv's cache is append-only and safe for concurrent use. The preset also
// sets UV_LINK_MODE to copy, as uv's Docker guide does for a cache mount:
// uv cannot hard-link from another mount, and copies leave nothing in the
// image that points into the cache.
//
// Its options are Project, Sharing, AcrossPlatforms, Owner and Home. See
// Preset for what of it is part of the step's cache key. Warnings reports
// `uv cache clean`, `uv cache prune --ci`, --no-cache and UV_NO_CACHE,
// --cache-dir, and the symlink link mode.
func UV(opts ...UVOption) *Preset {
	return newPreset("uv", opts, func(c *presetConfig, p *Preset) {
		dir := c.getenv("UV_CACHE_DIR")
		if dir == "" {
			dir = path.Join(c.cacheHome(), "uv")
		}
		p.addCache(dir, mounts.Shared)
		p.setEnv("UV_CACHE_DIR", dir)
		p.setEnv("UV_LINK_MODE", "copy")
		p.warn = uvWarnings
	})
}

// Poetry returns the preset for Python's Poetry: Locked cache mounts at
// <dir>/cache (repository metadata) and <dir>/artifacts (downloaded
// distributions), with POETRY_CACHE_DIR set to <dir>. The directory is the
// step's own $POETRY_CACHE_DIR, else <home>/.cache/pypoetry, Poetry's
// default ($XDG_CACHE_HOME/pypoetry when the step sets it). Poetry's own
// virtual environments, by default in <dir>/virtualenvs, are not mounted
// and stay in the image. Poetry does not lock its caches, and parallel
// installs that fill them at once can fail, so steps take turns.
//
// Its options are Project, Sharing, AcrossPlatforms, Owner and Home. See
// Preset for what of it is part of the step's cache key. Warnings reports
// `poetry cache clear --all` and --no-cache.
func Poetry(opts ...PoetryOption) *Preset {
	return newPreset("poetry", opts, func(c *presetConfig, p *Preset) {
		dir := c.getenv("POETRY_CACHE_DIR")
		if dir == "" {
			dir = path.Join(c.cacheHome(), "pypoetry")
		}
		p.addCache(path.Join(dir, "cache"), mounts.Locked)
		p.addCache(path.Join(dir, "artifacts"), mounts.Locked)
		p.setEnv("POETRY_CACHE_DIR", dir)
		p.warn = poetryWarnings
	})
}

// Bundler returns the preset for Ruby's Bundler: a Locked cache mount at
// Bundler's user cache, with BUNDLE_USER_CACHE set to it and
// BUNDLE_GLOBAL_GEM_CACHE set to true, so that Bundler keeps the .gem
// files it downloads (and the gems' compiled extensions) there as well as
// its registry index. The cache is the step's own $BUNDLE_USER_CACHE, else
// $BUNDLE_USER_HOME/cache, else <home>/.bundle/cache, Bundler's defaults.
// Installed gems go where they always do (GEM_HOME, BUNDLE_PATH), in the
// image. Bundler does not lock the cache, so steps take turns.
//
// Its options are Project, Sharing, AcrossPlatforms, Owner and Home. See
// Preset for what of it is part of the step's cache key. Warnings reports
// BUNDLE_GLOBAL_GEM_CACHE=false, but not `bundle install --no-cache`,
// which stops Bundler updating the application's vendor/cache, not this
// cache.
func Bundler(opts ...BundlerOption) *Preset {
	return newPreset("bundler", opts, func(c *presetConfig, p *Preset) {
		dir := c.getenv("BUNDLE_USER_CACHE")
		if dir == "" {
			if home := c.getenv("BUNDLE_USER_HOME"); home != "" {
				dir = path.Join(home, "cache")
			} else {
				dir = path.Join(c.home, ".bundle/cache")
			}
		}
		p.addCache(dir, mounts.Locked)
		p.setEnv("BUNDLE_USER_CACHE", dir)
		p.setEnv("BUNDLE_GLOBAL_GEM_CACHE", "true")
		p.warn = bundlerWarnings
	})
}

// Composer returns the preset for PHP's Composer: a Locked cache mount at
// Composer's cache directory, and COMPOSER_CACHE_DIR set to it. The
// directory is the step's own $COMPOSER_CACHE_DIR, else
// $COMPOSER_HOME/cache (/tmp/cache in the official composer image, which
// sets COMPOSER_HOME=/tmp), else <home>/.cache/composer
// ($XDG_CACHE_HOME/composer when the step sets it). Composer does not lock
// its cache, so steps take turns.
//
// Its options are Project, Sharing, AcrossPlatforms, Owner and Home. See
// Preset for what of it is part of the step's cache key. Warnings reports
// `composer clear-cache` and --no-cache.
func Composer(opts ...ComposerOption) *Preset {
	return newPreset("composer", opts, func(c *presetConfig, p *Preset) {
		dir := c.getenv("COMPOSER_CACHE_DIR")
		if dir == "" {
			if home := c.getenv("COMPOSER_HOME"); home != "" {
				dir = path.Join(home, "cache")
			} else {
				dir = path.Join(c.cacheHome(), "composer")
			}
		}
		p.addCache(dir, mounts.Locked)
		p.setEnv("COMPOSER_CACHE_DIR", dir)
		p.warn = composerWarnings
	})
}

// Maven returns the preset for Apache Maven: a Locked cache mount at
// Maven's local repository, <home>/.m2/repository (/root/.m2/repository).
// Maven locks the repository only within one process by default, so steps
// take turns. When the step's MAVEN_OPTS or MAVEN_ARGS give
// -Dmaven.repo.local=<dir>, the preset mounts <dir> instead.
//
// The preset sets no environment variable: Maven reads the repository's
// path only from -Dmaven.repo.local or settings.xml, and setting
// MAVEN_OPTS or MAVEN_ARGS would replace the stage's own. A
// <localRepository> in settings.xml is not read: keep the default there,
// or give the path in the stage's MAVEN_OPTS. What `mvn install` puts in
// the repository stays in the cache, not in the image.
//
// Its options are Project, Sharing, AcrossPlatforms, Owner and Home. See
// Preset for what of it is part of the step's cache key. Warnings reports
// `mvn dependency:purge-local-repository` and -Dmaven.repo.local.
func Maven(opts ...MavenOption) *Preset {
	return newPreset("maven", opts, func(c *presetConfig, p *Preset) {
		repo := mavenRepoLocal(c.stepenv("MAVEN_ARGS"))
		if repo == "" {
			repo = mavenRepoLocal(c.stepenv("MAVEN_OPTS"))
		}
		if repo == "" {
			repo = path.Join(c.home, ".m2/repository")
		}
		p.addCache(repo, mounts.Locked)
		p.warn = mavenWarnings
	})
}

// Gradle returns the preset for Gradle: Locked cache mounts at
// $GRADLE_USER_HOME/caches (dependencies, build cache, transforms) and
// $GRADLE_USER_HOME/wrapper (distributions the wrapper downloads), with
// GRADLE_USER_HOME set (default the step's own $GRADLE_USER_HOME, else
// <home>/.gradle). The rest of the Gradle user home, such as
// gradle.properties and init.d, is the image's. Gradle's locks hand a
// cache over by messages on the loopback interface, which steps do not
// share, so steps take turns.
//
// Its options are Project, Sharing, AcrossPlatforms, Owner and Home. See
// Preset for what of it is part of the step's cache key. Warnings reports
// --no-build-cache and --gradle-user-home.
func Gradle(opts ...GradleOption) *Preset {
	return newPreset("gradle", opts, func(c *presetConfig, p *Preset) {
		home := c.getenv("GRADLE_USER_HOME")
		if home == "" {
			home = path.Join(c.home, ".gradle")
		}
		p.addCache(path.Join(home, "caches"), mounts.Locked)
		p.addCache(path.Join(home, "wrapper"), mounts.Locked)
		p.setEnv("GRADLE_USER_HOME", home)
		p.warn = gradleWarnings
	})
}

// NuGet returns the preset for NuGet and the dotnet CLI: a Locked cache
// mount at NuGet's global packages folder, <home>/.nuget/packages
// (/root/.nuget/packages, the step's own $NUGET_PACKAGES when it sets
// one), and NUGET_PACKAGES set to it. NuGet's locks live in the temporary
// directory, which steps do not share, so steps take turns. Applications
// built with `dotnet build` load their packages from this folder when they
// run: publish them (`dotnet publish`) in a step with the preset.
//
// Its options are Project, Sharing, AcrossPlatforms, Owner and Home. See
// Preset for what of it is part of the step's cache key. Warnings reports
// `dotnet nuget locals` --clear of the global packages and --packages.
func NuGet(opts ...NuGetOption) *Preset {
	return newPreset("nuget", opts, func(c *presetConfig, p *Preset) {
		dir := c.getenv("NUGET_PACKAGES")
		if dir == "" {
			dir = path.Join(c.home, ".nuget/packages")
		}
		p.addCache(dir, mounts.Locked)
		p.setEnv("NUGET_PACKAGES", dir)
		p.warn = nugetWarnings
	})
}

// Apk returns the preset for Alpine's apk: a Locked cache mount at
// /etc/apk/cache. apk keeps the packages it downloads only when that path
// is a directory, which Alpine's setup-apkcache links to /var/cache/apk,
// and then keeps its indexes there too. The mount is that directory, for
// the step only, so no step changes the image's /etc and the preset adds
// no layer of its own. apk does not lock its cache, so steps take turns.
// Leave out --no-cache, which keeps apk away from any cache (Warnings says
// so); a cleanup such as `rm -rf /var/cache/apk/*` is harmless.
//
// The preset sets no environment variable. Its options are Project,
// Sharing, AcrossPlatforms and Owner. See Preset for what of it is part of
// the step's cache key. Warnings reports --no-cache, --cache-dir and
// `apk cache clean`, `purge` and `sync`.
func Apk(opts ...ApkOption) *Preset {
	return newPreset("apk", opts, func(c *presetConfig, p *Preset) {
		p.addCache("/etc/apk/cache", mounts.Locked)
		p.warn = apkWarnings
	})
}

// Dnf returns the preset for dnf and yum on Fedora, RHEL and their
// relatives: Locked cache mounts at /var/cache/dnf (dnf 4, and yum on
// RHEL 8 and later) and /var/cache/libdnf5 (dnf5), which hold repository
// metadata and downloaded packages. dnf's locks record process ids, which
// mean nothing in another step, so steps take turns.
//
// dnf deletes downloaded packages after a transaction unless keepcache is
// set. dnf5 reads drop-in files, so the preset shows the step a read-only
// DnfKeepCacheFile that sets keepcache=True, mounted like the caches and
// never part of the result; /etc/dnf/dnf.conf, read after drop-ins, still
// wins. dnf 4 reads no drop-ins: its metadata is cached, and its packages
// are when the command says --setopt=keepcache=1 or the image's dnf.conf
// sets keepcache=1.
//
// The preset sets no environment variable. Its options are Project,
// Sharing, AcrossPlatforms and Owner. See Preset for what of it is part of
// the step's cache key. Warnings reports `dnf clean` and
// --setopt=keepcache=0.
func Dnf(opts ...DnfOption) *Preset {
	return newPreset("dnf", opts, func(c *presetConfig, p *Preset) {
		p.addCache("/var/cache/dnf", mounts.Locked)
		p.addCache("/var/cache/libdnf5", mounts.Locked)
		p.files = []File{{Path: DnfKeepCacheFile, Content: dnfKeepCache}}
		p.warn = dnfWarnings
	})
}

// Ccache returns the preset for ccache: a Shared cache mount at
// <home>/.cache/ccache, ccache's default ($XDG_CACHE_HOME/ccache when the
// step sets it, or the step's own $CCACHE_DIR), and CCACHE_DIR set to it.
// ccache writes its results atomically and locks what it updates, so steps
// can share the cache. ccache reads <dir>/ccache.conf as its
// configuration; with the preset that is the cache's, not the image's.
// Compilers run through ccache only when the build calls them so, such as
// CC="ccache gcc" or -DCMAKE_C_COMPILER_LAUNCHER=ccache.
//
// Its options are Project, Sharing, AcrossPlatforms, Owner and Home. See
// Preset for what of it is part of the step's cache key. Warnings reports
// `ccache -C`, `ccache -o disable=true`, CCACHE_DISABLE and
// CCACHE_RECACHE.
func Ccache(opts ...CcacheOption) *Preset {
	return newPreset("ccache", opts, func(c *presetConfig, p *Preset) {
		dir := c.getenv("CCACHE_DIR")
		if dir == "" {
			dir = path.Join(c.cacheHome(), "ccache")
		}
		p.addCache(dir, mounts.Shared)
		p.setEnv("CCACHE_DIR", dir)
		p.warn = ccacheWarnings
	})
}

// stepenv returns the step's variable name as it is, "" when there is no
// step or it does not set it.
func (c *presetConfig) stepenv(name string) string {
	if c.step == nil {
		return ""
	}
	return c.step.Getenv(name)
}
