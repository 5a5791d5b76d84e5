package remote_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/cache"
	"github.com/larder-build/larder/internal/daemon"
	"github.com/larder-build/larder/internal/testenv"
	"github.com/larder-build/larder/mounts"
	"github.com/larder-build/larder/remote"
)

// With nothing to find and nothing to start, Auto fails at once with every
// attempt and why.
func TestAutoWithNothingFailsFast(t *testing.T) {
	if _, err := os.Stat(strings.TrimPrefix(remote.DefaultAddress, "unix://")); err == nil {
		t.Skip("a builder listens at the default address")
	}
	empty := t.TempDir()
	t.Setenv("PATH", empty)
	t.Setenv("LARDER_CACHE", empty)
	t.Setenv("BUILDKIT_HOST", "")
	start := time.Now()
	_, err := remote.Auto(context.Background())
	took := time.Since(start)
	var ae *remote.AutoError
	if !errors.As(err, &ae) {
		t.Fatalf("Auto = %v, want an *AutoError", err)
	}
	t.Log(err)
	if took > 2*time.Second {
		t.Errorf("Auto took %v to fail, want under 2s", took)
	}
	local := remote.FromLocal
	if os.Geteuid() != 0 {
		local = remote.FromRootless
	}
	want := []remote.Origin{remote.FromSocket, remote.FromDocker, remote.FromPodman, local}
	if len(ae.Attempts) != len(want) {
		t.Fatalf("attempts %+v, want %v", ae.Attempts, want)
	}
	for i, a := range ae.Attempts {
		if a.Origin != want[i] || a.Err == nil || a.Fix == "" {
			t.Errorf("attempt %d = %+v, want %s with a reason and a fix", i, a, want[i])
		}
		if !strings.Contains(err.Error(), string(a.Origin)+": ") {
			t.Errorf("the message does not list %s", a.Origin)
		}
	}
	if !strings.Contains(err.Error(), "remote.Install") {
		t.Errorf("the message does not say how to get buildkitd: %v", err)
	}
}

func TestAutoOptionsAreChecked(t *testing.T) {
	for _, tc := range []struct {
		opt  remote.AutoOption
		want string
	}{
		{remote.AutoImage(""), `AutoImage("")`},
		{remote.AutoContainer("-x"), `AutoContainer("-x")`},
		{remote.AutoEngines("lxc"), `AutoEngines("lxc")`},
		{remote.AutoStartOptions(remote.MaxStorage("lots")), `MaxStorage("lots")`},
		{nil, "nil option"},
	} {
		start := time.Now()
		_, err := remote.Auto(context.Background(), tc.opt)
		if err == nil || !strings.Contains(err.Error(), tc.want) || time.Since(start) > time.Second {
			t.Errorf("Auto with %s = %v", tc.want, err)
		}
	}
}

// cacheGraph appends a line to a cache mount and copies the cache's lines
// out, in a step whose root filesystem is a static busybox alone.
func cacheGraph(id, line string) build.Stage {
	return build.Scratch().Copy(build.Local("bb"), "busybox", "/bin/busybox").
		RunArgs([]string{"/bin/busybox", "sh", "-c", "echo " + line + " >> /c/log; /bin/busybox cp /c/log /seen"},
			mounts.Cache("/c", mounts.ID(id)))
}

