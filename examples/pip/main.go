// Command pip shows the pip preset: it installs a package, then the same
// package in a step whose command changed, on a Debian image with pip from
// Debian. With cache.Pip(), pip's cache is a cache mount, so the second
// install finds the wheel in it ("Using cached …" in pip's output) instead
// of downloading it. Give PIP_INDEX_URL for a registry of your own.
//
// Run it with a local builder set up for it (the index must be reachable
// from the builder):
//
//	go run ./internal/cmd/withenv -- go run ./examples/pip
//
// It reads BUILDKIT_HOST, LARDER_DEBIAN_IMAGE (default debian:bookworm) and
// PIP_INDEX_URL (default PyPI).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/moby/buildkit/client/llb"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/cache"
	"github.com/larder-build/larder/remote"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "pip:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	b, err := remote.Auto(ctx)
	if err != nil {
		return err
	}
	defer b.Close()
	base := os.Getenv("LARDER_DEBIAN_IMAGE")
	if base == "" {
		base = "debian:bookworm"
	}
	opts := []llb.RunOption{cache.Pip()}
	if index := os.Getenv("PIP_INDEX_URL"); index != "" {
		opts = append(opts, llb.AddEnv("PIP_INDEX_URL", index))
	}
	withPip := build.Image(base).
		Run("apt-get update && apt-get install -y --no-install-recommends python3-pip python3-venv", cache.Apt())
	for i, cmd := range []string{
		"python3 -m venv /venv && /venv/bin/pip install -v six",
		"python3 -m venv /venv && /venv/bin/pip install -v six && /venv/bin/python -c 'import six'",
	} {
		if _, err := build.Solve(ctx, b, withPip.Run(cmd, opts...), build.Progress(os.Stderr, "plain")); err != nil {
			return err
		}
		fmt.Printf("install %d done; look for \"Using cached\" in the second\n", i+1)
	}
	return nil
}
