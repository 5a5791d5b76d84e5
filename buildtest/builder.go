package buildtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/internal/daemon"
	"github.com/larder-build/larder/remote"
)

// startTimeout bounds starting or dialing the builder.
const startTimeout = 2 * time.Minute

// stateDirPattern names the state directories of local builders. It starts
// like the temporary directories of remote.Start, so that a search for
// "larder-buildkitd-" finds every daemon Larder started.
const stateDirPattern = "larder-buildkitd-buildtest-"

// The test binary's builder. mu guards everything below it.
var (
	mu        sync.Mutex
	chosen    bool // a test asked for the builder: Configure and UseBuilder are too late
	mainRuns  bool // Main is running the tests
	given     build.Builder
	startOpts []remote.StartOption

	shared    build.Builder
	sharedErr error
	owned     *remote.Builder // dialed or started here, closed by Main
	local     *localState     // the local builder's state directory, nil when none was started
)

// localState is what a local builder leaves to clean up besides the
// daemon: its state directory, the lock that marks the directory in use,
// and the goroutine whose thread started the daemon.
type localState struct {
	dir     string
	unlock  func()
	release chan struct{}
}

// Configure sets options for the local builder that [Builder] starts when
// neither [UseBuilder] nor $BUILDKIT_HOST names one, such as
// remote.InsecureRegistry for a registry the tests reach over plain HTTP,
// remote.StateDir to keep cache mounts and layer cache between runs, or
// remote.Binary. They apply after buildtest's own defaults, so they win.
// A state directory serves one daemon at a time, and go test runs the test
// binaries of several packages at once: give each package its own.
// Each call adds to the options of earlier calls. A builder named by
// UseBuilder or $BUILDKIT_HOST ignores them.
//
// Call Configure in TestMain, before the tests run. It panics when a test
// has already asked for the builder, because the options could no longer
// apply.
func Configure(opts ...remote.StartOption) {
	mu.Lock()
	defer mu.Unlock()
	if chosen {
		panic("buildtest: Configure called after a test asked for the builder; call it in TestMain before the tests run")
	}
	startOpts = append(startOpts, opts...)
}

// UseBuilder makes b the builder of the test binary: a *remote.Builder the
// program dialed or started, or a fleet. It takes precedence over
// $BUILDKIT_HOST and the local builder. buildtest does not close b; its
// owner does, after the tests.
//
// Call UseBuilder in TestMain, or at least before the first test asks for
// the builder. It panics when b is nil or when a test has already asked for
// the builder.
func UseBuilder(b build.Builder) {
	mu.Lock()
	defer mu.Unlock()
	if b == nil {
		panic("buildtest: UseBuilder(nil): give a *remote.Builder or *remote.Fleet, or leave the call out for the builder buildtest finds or starts")
	}
	if chosen {
		panic("buildtest: UseBuilder called after a test asked for the builder; call it in TestMain before the tests run")
	}
	given = b
}

// Main runs the tests of a package and then stops the builder that
// buildtest dialed or started for them. Call it from TestMain:
//
//	func TestMain(m *testing.M) { buildtest.Main(m) }
//
// Main returns when the builder has stopped, so a TestMain may clean up
// more after it; when TestMain returns, the testing package exits with the
// tests' status. When the builder fails to stop, Main reports why on
// standard error and exits with status 1.
//
// Without Main, nothing stops the local builder when the tests end: a
// finalizer may never run, and a cleanup of the test that started the
// builder would stop it while other tests still use it. The daemon is then
// killed when the test binary exits (it is started with a parent-death
// signal, from a thread that lives as long as the process), its state
// directory stays in the temporary directory until the next test binary
// that starts a local builder removes it, and the test that started it
// logs this.
func Main(m *testing.M) {
	mu.Lock()
	mainRuns = true
	mu.Unlock()
	m.Run()
	if err := shutdown(); err != nil {
		fmt.Fprintf(os.Stderr, "buildtest: stopping the builder: %v\n", err)
		os.Exit(1)
	}
}

// shutdown closes what buildtest opened and removes the local builder's
// state directory.
func shutdown() error {
	mu.Lock()
	defer mu.Unlock()
	var errs []error
	if owned != nil {
		errs = append(errs, owned.Close())
		owned = nil
	}
	if local != nil {
		close(local.release)
		errs = append(errs, os.RemoveAll(local.dir))
		local.unlock()
		local = nil
	}
	shared, sharedErr = nil, errors.New("buildtest: the builder was stopped by Main")
	return errors.Join(errs...)
}