// busyboxDir returns a directory holding the host's static busybox.
func busyboxDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile("/bin/busybox")
	if err != nil {
		testenv.Unavailable(t, fmt.Errorf("no /bin/busybox (scripts/setup installs busybox-static): %w", err))
	}
	if err := os.WriteFile(filepath.Join(dir, "busybox"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// solveCache solves cacheGraph on b and returns what the cache held.
func solveCache(ctx context.Context, t *testing.T, b build.Builder, bb, id, line string) string {
	t.Helper()
	out := t.TempDir()
	if _, err := build.Solve(ctx, b, cacheGraph(id, line), build.WithLocal("bb", bb), build.LocalDir(out)); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(out, "seen"))
	if err != nil {
		t.Fatal(err)
	}
	return string(got)
}

// builderImage makes an image of buildkitd, buildctl and runc on Debian
// with Larder, loads it into the Docker engine at host, and returns its
// name. Docker Hub, and BuildKit's own image, are out of reach here.
func builderImage(ctx context.Context, t *testing.T, env *testenv.Env, host string) string {
	t.Helper()
	debian, err := env.Debian(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	for _, name := range []string{"buildkitd", "buildctl"} {
		p, err := daemon.LookPath(name)
		if err != nil {
			testenv.Unavailable(t, err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bin, name), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	const ref = "larder-test/buildkit:v0.33.1"
	img := build.Image(debian).
		Run("apt-get update && apt-get install -y --no-install-recommends runc", cache.Apt()).
		Copy(build.Local("bin"), "/", "/usr/bin/").
		Entrypoint("buildkitd")
	tarball := filepath.Join(t.TempDir(), "buildkit.tar")
	if _, err := build.Solve(ctx, env.Builder, img, build.WithLocal("bin", bin), build.DockerTarball(tarball, ref)); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.CommandContext(ctx, "docker", "--host", host, "load", "--input", tarball).CombinedOutput(); err != nil {
		t.Fatalf("docker load: %v: %s", err, out)
	}
	return ref
}

// With Docker answering and nothing else, Auto makes a builder container;
// a second Auto reuses it, and its cache mounts are still there.
func TestAutoBuilderContainer(t *testing.T) {
	env := testenv.Get(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	host := testenv.Docker(t)
	image := builderImage(ctx, t, env, host)
	t.Setenv("DOCKER_HOST", host)
	t.Setenv("BUILDKIT_HOST", "")
	name := fmt.Sprintf("larder-auto-%d", time.Now().UnixNano())
	t.Cleanup(func() {
		exec.Command("docker", "rm", "--force", name).Run()
		exec.Command("docker", "volume", "rm", "--force", name+"-state").Run()
	})
	opts := []remote.AutoOption{remote.AutoImage(image), remote.AutoContainer(name), remote.AutoEngines("docker")}
	bb := busyboxDir(t)
	id := fmt.Sprint("auto-", time.Now().UnixNano())

	b, err := remote.Auto(ctx, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if b.Origin() != remote.FromDocker || b.Name() != "docker-container://"+name {
		t.Errorf("Auto took %q, named %q", b.Origin(), b.Name())
	}
	if got := solveCache(ctx, t, b, bb, id, "first"); got != "first\n" {
		t.Errorf("the first solve's cache holds %q", got)
	}
	b.Close()
	started := func() string {
		out, err := exec.Command("docker", "inspect", "--format", "{{.Id}} {{.State.StartedAt}}", name).Output()
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	before := started()

	b, err = remote.Auto(ctx, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if after := started(); after != before {
		t.Errorf("the second Auto made or restarted the container: %s, then %s", before, after)
	}
	if got := solveCache(ctx, t, b, bb, id, "second"); got != "first\nsecond\n" {
		t.Errorf("the reused container's cache holds %q, want both lines", got)
	}
}

// As a user other than root, Auto starts a rootless buildkitd and solves a
// graph with a cache mount: the test runs its own binary again as such a
// user, which it makes.
func TestAutoRootless(t *testing.T) {
	if os.Getenv("LARDER_ROOTLESS_CHILD") != "" {
		rootlessChild(t)
		return
	}
	testenv.Get(t) // the environment is there: a failure below is ours
	if os.Geteuid() != 0 {
		t.Skip("making a user needs root")
	}
	for _, tool := range []string{"rootlesskit", "newuidmap", "setpriv", "useradd"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Unavailable(t, fmt.Errorf("%s not found (scripts/setup installs rootlesskit and uidmap): %w", tool, err))
		}
	}
	const user = "larder-rootless"
	if err := exec.Command("id", user).Run(); err != nil {
		if out, err := exec.Command("useradd", "--create-home", "--add-subids-for-system", user).CombinedOutput(); err != nil {
			t.Fatalf("useradd: %v: %s", err, out)
		}
	}
	for _, f := range []string{"/etc/subuid", "/etc/subgid"} {
		b, _ := os.ReadFile(f)
		if !strings.Contains(string(b), user+":") {
			fh, err := os.OpenFile(f, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(fh, "%s:300000:65536\n", user)
			fh.Close()
		}
	}
	uid, gid := idOf(t, "-u", user), idOf(t, "-g", user)

	// A directory the user owns, holding this test binary and buildkitd:
	// in /tmp, since $TMPDIR may be a directory of root's that the user
	// can't enter.
	dir, err := os.MkdirTemp("/tmp", "larder-rootless-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	self, _ := os.Executable()
	bkd, err := daemon.LookPath("buildkitd")
	if err != nil {
		testenv.Unavailable(t, err)
	}
	for src, dst := range map[string]string{self: "remote.test", bkd: "buildkitd"} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, dst), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chown(p, uid, gid)
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "setpriv", fmt.Sprintf("--reuid=%d", uid), fmt.Sprintf("--regid=%d", gid), "--init-groups",
		filepath.Join(dir, "remote.test"), "-test.run", "^TestAutoRootless$", "-test.v")
	cmd.Dir = dir
	cmd.Env = []string{
		"LARDER_ROOTLESS_CHILD=1", "HOME=" + dir, "TMPDIR=" + dir, "LARDER_CACHE=" + filepath.Join(dir, "cache"),
		"PATH=" + dir + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "XDG_RUNTIME_DIR=" + dir,
	}
	out, err := cmd.CombinedOutput()
	t.Logf("the child, as %s (uid %d):\n%s", user, uid, out)
	if err != nil {
		t.Fatalf("the rootless child failed: %v", err)
	}
	if !strings.Contains(string(out), "--- PASS: TestAutoRootless") {
		t.Fatal("the child did not pass")
	}
}

// rootlessChild is TestAutoRootless as the user it made.
func rootlessChild(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Fatal("the child runs as root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, err := remote.Auto(ctx, remote.AutoEngines(), remote.AutoStartOptions(remote.DaemonLog(io.Discard)))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Origin() != remote.FromRootless {
		t.Fatalf("Auto took %q, want a rootless buildkitd", b.Origin())
	}
	bb := busyboxDir(t)
	id := fmt.Sprint("rootless-", time.Now().UnixNano())
	if got := solveCache(ctx, t, b, bb, id, "one"); got != "one\n" {
		t.Errorf("the cache holds %q", got)
	}
	if got := solveCache(ctx, t, b, bb, id, "two"); got != "one\ntwo\n" {
		t.Errorf("the cache holds %q, want both lines", got)
	}
}

func idOf(t *testing.T, flag, user string) int {
	t.Helper()
	out, err := exec.Command("id", flag, user).Output()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	fmt.Sscan(string(out), &n)
	return n
}
