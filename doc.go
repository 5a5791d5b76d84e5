// Package larder is the root of Larder, a Go library for cache-aware
// container image builds on BuildKit, without a Dockerfile.
//
// The work happens in its packages:
//
//   - build: immutable build stages (images, local directories, git, run,
//     copy, env), solving them on a builder, outputs, progress and a report
//     of what ran and what came from cache.
//   - mounts: typed cache, bind, tmpfs, secret and SSH mounts for build
//     steps; each is also an llb.RunOption for raw llb.
//   - cache: package-manager presets (apt, pip, npm, go, cargo), typed
//     cache import/export backends (registry, local, inline, gha, s3), and
//     stores for persisted cache mounts.
//   - remote: dialing BuildKit daemons, starting a local one, and fleets
//     that route each platform to a builder that runs it.
//   - buildtest: for Go tests that build an image, run a command in it and
//     read its files, on one builder shared by a package's tests.
//
// Every package speaks llb both ways: a build.Stage wraps any llb.State and
// gives it back, and mounts work on a raw llb.State.Run.
package larder
