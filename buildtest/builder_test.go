package buildtest_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/buildtest"
	"github.com/larder-build/larder/internal/testenv"
)

// TestChild is what the tests below run in a child: the test of a user
// whose TestMain sets nothing but buildtest.Configure, so that buildtest
// starts a local builder of its own. It prints the daemon's pid and state
// for the parent to check.
func TestChild(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		t.Skip("run in a child by the tests of the local builder")
	}
	img := buildtest.Build(t, build.Image(os.Getenv("LARDER_BUSYBOX_IMAGE")))
	if r := img.Run(t, "echo", "hello from the child"); r.Stdout != "hello from the child\n" {
		t.Fatalf("Run = %+v", r)
	}
	pid, root := daemonOf(t, os.Getpid())
	fmt.Printf("CHILD daemon=%d root=%s\n", pid, root)
}

// Without Main, the local builder dies with the test binary and leaves its
// state directory; with Main, it is stopped and its state directory
// removed, along with those that earlier binaries left.
func TestLocalBuilderLifecycle(t *testing.T) {
	env := testenv.Get(t)
	bb := busybox(t)
	vars := []string{"BUILDTEST_REGISTRY=" + env.Registry, "LARDER_BUSYBOX_IMAGE=" + bb}

	out, err := runChild(t, "no-main", vars...)
	if err != nil || !strings.Contains(out, "--- PASS: TestChild") {
		t.Fatalf("child without Main: %v\n%s", err, out)
	}
	if !strings.Contains(out, "does not call buildtest.Main") {
		t.Errorf("the child without Main did not say what becomes of its builder:\n%s", out)
	}
	pid, root := childDaemon(t, out)
	waitGone(t, pid, "the daemon of a child without Main")
	left := filepath.Dir(root)
	if _, err := os.Stat(left); err != nil {
		t.Errorf("the state directory of a child without Main: %v; want it left for the next start", err)
	}

	out, err = runChild(t, "main", vars...)
	if err != nil || !strings.Contains(out, "--- PASS: TestChild") {
		t.Fatalf("child with Main: %v\n%s", err, out)
	}
	pid, root = childDaemon(t, out)
	waitGone(t, pid, "the daemon of a child with Main")
	for _, dir := range []string{filepath.Dir(root), left} {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("state directory %s is still there after Main (%v)", dir, err)
			os.RemoveAll(dir)
		}
	}
}

// Without a builder, a test skips with the reason, and fails when CI=true.
func TestNoBuilderSkipsOrFailsInCI(t *testing.T) {
	out, err := runChild(t, "no-builder")
	if err != nil || !strings.Contains(out, "--- SKIP: TestChild") || !strings.Contains(out, "buildtest: no builder") {
		t.Errorf("without CI: %v, want a skip with the reason:\n%s", err, out)
	}
	out, err = runChild(t, "no-builder", "CI=true")
	if err == nil || !strings.Contains(out, "--- FAIL: TestChild") || !strings.Contains(out, "CI=true") {
		t.Errorf("with CI=true: %v, want a failure that names CI=true:\n%s", err, out)
	}
}

// runChild runs TestChild in this test binary again, with childEnv set to
// mode and without $BUILDKIT_HOST and $CI unless vars set them.
func runChild(t *testing.T, mode string, vars ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestChild$", "-test.v", "-test.count=1")
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); name != "BUILDKIT_HOST" && name != "CI" && name != childEnv {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, childEnv+"="+mode)
	cmd.Env = append(cmd.Env, vars...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// childDaemon reads the line TestChild prints.
func childDaemon(t *testing.T, out string) (int, string) {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(line, "CHILD daemon="); ok {
			pid, root, _ := strings.Cut(rest, " root=")
			n, err := strconv.Atoi(pid)
			if err == nil && root != "" {
				return n, root
			}
		}
	}
	t.Fatalf("the child printed no daemon:\n%s", out)
	return 0, ""
}

// daemonOf returns the pid and --root of the buildkitd that is a child of
// the process parent.
func daemonOf(t *testing.T, parent int) (int, string) {
	t.Helper()
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, st := range stats {
		b, err := os.ReadFile(st)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 || !strings.Contains(s[:i], "(buildkitd") {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 || f[1] != strconv.Itoa(parent) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(st)))
		cmdline, _ := os.ReadFile(filepath.Join(filepath.Dir(st), "cmdline"))
		args := strings.Split(string(cmdline), "\x00")
		for j, a := range args {
			if a == "--root" && j+1 < len(args) {
				return pid, args[j+1]
			}
		}
	}
	t.Fatalf("no buildkitd is a child of process %d", parent)
	return 0, ""
}

// waitGone waits for the process pid to end.
func waitGone(t *testing.T, pid int, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		// Gone, or a zombie about to be reaped by init.
		if err != nil || strings.Contains(string(b), ") Z ") {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s (pid %d) is still running", what, pid)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}
