// Command apt builds a Debian image twice on a BuildKit daemon, the second
// time with one more package, and shows what apt's cache mounts save: the
// rebuild downloads only the packages the first build did not have. It
// pushes the result to a registry.
//
// It reads BUILDKIT_HOST (the builder), LARDER_DEBIAN_IMAGE (default
// debian:bookworm) and LARDER_REGISTRY (where to push; no push when unset).
// scripts/demo sets all three up on this machine and runs it.
package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"time"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/mounts"
	"github.com/larder-build/larder/remote"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "apt:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	b, err := remote.Dial(ctx, "")
	if err != nil {
		return err
	}
	defer b.Close()

	base := os.Getenv("LARDER_DEBIAN_IMAGE")
	if base == "" {
		base = "debian:bookworm"
	}
	// apt keeps its package lists and downloaded packages in these two
	// directories; locked sharing, because apt takes a lock on both.
	aptCache := mounts.Cache("/var/cache/apt", mounts.ID("demo-apt-cache"), mounts.Sharing(mounts.Locked))
	aptLists := mounts.Cache("/var/lib/apt", mounts.ID("demo-apt-lists"), mounts.Sharing(mounts.Locked))
	install := func(pkgs string) build.Stage {
		return build.Image(base).Run(
			// The official images delete downloaded packages after each
			// install; keep them in the cache mount instead.
			"rm -f /etc/apt/apt.conf.d/docker-clean && apt-get update && "+
				"apt-get install -y --no-install-recommends "+pkgs,
			aptCache, aptLists)
	}

	for i, pkgs := range []string{"gcc", "gcc curl"} {
		var opts []build.SolveOption
		var fetched fetchLog
		opts = append(opts, build.OnEvent(fetched.record))
		ref := ""
		if reg := os.Getenv("LARDER_REGISTRY"); reg != "" {
			ref = reg + "/demo/apt:latest"
			opts = append(opts, build.Push(ref))
		}
		fmt.Printf("== build %d: apt-get install %s\n", i+1, pkgs)
		res, err := build.Solve(ctx, b, install(pkgs), opts...)
		if err != nil {
			return err
		}
		step, _ := res.Report.Find("apt-get install")
		fmt.Printf("   install step: %s, %s\n", durationOrCached(step), fetched.summary())
		if ref != "" {
			fmt.Printf("   pushed %s@%s\n", ref, res.Digest)
		}
	}
	return nil
}

func durationOrCached(s build.Step) string {
	if s.Cached {
		return "cached"
	}
	return "ran in " + s.Duration().Round(100*time.Millisecond).String()
}

// fetchLog reads apt's output for the packages it downloaded.
type fetchLog struct {
	mu      sync.Mutex
	partial []byte // output after the last complete line
	pkgs    []string
	fetched string // apt's own "Fetched 36.4 MB in 2s (18.2 MB/s)" line
}

func (f *fetchLog) record(e build.Event) {
	if e.Kind != build.StepLog {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.partial = append(f.partial, e.Data...)
	for {
		i := bytes.IndexByte(f.partial, '\n')
		if i < 0 {
			return
		}
		f.line(strings.TrimSpace(string(f.partial[:i])))
		f.partial = f.partial[i+1:]
	}
}

// line records a package download such as
// "Get:3 http://deb.debian.org/debian bookworm/main amd64 curl amd64 7.88.1-10 [315 kB]".
// Index downloads ("… bookworm InRelease [151 kB]", "… amd64 Packages
// [8792 kB]") have fewer fields.
func (f *fetchLog) line(line string) {
	fields := strings.Fields(line)
	switch {
	case strings.HasPrefix(line, "Get:") && len(fields) >= 9:
		f.pkgs = append(f.pkgs, fields[4])
	case strings.HasPrefix(line, "Fetched "):
		f.fetched = line
	}
}

func (f *fetchLog) summary() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.pkgs) == 0 {
		return "downloaded no package"
	}
	shown := f.pkgs
	if len(shown) > 6 {
		shown = append(shown[:6:6], "…")
	}
	return fmt.Sprintf("downloaded %d packages (%s); apt said %q", len(f.pkgs), strings.Join(shown, " "), f.fetched)
}