// Builder returns the builder of the test binary, shared by all its tests
// and made on first use: the one given to [UseBuilder]; else the one
// remote.Auto finds or starts: the daemon at $BUILDKIT_HOST, a builder at
// BuildKit's default socket, a builder container of Docker or Podman, or a
// buildkitd child process (as root, or rootless) with a new state
// directory, configured with [Configure]'s options. Its executable is found
// in PATH or in ~/.cache/larder/bin, where remote.Install and Larder's
// scripts/setup put it ($LARDER_CACHE/bin when that is set).
//
// Because the tests share one builder, they share its cache: a cache mount
// written by one test is seen by the next test that mounts the same cache
// id, and a step that an earlier test ran comes from cache. Each test
// binary (each package) has a builder of its own; set $BUILDKIT_HOST to
// share one daemon between packages.
//
// When no builder can be had, Builder skips the test with the reason, or
// fails it when the CI environment variable is "true": in CI a missing
// builder is a failure, not a skip. A local builder is stopped by [Main].
func Builder(t testing.TB) build.Builder {
	t.Helper()
	b, err := get(t)
	if err != nil {
		daemon.SkipUnlessCI(t, "buildtest: no builder", err)
	}
	return b
}

// get returns the shared builder, choosing it on first use.
func get(t testing.TB) (build.Builder, error) {
	mu.Lock()
	defer mu.Unlock()
	if chosen {
		return shared, sharedErr
	}
	chosen = true
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	switch {
	case given != nil:
		shared = given
	default:
		b, ls, err := auto(ctx)
		if err != nil {
			sharedErr = err
			break
		}
		shared, owned, local = b, b, ls
		if ls != nil && !mainRuns {
			t.Logf("buildtest: started a local buildkitd, but TestMain does not call buildtest.Main: "+
				"the daemon is killed when the test binary exits and its state directory %s is left until the next local start", ls.dir)
		}
	}
	return shared, sharedErr
}

// auto gets a builder with remote.Auto. Should Auto start a local
// buildkitd, it runs in a new state directory, made after removing the
// directories that earlier test binaries of the same user left; the
// directory is returned with the builder, nil when Auto found another.
func auto(ctx context.Context) (*remote.Builder, *localState, error) {
	parent := os.TempDir()
	// One lock over the sweep and the making of a new directory, so that a
	// test binary never sweeps a directory another one has just made. Each
	// user has a lock and directories of their own: root's are not theirs.
	uid := strconv.Itoa(os.Getuid())
	unlockParent, err := daemon.Lock(filepath.Join(parent, "larder-buildtest-"+uid+".lock"))
	if err != nil {
		return nil, nil, err
	}
	pattern := stateDirPattern + uid + "-"
	removeStale(parent, pattern)
	dir, err := os.MkdirTemp(parent, pattern)
	if err != nil {
		unlockParent()
		return nil, nil, err
	}
	unlock, err := daemon.TryLock(filepath.Join(dir, "in-use.lock"))
	unlockParent()
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	opts := append([]remote.StartOption{remote.StateDir(dir)}, startOpts...)

	// The daemon gets SIGKILL when the thread that started it exits. Go
	// ends threads only when a goroutine locked to one exits, so start it
	// from a locked goroutine that lives until Main stops the daemon: then
	// it dies with the process, whatever the tests do with their threads.
	type started struct {
		b   *remote.Builder
		err error
	}
	ch := make(chan started, 1)
	release := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		b, err := remote.Auto(ctx, remote.AutoStartOptions(opts...))
		ch <- started{b, err}
		if err == nil && (b.Origin() == remote.FromLocal || b.Origin() == remote.FromRootless) {
			<-release
		}
	}()
	s := <-ch
	if s.err != nil || (s.b.Origin() != remote.FromLocal && s.b.Origin() != remote.FromRootless) {
		os.RemoveAll(dir)
		unlock()
		return s.b, nil, s.err
	}
	return s.b, &localState{dir: dir, unlock: unlock, release: release}, nil
}

// removeStale removes the state directories in parent named by pattern
// whose test binary has exited: no process holds their lock.
func removeStale(parent, pattern string) {
	dirs, _ := filepath.Glob(filepath.Join(parent, pattern+"*"))
	for _, d := range dirs {
		unlock, err := daemon.TryLock(filepath.Join(d, "in-use.lock"))
		if err != nil {
			continue // in use, or not ours
		}
		os.RemoveAll(d)
		unlock()
	}
}
