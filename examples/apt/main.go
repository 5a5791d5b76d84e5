// Command apt shows what apt's cache mounts buy: it builds a Debian image
// that installs gcc, then rebuilds it installing gcc and curl, the scenario
// every guide on cache mounts uses. It does it twice: the usual way, without
// cache mounts and with `rm -rf /var/lib/apt/lists/*`, and with Larder's apt
// preset, cache.Apt(). For each rebuild it prints what apt downloaded and
// how long the install step took, and it pushes the last image.
//
// scripts/demo runs it on a local builder and registry. By hand:
//
//	go run ./internal/cmd/withenv -- go run ./examples/apt
//
// It reads BUILDKIT_HOST (the builder), LARDER_DEBIAN_IMAGE (default
// debian:bookworm) and LARDER_REGISTRY (where to push; no push when unset).
package main

import (
	"bytes"
	"context"
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
		fmt.Fprintln(os.Stderr, "apt:", err)
		os.Exit(1)
	}
}

// install is one way to write the install step.
type install struct {
	name string
	step func(base, pkgs string) build.Stage
}

var ways = []install{
	{"the usual way (no cache mounts, lists removed)", func(base, pkgs string) build.Stage {
		return build.Image(base).Run("apt-get update && apt-get install -y --no-install-recommends " + pkgs +
			" && rm -rf /var/lib/apt/lists/*")
	}},
	{"with cache.Apt()", func(base, pkgs string) build.Stage {
		return build.Image(base).Run("apt-get update && apt-get install -y --no-install-recommends "+pkgs, cache.Apt())
	}},
}

// rebuild is what one way's rebuild did.
type rebuild struct {
	Way      string
	Packages []string // the packages apt downloaded
	Fetched  string   // apt's own summary, such as "Fetched 4242 kB in 0s (89.8 MB/s)"
	Step     time.Duration
	Cached   bool
}

func run(ctx context.Context, w io.Writer) ([]rebuild, error) {
	b, err := remote.Auto(ctx)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	base := os.Getenv("LARDER_DEBIAN_IMAGE")
	if base == "" {
		base = "debian:bookworm"
	}

	var out []rebuild
	for i, way := range ways {
		fmt.Fprintf(w, "== %s\n", way.name)
		for j, pkgs := range []string{"gcc", "gcc curl"} {
			var opts []build.SolveOption
			var log aptLog
			opts = append(opts, build.OnEvent(log.record))
			last := i == len(ways)-1 && j == 1
			ref := ""
			if reg := os.Getenv("LARDER_REGISTRY"); reg != "" && last {
				ref = reg + "/examples/apt:latest"
				opts = append(opts, build.Push(ref))
			}
			res, err := build.Solve(ctx, b, way.step(base, pkgs), opts...)
			if err != nil {
				return nil, err
			}
			step, _ := res.Report.Find("apt-get install")
			r := rebuild{Way: way.name, Packages: log.packages(), Fetched: log.fetched, Step: step.Duration(), Cached: step.Cached}
			label := "build:  "
			if j == 1 {
				label = "rebuild:"
				out = append(out, r)
			}
			fmt.Fprintf(w, "   %s apt-get install %-9s %s\n", label, pkgs, r)
			if ref != "" {
				fmt.Fprintf(w, "   pushed %s@%s\n", ref, res.Digest)
			}
		}
	}
	if len(out) == 2 {
		fmt.Fprintf(w, "== the rebuild with the preset downloaded %d of the %d packages the usual way did\n",
			len(out[1].Packages), len(out[0].Packages))
	}
	return out, nil
}

func (r rebuild) String() string {
	if r.Cached {
		return "the step came from cache"
	}
	if len(r.Packages) == 0 {
		return fmt.Sprintf("step %s, downloaded no package", r.Step.Round(100*time.Millisecond))
	}
	shown := r.Packages
	if len(shown) > 5 {
		shown = append(shown[:5:5], "…")
	}
	return fmt.Sprintf("step %s, downloaded %d packages (%s); apt: %q",
		r.Step.Round(100*time.Millisecond), len(r.Packages), strings.Join(shown, " "), r.Fetched)
}

// aptLog reads apt's output for the packages it downloaded.
type aptLog struct {
	mu      sync.Mutex
	partial []byte // output after the last complete line
	pkgs    []string
	fetched string
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
		l.line(strings.TrimSpace(string(l.partial[:i])))
		l.partial = l.partial[i+1:]
	}
}

// line records a package download, such as
// "Get:3 http://deb.debian.org/debian bookworm/main amd64 curl amd64 7.88.1-10 [315 kB]".
// Index downloads ("… bookworm InRelease [151 kB]", "… amd64 Packages
// [8792 kB]") have fewer fields.
func (l *aptLog) line(line string) {
	fields := strings.Fields(line)
	switch {
	case strings.HasPrefix(line, "Get:") && len(fields) >= 9:
		l.pkgs = append(l.pkgs, fields[4])
	case strings.HasPrefix(line, "Fetched "):
		l.fetched = line
	}
}

func (l *aptLog) packages() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.pkgs...)
}
