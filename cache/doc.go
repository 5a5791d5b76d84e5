// Package cache holds Larder's typed build cache: backends that import and
// export BuildKit's build cache, and presets for the cache mounts of package
// managers.
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
// Presets are cache mounts for package managers (apt, pip, npm, Go, Cargo)
// that are right by default: the paths each tool caches, the sharing mode it
// needs, the environment that points the tool at them, and cache ids
// namespaced by project and platform. They are built on the mounts package
// and, like mounts, can be used as llb.RunOption on a raw llb.State.
package cache
