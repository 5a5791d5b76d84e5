package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Docker starts a Docker engine of the test's own: Debian's dockerd (the
// docker.io package, which scripts/setup installs) with its own data root,
// exec root and socket in a temporary directory, and no bridge network, so
// that it needs no iptables and leaves the host's alone. It returns the
// engine's address, for $DOCKER_HOST; the engine stops when the test ends,
// and dies with the test binary. Without dockerd the test is skipped, or
// fails when CI=true.
func Docker(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("dockerd")
	if err != nil {
		Unavailable(t, fmt.Errorf("no dockerd (run scripts/setup, which installs Debian's docker.io): %w", err))
	}
	// Short paths: a unix socket's path is limited to 108 bytes.
	dir, err := os.MkdirTemp("", "ldk")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "docker.sock")
	host := "unix://" + sock
	cmd := exec.Command(bin, "--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "docker.pid"), "--host", host, "--bridge=none", "--iptables=false",
		"--containerd-namespace", "larder-"+filepath.Base(dir))
	log := &headBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("testenv: starting dockerd: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		// containerd and its shims, which dockerd started in its group.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cleanAfter(dir)
		os.RemoveAll(dir)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		out, err := exec.CommandContext(ctx, "docker", "--host", host, "info", "--format", "{{.ServerVersion}}").CombinedOutput()
		if err == nil {
			t.Logf("dockerd %s at %s", out, host)
			return host
		}
		select {
		case <-exited:
			t.Fatalf("testenv: dockerd exited: %s", log.String())
		case <-ctx.Done():
			t.Fatalf("testenv: dockerd did not answer: %s\n%s", out, log.String())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// cleanAfter unmounts what an engine left mounted under dir.
func cleanAfter(dir string) {
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for _, line := range splitLines(string(info)) {
		var f [5]string
		if n, _ := fmt.Sscan(line, &f[0], &f[1], &f[2], &f[3], &f[4]); n == 5 && len(f[4]) > len(dir) && f[4][:len(dir)+1] == dir+"/" {
			points = append(points, f[4])
		}
	}
	for i := len(points) - 1; i >= 0; i-- {
		_ = syscall.Unmount(points[i], syscall.MNT_DETACH)
	}
}

func splitLines(s string) []string {
	var out []string
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != '\n' {
			i++
		}
		out = append(out, s[:i])
		if i < len(s) {
			i++
		}
		s = s[i:]
	}
	return out
}
