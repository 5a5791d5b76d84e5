// Command persist shows cache mounts surviving ephemeral builders, as CI
// jobs that get a fresh builder every time need: a build installs curl
// with the apt preset and saves its cache mounts to a registry; then a
// fresh builder, with no cache at all, restores them and installs curl and
// wget, and apt downloads only what wget adds. Without persistence the
// fresh builder would download everything again.
//
// Run it with a local builder and registry set up for it (root, for the
// fresh local builder):
//
//	go run ./internal/cmd/withenv -- go run ./examples/persist
//
// It reads BUILDKIT_HOST, LARDER_REGISTRY (where the caches go) and
// LARDER_DEBIAN_IMAGE (default debian:bookworm).
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"time"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/cache"
	"github.com/larder-build/larder/remote"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if _, err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "persist:", err)
		os.Exit(1)
	}
}

// run returns the packages apt downloaded on each builder.
func run(ctx context.Context, w io.Writer) ([][]string, error) {
	registry := os.Getenv("LARDER_REGISTRY")
	if registry == "" {
		return nil, errors.New("set LARDER_REGISTRY to the registry's host:port")
	}
	base := os.Getenv("LARDER_DEBIAN_IMAGE")
	if base == "" {
		base = "debian:bookworm"
	}
	store := cache.RegistryStore(fmt.Sprintf("%s/examples/persist-caches-%d", registry, time.Now().UnixNano()))
	install := func(pkgs string) build.Stage {
		return build.Image(base).Run("apt-get update && apt-get install -y --no-install-recommends "+pkgs, cache.Apt())
	}

	first, err := remote.Auto(ctx)
	if err != nil {
		return nil, err
	}
	defer first.Close()
	fresh, err := remote.Start(ctx, remote.InsecureRegistry(registry))
	if err != nil {
		return nil, err
	}
	defer fresh.Close()

	var got [][]string
	for _, job := range []struct {
		name string
		b    *remote.Builder
		pkgs string
	}{{"first builder", first, "curl"}, {"fresh builder", fresh, "curl wget"}} {
		var log aptLog
		res, err := build.Solve(ctx, job.b, install(job.pkgs), build.PersistCacheMounts(store), build.OnEvent(log.record))
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(w, "== %s: apt-get install %s\n   apt downloaded %d packages: %s\n", job.name, job.pkgs, len(log.pkgs), strings.Join(log.pkgs, " "))
		for _, m := range res.Report.CacheMounts {
			fmt.Fprintf(w, "   cache %s: restored %v (%d kB), saved %v (%d kB)\n",
				m.Target, m.Restored, m.RestoredBytes/1000, m.Exported, m.ExportedBytes/1000)
		}
		got = append(got, log.pkgs)
	}
	return got, nil
}

// aptLog reads apt's output for the packages it downloaded: lines like
// "Get:3 http://deb.debian.org/debian bookworm/main amd64 curl amd64 7.88.1-10 [315 kB]".
type aptLog struct {
	mu      sync.Mutex
	partial []byte
	pkgs    []string
}

func (l *aptLog) record(e build.Event) {
	if e.Kind != build.StepLog {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, e.Data...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			return
		}
		line := string(l.partial[:i])
		l.partial = l.partial[i+1:]
		if f := strings.Fields(line); strings.HasPrefix(line, "Get:") && len(f) >= 9 {
			l.pkgs = append(l.pkgs, f[4])
		}
	}
}
