// Command npm shows the npm preset: it installs a package.json's one
// dependency, then one more, on a Debian image with node and npm from
// Debian. With cache.Npm(), npm's cache is a cache mount, so the second
// install fetches only the added package's tarball ("npm http fetch … 200"
// lines in npm's own log, without "(cache hit)").
//
// Run it with a local builder set up for it (the npm registry must be
// reachable from the builder):
//
//	go run ./internal/cmd/withenv -- go run ./examples/npm
//
// It reads BUILDKIT_HOST and LARDER_DEBIAN_IMAGE (default debian:bookworm).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/cache"
	"github.com/larder-build/larder/remote"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "npm:", err)
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
	withNpm := build.Image(base).
		Run("apt-get update && apt-get install -y --no-install-recommends npm ca-certificates", cache.Apt())
	for _, deps := range []string{"is-number@7.0.0", "is-number@7.0.0 is-odd@3.0.1"} {
		img := withNpm.Run("mkdir -p /app && cd /app && npm init -y >/dev/null && npm install --loglevel=http "+deps, cache.Npm())
		res, err := build.Solve(ctx, b, img, build.Progress(os.Stderr, "plain"))
		if err != nil {
			return err
		}
		fmt.Printf("npm install %s: %d steps ran, %d from cache\n", deps, res.Report.RanSteps(), res.Report.CachedSteps())
	}
	return nil
}
