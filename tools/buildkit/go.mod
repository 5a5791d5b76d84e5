// This module builds buildkitd and buildctl for Larder's development and CI
// environment. It is kept apart from Larder's own go.mod so that users of the
// library never inherit the daemon's dependencies.
module github.com/larder-build/larder/tools/buildkit

go 1.26.8

require github.com/moby/buildkit v0.33.1
