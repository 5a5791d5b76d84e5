// Package daemon is the plumbing shared by buildtest and the integration
// tests (internal/testenv) for local buildkitd daemons: where Larder keeps
// its cache ([CacheDir]), how a binary such as buildkitd is found
// ([LookPath]: PATH, then the bin directory scripts/setup fills), file
// locks that let test binaries running at once take turns ([Lock],
// [TryLock]), and the rule for a test whose daemon is unavailable: skip,
// or fail when CI=true ([SkipUnlessCI]).
//
// It imports neither remote nor build, nor the testing package, so that
// any package of the module, remote included, may import it.
package daemon
