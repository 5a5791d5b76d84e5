// Command withenv runs a command inside Larder's local environment: a
// buildkitd child process with a fresh state directory, an in-memory
// registry on 127.0.0.1, and the base images pushed to it. The command sees
//
//	BUILDKIT_HOST               the daemon's address (linux/amd64)
//	LARDER_ARM64_BUILDKIT_HOST  a linux/arm64 daemon's address, with -arm64
//	LARDER_REGISTRY             the registry's host:port (plain HTTP)
//	LARDER_DEBIAN_IMAGE         Debian bookworm (linux/amd64)
//	LARDER_BUSYBOX_IMAGE        busybox (linux/amd64 and linux/arm64)
//
// and everything is stopped when it exits. Usage:
//
//	go run ./internal/cmd/withenv [-arm64] -- go run ./examples/apt
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/larder-build/larder/internal/testenv"
)

func main() {
	os.Exit(run())
}

func run() int {
	arm64 := flag.Bool("arm64", false, "also start a linux/arm64 daemon")
	flag.Parse()
	args := flag.Args()
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: withenv [--] command [args...]")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	start := time.Now()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	env, err := testenv.Start(sctx)
	if err != nil {
		cancel()
		fmt.Fprintf(os.Stderr, "withenv: %v\n", err)
		return 1
	}
	defer env.Close()
	vars, err := env.Export(sctx, *arm64)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "withenv: %v\n", err)
		return 1
	}
	for k, v := range vars {
		os.Setenv(k, v)
	}
	fmt.Fprintf(os.Stderr, "withenv: buildkitd at %s, registry at %s (ready in %s)\n",
		env.Builder.Address(), env.Registry, time.Since(start).Round(100*time.Millisecond))

	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() > 0 {
			return ee.ExitCode()
		}
		fmt.Fprintf(os.Stderr, "withenv: %v\n", err)
		return 1
	}
	return 0
}
