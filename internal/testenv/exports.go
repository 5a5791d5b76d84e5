package testenv

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"
)

// The environment variables Export sets, which Larder's examples read.
const (
	EnvBuilder      = "BUILDKIT_HOST"              // the linux/amd64 daemon
	EnvArm64Builder = "LARDER_ARM64_BUILDKIT_HOST" // the linux/arm64 daemon, with WithArm64
	EnvRegistry     = "LARDER_REGISTRY"            // host:port of the registry, plain HTTP
	EnvDebian       = "LARDER_DEBIAN_IMAGE"        // Debian bookworm, linux/amd64
	EnvBusybox      = "LARDER_BUSYBOX_IMAGE"       // busybox, linux/amd64 and linux/arm64
)

// Export pushes the base images and returns the environment variables that
// point a program at e: the daemon, the registry and the images; with
// arm64, also a linux/arm64 daemon, started now.
func (e *Env) Export(ctx context.Context, arm64 bool) (map[string]string, error) {
	debian, err := e.Debian(ctx)
	if err != nil {
		return nil, err
	}
	busybox, err := e.Busybox(ctx)
	if err != nil {
		return nil, err
	}
	vars := map[string]string{
		EnvBuilder:  e.Builder.Address(),
		EnvRegistry: e.Registry,
		EnvDebian:   debian,
		EnvBusybox:  busybox,
	}
	if arm64 {
		arm, err := e.Arm64(ctx)
		if err != nil {
			return nil, err
		}
		vars[EnvArm64Builder] = arm.Address()
	}
	return vars, nil
}

// MainWithExports is TestMain for an example's tests: unless the
// environment variables are set already (a user pointing the example at
// their own builder and registry), it starts an Env, sets them with
// Export, runs the tests and closes the Env. When the Env can't start, the
// tests run without the variables, and skip, or the run fails when CI=true.
func MainWithExports(m *testing.M, arm64 bool) {
	flag.Parse()
	if os.Getenv(EnvRegistry) != "" || testing.Short() {
		os.Exit(m.Run())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	env, err := Start(ctx)
	var vars map[string]string
	if err == nil {
		vars, err = env.Export(ctx, arm64)
	}
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "testenv: no environment for the example: %v\n", err)
		if os.Getenv("CI") == "true" {
			os.Exit(1)
		}
	}
	for k, v := range vars {
		os.Setenv(k, v)
	}
	code := m.Run()
	if env != nil {
		if err := env.Close(); err != nil && code == 0 {
			fmt.Fprintf(os.Stderr, "testenv: closing: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// NeedVars skips t unless the variables are set, or fails it when CI=true.
func NeedVars(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if os.Getenv(n) == "" {
			Unavailable(t, fmt.Errorf("$%s is not set", n))
		}
	}
}
