// Command registrycache exports a build's layer cache to a registry with
// mode=max, then starts a fresh local builder, one with no cache at all,
// and builds the same graph there importing it: every step comes from the
// registry's cache instead of running again. This is what a CI job with an
// ephemeral builder gets from CacheTo and CacheFrom.
//
// Run it with a local builder and registry set up for it (root, for the
// fresh local builder):
//
//	go run ./internal/cmd/withenv -- go run ./examples/registrycache
//
// It reads BUILDKIT_HOST, LARDER_REGISTRY (where the cache goes) and
// LARDER_BUSYBOX_IMAGE.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/cache"
	"github.com/larder-build/larder/remote"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "registrycache:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer) error {
	registry := os.Getenv("LARDER_REGISTRY")
	if registry == "" {
		return errors.New("set LARDER_REGISTRY to the registry's host:port")
	}
	ref := fmt.Sprintf("%s/examples/registrycache:cache-%d", registry, time.Now().UnixNano())

	// A graph with a side stage: mode=max keeps its steps too.
	tools := build.Image(os.Getenv("LARDER_BUSYBOX_IMAGE")).Run("sleep 1; echo tools > /tools")
	img := build.Image(os.Getenv("LARDER_BUSYBOX_IMAGE")).
		Run("sleep 1; echo dependencies > /deps").
		Copy(tools, "/tools", "/tools").
		Run("sleep 1; cat /deps /tools > /app")

	first, err := remote.Auto(ctx)
	if err != nil {
		return err
	}
	defer first.Close()
	res, err := build.Solve(ctx, first, img, build.CacheTo(cache.Registry(ref, cache.ModeMax)))
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "on %s: %d steps ran, %d from cache; cache exported to %s\n",
		first.Name(), res.Report.RanSteps(), res.Report.CachedSteps(), ref)

	fresh, err := remote.Start(ctx, remote.InsecureRegistry(registry))
	if err != nil {
		return err
	}
	defer fresh.Close()
	res, err = build.Solve(ctx, fresh, img, build.CacheFrom(cache.Registry(ref)))
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "on a fresh builder importing it: %d steps ran, %d from cache\n",
		res.Report.RanSteps(), res.Report.CachedSteps())
	return nil
}
