package binary

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The embedded helper of this machine's architecture saves a cache and
// restores it into another directory, with no environment and, as root,
// chrooted into a directory that holds nothing but the helper and the
// caches: no shell, no libc, no /tmp.
func TestHelperEndToEnd(t *testing.T) {
	bin, err := Linux(runtime.GOARCH)
	if err != nil {
		t.Skip(err)
	}
	rootfs := t.TempDir()
	helper := filepath.Join(rootfs, "larder-cache-helper")
	if err := os.WriteFile(helper, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(helper, 0o755); err != nil {
		t.Fatal(err)
	}
	chroot := os.Geteuid() == 0
	// in gives the path of p, relative to rootfs, as the helper sees it.
	in := func(p string) string {
		if chroot {
			return "/" + p
		}
		return filepath.Join(rootfs, p)
	}
	run := func(wantStatus int, args ...string) (string, string) {
		t.Helper()
		cmd := exec.Command(helper, args...)
		cmd.Env = []string{}
		if chroot {
			cmd.Path, cmd.Args[0] = "/larder-cache-helper", "larder-cache-helper"
			cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: rootfs}
			cmd.Dir = "/"
		}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		status := cmd.ProcessState.ExitCode()
		if err != nil && status == -1 {
			t.Fatalf("%s: %v", args, err)
		}
		if status != wantStatus {
			t.Fatalf("%s: exit status %d; want %d\nstdout: %s\nstderr: %s", args, status, wantStatus, stdout.Bytes(), stderr.Bytes())
		}
		return stdout.String(), stderr.String()
	}

	mtime := time.Date(2024, 1, 2, 3, 4, 5, 678901234, time.UTC)
	files := map[string]string{"a": "alpha", "sub/b": "beta", "sub/deep/c": "gamma", "pkgcache.bin": "left out"}
	for name, data := range files {
		p := filepath.Join(rootfs, "src", name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o640); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, time.Time{}, mtime)
	}
	os.Symlink("sub/b", filepath.Join(rootfs, "src", "link"))

	stdout, _ := run(0, "save", "-cache", in("src"), "-out", in("out1"), "-leave", "pkgcache.bin")
	if !strings.HasPrefix(stdout, "saved 6 entries (14 bytes) of 6 (14 bytes) as sha256:") || strings.Count(stdout, "\n") != 1 {
		t.Errorf("save printed %q", stdout)
	}
	var layer struct {
		Version, Files int
		Digest         string
	}
	b, err := os.ReadFile(filepath.Join(rootfs, "out1", "layer.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &layer); err != nil || layer.Version != 1 || layer.Files != 6 || !strings.HasPrefix(layer.Digest, "sha256:") {
		t.Errorf("layer.json: %s (%v)", b, err)
	}

	os.Mkdir(filepath.Join(rootfs, "dst"), 0o755)
	stdout, _ = run(0, "restore", "-cache", in("dst"), "-index", in("index"), in("out1/layer.tar.gz"))
	if want := "restored 3 files, 2 dirs, 1 symlinks; skipped 0 pre-existing; rejected 0\n"; stdout != want {
		t.Errorf("restore printed %q; want %q", stdout, want)
	}
	for name, data := range files {
		got, err := os.ReadFile(filepath.Join(rootfs, "dst", name))
		if name == "pkgcache.bin" {
			if err == nil {
				t.Errorf("%s was restored", name)
			}
			continue
		}
		if err != nil || string(got) != data {
			t.Errorf("%s: %q, %v; want %q", name, got, err, data)
			continue
		}
		info, _ := os.Stat(filepath.Join(rootfs, "dst", name))
		if !info.ModTime().Equal(mtime) || info.Mode().Perm() != 0o640 {
			t.Errorf("%s: mtime %v, mode %v; want %v, 0640", name, info.ModTime(), info.Mode(), mtime)
		}
	}
	if link, err := os.Readlink(filepath.Join(rootfs, "dst", "link")); link != "sub/b" {
		t.Errorf("link: %q, %v", link, err)
	}

	stdout, _ = run(0, "save", "-cache", in("dst"), "-index", in("index"), "-out", in("out2"))
	if !strings.HasPrefix(stdout, "saved nothing") {
		t.Errorf("save of the restored cache printed %q; want nothing saved", stdout)
	}

	_, stderr := run(1, "restore", "-cache", in("missing"), "-index", in("index2"))
	if !strings.HasPrefix(stderr, "larder-cache-helper: restore: ") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("a failed restore printed %q; want one line", stderr)
	}
	_, stderr = run(1, "pack")
	if !strings.Contains(stderr, `unknown command "pack"`) || strings.Count(stderr, "\n") != 1 {
		t.Errorf("an unknown command printed %q; want one line", stderr)
	}
}
