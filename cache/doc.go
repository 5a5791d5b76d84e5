// Package cache holds Larder's typed build cache: backends that import and
// export BuildKit's build cache, presets for the cache mounts of package
// managers, and the stores that keep cache mounts between builders.
//
// # Backends
//
// A Backend says where BuildKit reads cache from before a build and writes
// it to after one. Registry, Local, Inline, GHA and S3 construct one from
// required arguments and typed options:
//
//	from := cache.Registry("registry.example.com/team/app:buildcache")
//	to := cache.Registry("registry.example.com/team/app:buildcache", cache.ModeMax)
//
// and the build package passes them to BuildKit as its cache import and
// export entries: Type names BuildKit's backend, and ExportAttrs and
// ImportAttrs return the attribute maps BuildKit reads.
//
// BuildKit ignores attributes it does not know and falls back to defaults for
// values it cannot parse, so a typo costs a cold build and no error. Here
// every option is a typed value that only the backends that understand it
// accept: cache.Tag given to Registry, or cache.Compression given to GHA,
// does not compile. Each option checks its own value, and conflicting
// options are reported too, all before a builder is contacted. Because
// backends are built in one expression, errors are kept in the Backend and
// returned by ExportAttrs and ImportAttrs as *Error values, which name the
// backend, the attribute and the rejected value. Credentials never appear in
// errors or in String.
//
// Options that only affect export (Mode, IgnoreError and the FormatOption
// values) are left out of ImportAttrs, so one Backend can serve both
// directions. A Backend never changes the cache key of a build step.
//
// # Package-manager presets
//
// A Preset is the cache setup of one package manager for a build step, right
// by default: the directories the tool caches, as cache mounts with the
// sharing mode the tool needs, the environment that points the tool at them,
// and cache ids namespaced by project and platform. These make one, with
// these defaults for a root step:
//
//   - Apt: /var/cache/apt and /var/lib/apt, locked; no variable; three
//     read-only files that keep downloaded packages and speed up dpkg (see
//     below).
//   - Pip: /root/.cache/pip, shared; PIP_CACHE_DIR.
//   - Npm: /root/.npm, shared; npm_config_cache.
//   - Go: /go/pkg/mod and /root/.cache/go-build, shared; GOMODCACHE and
//     GOCACHE.
//   - Cargo: $CARGO_HOME/registry and $CARGO_HOME/git/db, shared, and the
//     target directory /root/.cache/cargo-target, locked; CARGO_HOME
//     (/root/.cargo) and CARGO_TARGET_DIR.
//   - Yarn (v1): /usr/local/share/.cache/yarn, locked; YARN_CACHE_FOLDER.
//     YarnBerry (v2+): /root/.yarn/berry, shared; YARN_GLOBAL_FOLDER and
//     YARN_ENABLE_GLOBAL_CACHE=false.
//   - Pnpm: /root/.local/share/pnpm/store, shared; npm_config_store_dir
//     and pnpm_config_store_dir.
//   - UV: /root/.cache/uv, shared; UV_CACHE_DIR and UV_LINK_MODE=copy.
//     Poetry: /root/.cache/pypoetry/cache and …/artifacts, locked;
//     POETRY_CACHE_DIR.
//   - Bundler: /root/.bundle/cache, locked; BUNDLE_USER_CACHE and
//     BUNDLE_GLOBAL_GEM_CACHE=true. Composer: /root/.cache/composer,
//     locked; COMPOSER_CACHE_DIR.
//   - Maven: /root/.m2/repository, locked; no variable. Gradle:
//     /root/.gradle/caches and …/wrapper, locked; GRADLE_USER_HOME. NuGet:
//     /root/.nuget/packages, locked; NUGET_PACKAGES.
//   - Apk: /etc/apk/cache, locked. Dnf: /var/cache/dnf and
//     /var/cache/libdnf5, locked, and a read-only keepcache drop-in.
//     Ccache: /root/.cache/ccache, shared; CCACHE_DIR.
//
// The variables are set for the preset's step only, not in the image, and
// replace the stage's values for that step.
//
// Options adjust them: Project, Sharing, AcrossPlatforms and Owner apply to
// every preset; Home to all but Apt, Apk and Dnf;
// GoPath to Go; CargoHome and TargetDir to Cargo. An option a preset does
// not take does not compile. Mistakes (a relative path, a project name that
// cannot be part of an id, a Sharing target that is not one of the preset's
// caches) are kept in the Preset and reported by its Validate as *Error
// values whose Option names the option, before a builder is contacted.
//
// A Preset is an llb.RunOption. The build package's Stage.Run takes it like
// a mount, validates it, rejects another mount on one of its Targets, and
// puts what its Warnings method finds (pip's --no-cache-dir, emptying
// /var/lib/apt/lists, `npm cache clean`, `go clean -modcache`, `cargo clean`)
// in the solve's report. A raw llb.State.Run takes it too.
//
// A Preset is plain data to inspect: Caches lists its cache directories with
// their ids and sharing modes, Env its variables, Files its files, Mounts the
// mounts it adds as the mounts package makes them.
//
// # Presets follow the step
//
// Through ForStep the build package tells a preset its step's user and
// environment: the image's configuration, resolved on the builder, then the
// stage's Env and User, with the user's uid, gid and home read from the
// passwd and group files of the image the stage starts from. A preset then
// keeps its caches where the tool does for that step: under the user's
// home (or $HOME), where the tool's variables point (CARGO_HOME and
// CARGO_TARGET_DIR, GOPATH, GOMODCACHE and GOCACHE, PIP_CACHE_DIR,
// npm_config_cache, XDG_CACHE_HOME), owned by the user's uid and gid. Home,
// Owner, CargoHome, GoPath and TargetDir still win. When a preset cannot
// tell (a user an earlier step made, whom the base image's passwd does not
// hold), it keeps root's paths and owner, and the solve's report says so.
// Without a builder (Stage.Marshal) only the stage's own settings are known.
//
// # Cache ids
//
// Each cache's id is
//
//	larder/<project>/<tool>/<target without its leading slash>@<os>/<arch>[/<variant>]
//
// such as "larder/default/apt/var/cache/apt@linux/amd64" (DockerfileIDs
// names them as a Dockerfile does instead, "//var/cache/apt"). Two projects, two
// tools or two platforms never share a cache unless AcrossPlatforms leaves
// the platform out of an id on purpose, for caches whose contents do not
// depend on it such as Go's module cache. The build package tells each
// preset the platform of its step (Stage.Platform, else the solve's) through
// ForStep, the method of mounts.StepOption. On raw llb a preset takes the platform that llb.Platform
// given to Run before it sets, or one from For; without either its ids have
// no platform part, because llb settles the platform only when the graph is
// marshalled.
//
// # Cache keys
//
// A preset's mount targets, the owner of its caches, its files and its
// environment variables are part of the step's cache key. Its cache ids and
// sharing modes are in the step's definition but not in its cache key:
// BuildKit leaves them out, so a step that ran with one project's caches
// comes from cache for another project, and the contents of a cache never
// decide whether a step runs.
//
// # Apt without a layer
//
// Docker's official Debian and Ubuntu images delete downloaded packages
// after every install (/etc/apt/apt.conf.d/docker-clean), and apt deletes
// them by default. Instead of changing the image's /etc in a step, the apt
// preset mounts read-only files from a small scratch stage for the step
// only: an empty file over docker-clean, AptKeepCacheFile, which keeps
// downloaded packages, and AptUnsafeIOFile, which lets dpkg unpack without
// syncing each file (as Docker's images' docker-apt-speedup does). BuildKit
// removes the empty mount points it creates
// for them, so the image's layer holds nothing of them.
//
// # Stores for persisted cache mounts
//
// BuildKit keeps a cache mount only on the daemon that made it, and none of
// the backends above carries one. A MountStore does: build.PersistCacheMounts
// restores the cache mounts of the steps that run from it and saves what
// they gained. RegistryStore keeps them in an OCI registry, DirStore in a
// directory of the client's, S3Store in an S3 bucket; the client reads and
// writes each store itself, with build.WithKeychain's credentials for a
// registry. A store holds content-addressed blobs and named heads that list
// them; MountStore documents the contract, so that other stores can be
// written, and MountKey names each cache's artifact.
package cache
