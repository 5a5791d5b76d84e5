//go:build tools

// Package buildkit pins the BuildKit commands that scripts/setup builds.
package buildkit

import (
	_ "github.com/moby/buildkit/cmd/buildctl"
	_ "github.com/moby/buildkit/cmd/buildkitd"
)
