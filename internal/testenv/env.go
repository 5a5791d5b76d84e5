// Package testenv is Larder's integration-test environment: a real buildkitd
// with the runc worker, started as a child process with its own state dir and
// socket; go-containerregistry's in-memory registry served on 127.0.0.1, which
// the daemon reaches over plain HTTP; and base images (Debian bookworm from
// debootstrap, busybox for linux/amd64 and linux/arm64) made once, cached on
// disk and pushed to that registry; and, on first use, an in-memory
// S3-compatible server on 127.0.0.1 (larder-s3, see [Env.S3]).
//
// A package's TestMain calls [Main]; tests call [Get], which starts the
// environment on first use and shares it with the package's other tests.
// When the environment can't start (no buildkitd, not root), Get skips the
// test with the reason, or fails it when CI=true.
package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/larder-build/larder/internal/daemon"
	"github.com/larder-build/larder/remote"
)

// Env is a running environment. Its fields are read-only.
type Env struct {
	// Builder is a linux/amd64 daemon with a fresh state directory.
	Builder *remote.Builder
	// Registry is the host:port of the in-memory registry, such as
	// "127.0.0.1:39211". The daemon reaches it over plain HTTP.
	Registry string

	srv   *http.Server
	cache string

	mu       sync.Mutex
	images   map[string]string // base image name -> pushed reference
	builders []*remote.Builder // extra daemons, closed with the Env

	s3mu sync.Mutex
	s3   *s3Process // started by S3, stopped by Close
}

// CacheDir is where setup and the environment keep what they build:
// daemon.CacheDir ($LARDER_CACHE, else ~/.cache/larder), or "larder" in the
// temporary directory when the user has no cache directory.
func CacheDir() string {
	d, err := daemon.CacheDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "larder")
	}
	return d
}

// buildkitd returns the daemon binary: buildkitd in PATH, else the one
// scripts/setup built, else the path where setup puts it, for remote.Start
// to report as missing.
func buildkitd() string {
	if p, err := daemon.LookPath("buildkitd"); err == nil {
		return p
	}
	return filepath.Join(CacheDir(), "bin", "buildkitd")
}

// Start starts a registry and a linux/amd64 daemon. The caller must Close
// the Env.
func Start(ctx context.Context) (*Env, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("testenv: listening for the registry: %w", err)
	}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := &http.Server{Handler: reg, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	e := &Env{
		Registry: ln.Addr().String(),
		srv:      srv,
		cache:    CacheDir(),
		images:   map[string]string{},
	}
	b, err := e.NewBuilder(ctx, remote.WorkerPlatforms("linux/amd64"), remote.StartDialOptions(remote.WithName("amd64")))
	if err != nil {
		srv.Close()
		return nil, err
	}
	e.Builder = b
	return e, nil
}

// NewBuilder starts another daemon with a fresh state directory, reaching
// the registry over plain HTTP. It is closed with the Env.
func (e *Env) NewBuilder(ctx context.Context, opts ...remote.StartOption) (*remote.Builder, error) {
	opts = append([]remote.StartOption{remote.Binary(buildkitd()), remote.InsecureRegistry(e.Registry)}, opts...)
	b, err := remote.Start(ctx, opts...)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.builders = append(e.builders, b)
	e.mu.Unlock()
	return b, nil
}

// Arm64 starts a daemon whose worker's platform is linux/arm64, which it
// runs under qemu emulation (binfmt set up by scripts/setup). Like every
// daemon here, it also lists the other platforms it can emulate.
func (e *Env) Arm64(ctx context.Context) (*remote.Builder, error) {
	if _, err := os.Stat("/proc/sys/fs/binfmt_misc/qemu-aarch64"); err != nil {
		return nil, fmt.Errorf("testenv: no binfmt handler for linux/arm64 (run scripts/setup): %w", err)
	}
	return e.NewBuilder(ctx, remote.WorkerPlatforms("linux/arm64"), remote.StartDialOptions(remote.WithName("arm64")))
}

// Close stops every daemon, the S3 server and the registry, and waits for
// the daemons and the S3 server to exit.
func (e *Env) Close() error {
	e.mu.Lock()
	bs := e.builders
	e.builders = nil
	e.mu.Unlock()
	var errs []error
	for _, b := range bs {
		errs = append(errs, b.Close())
	}
	errs = append(errs, e.closeS3(), e.srv.Close())
	return errors.Join(errs...)
}

var (
	shared     *Env
	sharedErr  error
	sharedOnce sync.Once
)

// Main runs a package's tests and then closes the shared environment, if a
// test started it. Call it from TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	if shared != nil {
		if err := shared.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: closing: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

// Get returns the package's shared environment, starting it on first use.
// When it can't start, Get skips the test with the reason, or fails it when
// the CI environment variable is "true".
func Get(t testing.TB) *Env {
	t.Helper()
	if testing.Short() {
		Unavailable(t, errors.New("integration tests do not run with -short"))
	}
	sharedOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		shared, sharedErr = Start(ctx)
	})
	if sharedErr != nil {
		Unavailable(t, sharedErr)
	}
	return shared
}

// Unavailable skips t because the environment lacks something, or fails it
// when CI=true: in CI a missing builder is a failure, not a skip.
func Unavailable(t testing.TB, err error) {
	t.Helper()
	daemon.SkipUnlessCI(t, "integration environment unavailable", err)
}
