package buildtest_test

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/larder-build/larder/buildtest"
	"github.com/larder-build/larder/internal/testenv"
	"github.com/larder-build/larder/remote"
)

// childEnv names the environment variable that makes this test binary a
// child of the tests in builder_test.go, which run it again to see what
// buildtest does with a builder of its own.
const childEnv = "BUILDTEST_CHILD"

// TestMain runs the tests on Larder's test environment: a buildkitd and a
// registry holding busybox, which the first test starts and testenv.Main
// closes. buildtest uses that daemon (UseBuilder, in busybox), so it has
// nothing to stop. A child run is the user's case: buildtest starts the
// builder itself, configured to reach the parent's registry.
func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
		testenv.Main(m)
	case "main":
		buildtest.Configure(remote.InsecureRegistry(os.Getenv("BUILDTEST_REGISTRY")))
		buildtest.Main(m)
	case "no-main":
		buildtest.Configure(remote.InsecureRegistry(os.Getenv("BUILDTEST_REGISTRY")))
		os.Exit(m.Run())
	case "no-builder":
		buildtest.Configure(remote.Binary("/nonexistent/buildkitd"))
		buildtest.Main(m)
	default:
		fmt.Fprintf(os.Stderr, "unknown %s=%q\n", childEnv, os.Getenv(childEnv))
		os.Exit(2)
	}
}

var useEnv sync.Once

// busybox returns a busybox image that the shared builder pulls, and makes
// the test environment's daemon buildtest's builder.
func busybox(t *testing.T) string {
	t.Helper()
	env := testenv.Get(t)
	useEnv.Do(func() { buildtest.UseBuilder(env.Builder) })
	ref, err := env.Busybox(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// newStamp returns a string that is new on each call, for cache ids and
// steps that must not come from an earlier test's cache (go test -count=2
// runs a test twice in one process).
func newStamp() string { return fmt.Sprint(time.Now().UnixNano()) }

// recorder is a testing.TB that records a test's failure instead of
// failing it, to check what buildtest reports. Fatal and Skip end the
// goroutine of record, as they end a test's.
type recorder struct {
	testing.TB
	mu      sync.Mutex
	fatal   []string
	skipped []string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatal(args ...any) { r.stop(&r.fatal, fmt.Sprint(args...)) }

func (r *recorder) Fatalf(format string, args ...any) { r.stop(&r.fatal, fmt.Sprintf(format, args...)) }

func (r *recorder) FailNow() { r.stop(&r.fatal, "FailNow") }

func (r *recorder) Skip(args ...any) { r.stop(&r.skipped, fmt.Sprint(args...)) }

func (r *recorder) Skipf(format string, args ...any) {
	r.stop(&r.skipped, fmt.Sprintf(format, args...))
}

func (r *recorder) SkipNow() { r.stop(&r.skipped, "SkipNow") }

func (r *recorder) stop(to *[]string, msg string) {
	r.mu.Lock()
	*to = append(*to, msg)
	r.mu.Unlock()
	runtime.Goexit()
}

// record runs f with a recorder in a goroutine of its own and returns the
// message it failed with, or "" when it did not fail.
func record(t *testing.T, f func(tb testing.TB)) string {
	t.Helper()
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	if len(r.skipped) > 0 {
		t.Fatalf("skipped: %s", r.skipped[0])
	}
	return strings.Join(r.fatal, "\n")
}
