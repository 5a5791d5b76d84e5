// Command buildtest builds greet, a tiny command-line program in a busybox
// image, and its tests in app_test.go show a Go test that checks an image
// with Larder's buildtest package: build the recipe, run the program in the
// result, read a file from it, from parallel tests that share the builder.
//
// Run the tests with
//
//	go test ./examples/buildtest/
//
// They need a builder ($BUILDKIT_HOST, or root and buildkitd for a local
// one) and, in $LARDER_BUSYBOX_IMAGE, a busybox image it can pull; without
// the image they skip. In Larder's own suite, TestMain provides both.
//
// Run the program with
//
//	go run ./examples/buildtest/
//
// to build the image on $BUILDKIT_HOST from $LARDER_BUSYBOX_IMAGE (default
// busybox:1.37) and write its filesystem to ./greet-rootfs.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/moby/buildkit/client/llb"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/remote"
)

// greetScript is the program: it greets its argument with the greeting of
// /etc/greet.conf.
const greetScript = `#!/bin/sh
if [ $# -ne 1 ]; then
	echo "usage: greet NAME" >&2
	exit 2
fi
. /etc/greet.conf
echo "$greeting, $1"
`

// greeter is the recipe the tests check: base with greet installed and
// configured.
func greeter(base string) build.Stage {
	script := build.From(llb.Scratch().File(llb.Mkfile("/greet", 0o755, []byte(greetScript))))
	return build.Image(base).
		Copy(script, "/greet", "/usr/local/bin/greet").
		Run("echo greeting=hello > /etc/greet.conf").
		Entrypoint("greet")
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "buildtest:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	b, err := remote.Auto(ctx)
	if err != nil {
		return err
	}
	defer b.Close()
	base := os.Getenv("LARDER_BUSYBOX_IMAGE")
	if base == "" {
		base = "busybox:1.37"
	}
	res, err := build.Solve(ctx, b, greeter(base), build.LocalDir("greet-rootfs"), build.Progress(os.Stderr, "auto"))
	if err != nil {
		return err
	}
	fmt.Print(res.Report)
	return nil
}
