package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/larder-build/larder/buildtest"
	"github.com/larder-build/larder/internal/testenv"
)

// TestMain runs the tests with buildtest.Main, which stops the builder
// buildtest dialed or started for them; in a user's project it is the only
// line of TestMain.
//
// The rest is for Larder's own suite, which runs `go test ./...` without
// $LARDER_BUSYBOX_IMAGE: then TestMain starts Larder's test environment (a
// buildkitd, and a registry holding busybox) and points $BUILDKIT_HOST and
// $LARDER_BUSYBOX_IMAGE at it, so that the tests run as they do for a user
// who sets both. It does nothing under -short, where the tests skip.
func TestMain(m *testing.M) {
	flag.Parse()
	if os.Getenv("LARDER_BUSYBOX_IMAGE") == "" && !testing.Short() {
		env, err := startTestEnv()
		if err != nil {
			fmt.Fprintf(os.Stderr, "examples/buildtest: no test environment, so the tests skip: %v\n", err)
			if os.Getenv("CI") == "true" {
				os.Exit(1)
			}
		} else {
			defer env.Close()
		}
	}
	buildtest.Main(m)
}

func startTestEnv() (*testenv.Env, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env, err := testenv.Start(ctx)
	if err != nil {
		return nil, err
	}
	ref, err := env.Busybox(ctx)
	if err != nil {
		env.Close()
		return nil, err
	}
	os.Setenv("BUILDKIT_HOST", env.Builder.Address())
	os.Setenv("LARDER_BUSYBOX_IMAGE", ref)
	return env, nil
}
