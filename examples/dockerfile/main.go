// Command dockerfile builds an existing Dockerfile (the one beside it) the
// way CI jobs on ephemeral builders would: each job starts a fresh builder,
// and its RUN --mount=type=cache mount is kept in a registry between jobs.
// The first job installs curl; the second, on a builder with no cache at
// all, installs curl and wget, and apt downloads only what wget adds.
//
// Run it with a registry set up for it (root, for the fresh local
// builders):
//
//	go run ./internal/cmd/withenv -- go run ./examples/dockerfile
//
// It reads LARDER_REGISTRY (where the caches and the image go) and
// LARDER_DEBIAN_IMAGE (the Dockerfile's base, default debian:bookworm).
package main

import (
	"bytes"
	"context"
	_ "embed"
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

//go:embed Dockerfile
var dockerfile []byte

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if _, err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "dockerfile:", err)
		os.Exit(1)
	}
}

// run returns the packages apt downloaded in each job.
func run(ctx context.Context, w io.Writer) ([][]string, error) {
	registry := os.Getenv("LARDER_REGISTRY")
	if registry == "" {
		return nil, errors.New("set LARDER_REGISTRY to the registry's host:port")
	}
	base := os.Getenv("LARDER_DEBIAN_IMAGE")
	if base == "" {
		base = "debian:bookworm"
	}
	n := time.Now().UnixNano()
	// Every job of the project uses the same store.
	store := cache.RegistryStore(fmt.Sprintf("%s/examples/dockerfile-caches-%d", registry, n))

	var got [][]string
	for i, packages := range []string{"curl", "curl wget"} {
		// A CI job: a fresh builder, gone when the job ends.
		b, err := remote.Start(ctx, remote.InsecureRegistry(registry))
		if err != nil {
			return nil, err
		}
		var log aptLog
		image := build.Dockerfile(dockerfile, build.Scratch(), build.BuildArg("BASE", base), build.BuildArg("PACKAGES", packages))
		res, err := build.Solve(ctx, b, image,
			build.PersistCacheMounts(store),
			build.Push(fmt.Sprintf("%s/examples/dockerfile:%d-%d", registry, n, i+1)),
			build.OnEvent(log.record))
		b.Close()
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(w, "== job %d, fresh builder: PACKAGES=%q\n   apt downloaded %d packages: %s\n", i+1, packages, len(log.pkgs), strings.Join(log.pkgs, " "))
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
