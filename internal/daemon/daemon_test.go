package daemon_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/larder-build/larder/internal/daemon"
)

func TestCacheDir(t *testing.T) {
	t.Setenv("LARDER_CACHE", "/srv/larder")
	if d, err := daemon.CacheDir(); err != nil || d != "/srv/larder" {
		t.Errorf("with $LARDER_CACHE: CacheDir() = %q, %v; want /srv/larder", d, err)
	}
	t.Setenv("LARDER_CACHE", "")
	t.Setenv("XDG_CACHE_HOME", "/home/u/.xdg")
	if d, err := daemon.CacheDir(); err != nil || d != "/home/u/.xdg/larder" {
		t.Errorf("without $LARDER_CACHE: CacheDir() = %q, %v; want /home/u/.xdg/larder", d, err)
	}
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("HOME", "")
	if d, err := daemon.CacheDir(); err == nil {
		t.Errorf("without a cache directory: CacheDir() = %q, want an error", d)
	}
}

// writeExe makes an executable file at path.
func writeExe(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestLookPath(t *testing.T) {
	path, cache := t.TempDir(), t.TempDir()
	t.Setenv("PATH", path)
	t.Setenv("LARDER_CACHE", cache)
	const name = "larder-daemon-test-tool"

	_, err := daemon.LookPath(name)
	if !errors.Is(err, exec.ErrNotFound) {
		t.Fatalf("in neither place: err = %v, want exec.ErrNotFound", err)
	}
	inCache := filepath.Join(cache, "bin", name)
	if want := fmt.Sprintf("exec: %q: executable file not found in $PATH, nor at %s", name, inCache); err.Error() != want {
		t.Errorf("in neither place: err = %q, want %q", err, want)
	}

	writeExe(t, inCache)
	if p, err := daemon.LookPath(name); err != nil || p != inCache {
		t.Errorf("in the cache: LookPath = %q, %v; want %q", p, err, inCache)
	}

	inPath := filepath.Join(path, name)
	writeExe(t, inPath)
	if p, err := daemon.LookPath(name); err != nil || p != inPath {
		t.Errorf("in PATH and the cache: LookPath = %q, %v; want %q (PATH first)", p, err, inPath)
	}

	// A path is not looked for in the cache.
	if p, err := daemon.LookPath(filepath.Join(t.TempDir(), name)); err == nil {
		t.Errorf("a missing path: LookPath = %q, want an error", p)
	}

	t.Setenv("PATH", "")
	t.Setenv("LARDER_CACHE", "")
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("HOME", "")
	if p, err := daemon.LookPath(name); !errors.Is(err, exec.ErrNotFound) {
		t.Errorf("without a cache directory: LookPath = %q, %v; want exec.ErrNotFound", p, err)
	}
}

func TestLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	unlock, err := daemon.Lock(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := daemon.TryLock(path); !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Fatalf("TryLock while locked: err = %v, want EWOULDBLOCK", err)
	}
	got := make(chan error)
	go func() {
		u, err := daemon.Lock(path)
		if err == nil {
			u()
		}
		got <- err
	}()
	unlock()
	if err := <-got; err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	unlock, err = daemon.TryLock(path)
	if err != nil {
		t.Fatalf("TryLock when free: %v", err)
	}
	unlock()
}

// fakeTB records how SkipUnlessCI ended the test.
type fakeTB struct{ fatal, skip string }

func (*fakeTB) Helper()                          {}
func (f *fakeTB) Fatalf(format string, a ...any) { f.fatal = fmt.Sprintf(format, a...) }
func (f *fakeTB) Skipf(format string, a ...any)  { f.skip = fmt.Sprintf(format, a...) }

func TestSkipUnlessCI(t *testing.T) {
	var _ daemon.TB = testing.TB(t)
	err := errors.New("no buildkitd")
	t.Setenv("CI", "")
	var f fakeTB
	daemon.SkipUnlessCI(&f, "x: no builder", err)
	if f.fatal != "" || f.skip != "x: no builder: no buildkitd" {
		t.Errorf("outside CI: fatal %q, skip %q; want the skip only", f.fatal, f.skip)
	}
	t.Setenv("CI", "true")
	f = fakeTB{}
	daemon.SkipUnlessCI(&f, "x: no builder", err)
	if f.fatal != "x: no builder (CI=true, so this fails): no buildkitd" {
		t.Errorf("with CI=true: fatal %q, want the failure", f.fatal)
	}
}
