// Command bindmount builds from a local source directory without copying it
// into the image: the directory is sent by the client session and bind
// mounted, read-only, into the one step that needs it. The image holds the
// step's output, not the sources.
//
// Run it with a local builder and registry set up for it:
//
//	go run ./internal/cmd/withenv -- go run ./examples/bindmount
//
// It reads BUILDKIT_HOST (the builder) and LARDER_BUSYBOX_IMAGE (default
// busybox:1.37), and sends ./examples/bindmount/src (or the directory in
// $SRC).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/mounts"
	"github.com/larder-build/larder/remote"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bindmount:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer) error {
	b, err := remote.Auto(ctx)
	if err != nil {
		return err
	}
	defer b.Close()

	src := os.Getenv("SRC")
	if src == "" {
		src = filepath.Join("examples", "bindmount", "src")
		if _, err := os.Stat(src); err != nil {
			src = "src" // run from the example's own directory, as go test does
		}
	}
	img := build.Image(env("LARDER_BUSYBOX_IMAGE", "busybox:1.37")).
		Run("sh /src/build.sh", mounts.Bind("/src", build.Local("src")))

	out, err := os.MkdirTemp("", "bindmount-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(out)
	if _, err := build.Solve(ctx, b, img, build.WithLocal("src", src), build.LocalDir(out)); err != nil {
		return err
	}
	report, err := os.ReadFile(filepath.Join(out, "out", "report.txt"))
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "the step's output, from the image:\n%s", report)
	if _, err := os.Stat(filepath.Join(out, "src", "words.txt")); err == nil {
		return fmt.Errorf("the sources ended up in the image")
	}
	fmt.Fprintln(w, "the sources are not in the image: they were only mounted for the step")
	return nil
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
