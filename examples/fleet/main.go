// Command fleet builds one image for linux/amd64 and linux/arm64 on a fleet
// of two builders, each platform on the member that runs it natively, and
// pushes one index of both. It prints which member built which platform.
//
// Run it with a local amd64 builder, an arm64 one (emulated by qemu) and a
// registry set up for it:
//
//	go run ./internal/cmd/withenv -arm64 -- go run ./examples/fleet
//
// It reads BUILDKIT_HOST (the amd64 member), LARDER_ARM64_BUILDKIT_HOST
// (the arm64 member), LARDER_REGISTRY and LARDER_BUSYBOX_IMAGE.
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
	"github.com/larder-build/larder/remote"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer) error {
	amd, arm, registry := os.Getenv("BUILDKIT_HOST"), os.Getenv("LARDER_ARM64_BUILDKIT_HOST"), os.Getenv("LARDER_REGISTRY")
	if amd == "" || arm == "" || registry == "" {
		return errors.New("set BUILDKIT_HOST, LARDER_ARM64_BUILDKIT_HOST and LARDER_REGISTRY")
	}
	// Members declare the platforms they run natively; a member that only
	// emulates a platform gets it only with remote.AllowEmulation.
	fleet, err := remote.NewFleet(ctx,
		remote.Member(amd, remote.WithName("amd64-builder"), remote.Platforms("linux/amd64")),
		remote.Member(arm, remote.WithName("arm64-builder"), remote.Platforms("linux/arm64")),
	)
	if err != nil {
		return err
	}
	defer fleet.Close()

	img := build.Image(os.Getenv("LARDER_BUSYBOX_IMAGE")).
		Run("uname -m > /arch").
		Cmd("cat", "/arch")
	ref := fmt.Sprintf("%s/examples/fleet:%d", registry, time.Now().Unix())
	res, err := build.Solve(ctx, fleet, img,
		build.Platforms("linux/amd64", "linux/arm64"),
		build.Push(ref),
		build.Key("examples/fleet"), // keeps this project on the same members
	)
	if err != nil {
		return err
	}
	for _, p := range res.Platforms {
		fmt.Fprintf(w, "%s built on %s: %s\n", p.Platform, p.Builder, p.Digest)
	}
	fmt.Fprintf(w, "pushed %s@%s, one index of both\n", ref, res.Digest)
	return nil
}
