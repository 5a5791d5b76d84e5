package testenv_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"

	"github.com/larder-build/larder/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// solveToDir solves st on the environment's builder and exports the result's
// filesystem to a new directory.
func solveToDir(t *testing.T, c *client.Client, st llb.State) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	def, err := st.Marshal(ctx, llb.LinuxAmd64)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	_, err = c.Solve(ctx, def, client.SolveOpt{
		Exports: []client.ExportEntry{{Type: client.ExporterLocal, OutputDir: dir}},
	}, nil)
	if err != nil {
		t.Fatalf("solve: %v", err)
	}
	return dir
}

// The environment's reason to exist: a cache mount written by one solve is
// seen by the next.
func TestCacheMountPersistsAcrossSolves(t *testing.T) {
	env := testenv.Get(t)
	ctx := context.Background()
	ref, err := env.Busybox(ctx)
	if err != nil {
		t.Fatal(err)
	}
	base := llb.Image(ref)
	cacheMount := llb.AddMount("/cache", llb.Scratch(), llb.AsPersistentCacheDir("testenv-"+t.Name(), llb.CacheMountShared))
	nonce := time.Now().UnixNano()

	first := base.Run(llb.Shlexf(`sh -c 'echo first-%d >> /cache/log; cp /cache/log /seen'`, nonce), cacheMount).Root()
	got := testenv.ReadFile(t, solveToDir(t, env.Builder.Client(), first), "seen")
	if want := "first-" + itoa(nonce) + "\n"; got != want {
		t.Fatalf("first solve saw %q, want %q", got, want)
	}

	second := base.Run(llb.Shlexf(`sh -c 'echo second-%d >> /cache/log; cp /cache/log /seen'`, nonce), cacheMount).Root()
	got = testenv.ReadFile(t, solveToDir(t, env.Builder.Client(), second), "seen")
	if want := "first-" + itoa(nonce) + "\nsecond-" + itoa(nonce) + "\n"; got != want {
		t.Fatalf("second solve saw %q, want %q (the first solve's line must still be in the cache mount)", got, want)
	}
}

func TestDebianImageRuns(t *testing.T) {
	env := testenv.Get(t)
	ref, err := env.Debian(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	st := llb.Image(ref).Run(llb.Shlex(`sh -c 'cat /etc/debian_version > /version; ls /etc/apt/apt.conf.d > /aptconf'`)).Root()
	dir := solveToDir(t, env.Builder.Client(), st)
	if v := testenv.ReadFile(t, dir, "version"); !strings.HasPrefix(v, "12.") {
		t.Errorf("/etc/debian_version = %q, want bookworm (12.x)", v)
	}
	if conf := testenv.ReadFile(t, dir, "aptconf"); !strings.Contains(conf, "docker-clean") {
		t.Errorf("apt.conf.d = %q, want docker-clean as in the official image", conf)
	}
}

func TestArm64DaemonEmulates(t *testing.T) {
	env := testenv.Get(t)
	ctx := context.Background()
	arm, err := env.Arm64(ctx)
	if err != nil {
		testenv.Unavailable(t, err)
	}
	ps := arm.Platforms()
	// The daemon lists what it can emulate too, after its own platform.
	if len(ps) == 0 || ps[0].Architecture != "arm64" {
		t.Fatalf("arm64 daemon lists %v, want linux/arm64 first", ps)
	}
	ref, err := env.Busybox(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st := llb.Image(ref, llb.LinuxArm64).Run(llb.Shlex(`sh -c 'uname -m > /arch'`)).Root()
	def, err := st.Marshal(ctx, llb.LinuxArm64)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := arm.Client().Solve(ctx, def, client.SolveOpt{
		Exports: []client.ExportEntry{{Type: client.ExporterLocal, OutputDir: dir}},
	}, nil); err != nil {
		t.Fatal(err)
	}
	if got := testenv.ReadFile(t, dir, "arch"); got != "aarch64\n" {
		t.Fatalf("uname -m = %q, want aarch64", got)
	}
}

// Closing the environment leaves no daemon behind.
func TestCloseStopsDaemons(t *testing.T) {
	testenv.Get(t) // skips or fails like the others when unavailable
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env, err := testenv.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	arm, err := env.Arm64(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// This Env's daemons, found by their sockets: other test binaries may
	// be running daemons of their own.
	var started []string
	for _, addr := range []string{env.Builder.Address(), arm.Address()} {
		pids := daemonPIDs(t, strings.TrimPrefix(addr, "unix://"))
		if len(pids) != 1 {
			t.Fatalf("daemons listening on %s: %v, want 1", addr, pids)
		}
		started = append(started, pids...)
	}
	if err := env.Close(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range started {
		if _, err := os.Stat(filepath.Join("/proc", pid)); err == nil {
			if cmd, _ := os.ReadFile(filepath.Join("/proc", pid, "cmdline")); len(cmd) > 0 {
				t.Errorf("process %s (%q) survived Close", pid, strings.ReplaceAll(string(cmd), "\x00", " "))
			}
		}
	}
}

// daemonPIDs returns the processes whose command line holds sock.
func daemonPIDs(t *testing.T, sock string) []string {
	out, _ := exec.Command("pgrep", "-f", "buildkitd .*"+sock).Output()
	return strings.Fields(string(out))
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
