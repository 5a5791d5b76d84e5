// Command gomodules shows the go preset: it builds a Go module whose build
// fetches one dependency, then rebuilds it with one more. With cache.Go()
// the module cache and the build cache are cache mounts, so the rebuild
// downloads only the added module. The go command comes from Debian's
// golang-go, installed with the apt preset.
//
// Run it with a local builder and a Debian image set up for it:
//
//	go run ./internal/cmd/withenv -- go run ./examples/gomodules
//
// It reads BUILDKIT_HOST and LARDER_DEBIAN_IMAGE (default debian:bookworm).
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

	"github.com/moby/buildkit/client/llb"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/cache"
	"github.com/larder-build/larder/remote"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if _, err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gomodules:", err)
		os.Exit(1)
	}
}

// run builds twice and returns the modules each build downloaded. netOpts
// go to the step that downloads, for networks that need them (a proxy, a CA
// of their own).
func run(ctx context.Context, w io.Writer, netOpts ...llb.RunOption) ([][]string, error) {
	b, err := remote.Auto(ctx)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	base := os.Getenv("LARDER_DEBIAN_IMAGE")
	if base == "" {
		base = "debian:bookworm"
	}
	withGo := build.Image(base).
		Run("apt-get update && apt-get install -y --no-install-recommends golang-go ca-certificates", cache.Apt())

	var downloaded [][]string
	for _, modules := range []string{
		"github.com/google/uuid@v1.6.0",
		"github.com/google/uuid@v1.6.0 github.com/pkg/errors@v0.9.1",
	} {
		img := withGo.Run(
			"mkdir -p /src && cd /src && go mod init example.com/app && go get -x "+modules,
			append(netOpts, cache.Go())...)
		var log modLog
		if _, err := build.Solve(ctx, b, img, build.OnEvent(log.record)); err != nil {
			return nil, err
		}
		fmt.Fprintf(w, "go get %s\n   downloaded %d modules: %s\n", modules, len(log.zips), strings.Join(log.zips, " "))
		downloaded = append(downloaded, log.zips)
	}
	return downloaded, nil
}

// modLog reads `go get -x` for the module zips it downloaded: lines like
// "# get https://proxy.golang.org/github.com/google/uuid/@v/v1.6.0.zip".
type modLog struct {
	mu      sync.Mutex
	partial []byte
	zips    []string
}

func (l *modLog) record(e build.Event) {
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
		line := strings.TrimSpace(string(l.partial[:i]))
		l.partial = l.partial[i+1:]
		if url, ok := strings.CutPrefix(line, "# get "); ok && strings.HasSuffix(url, ".zip") {
			mod, _, _ := strings.Cut(strings.TrimPrefix(url, "https://proxy.golang.org/"), "/@v/")
			l.zips = append(l.zips, mod)
		}
	}
}
