package daemon

import "os"

// TB is the part of testing.TB that [SkipUnlessCI] uses: any testing.TB,
// such as a *testing.T, is one. The package declares it instead of
// importing testing, so that library packages may import daemon.
type TB interface {
	// Helper marks the caller as a test helper, as testing.TB's does.
	Helper()
	// Fatalf fails and ends the test, as testing.TB's does.
	Fatalf(format string, args ...any)
	// Skipf skips the test, as testing.TB's does.
	Skipf(format string, args ...any)
}

// SkipUnlessCI ends the test t because something it needs, such as a
// builder, is unavailable: msg says what, err says why. It skips t with
// "msg: err", or, when the CI environment variable is "true", fails it with
// "msg (CI=true, so this fails): err": in CI a missing builder is a
// failure, not a skip. Like t.Skipf and t.Fatalf, it must be called from
// the goroutine running the test; given a testing.TB, it does not return.
func SkipUnlessCI(t TB, msg string, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true, so this fails): %v", msg, err)
	}
	t.Skipf("%s: %v", msg, err)
}
