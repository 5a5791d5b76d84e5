package build

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The packing script, run by the host's shell and tools (GNU tar and
// findutils, as in Debian and Ubuntu images) and by busybox's: with GNU
// tar the files to leave out are missing from the tarball and from the
// content digest; busybox's tar cannot leave files out, so it keeps them in
// both. The script runs in build steps; here it runs on the host because
// only its shell and tools matter.
func TestPackScriptLeavesOutRegenerableFiles(t *testing.T) {
	type shell struct {
		name string
		env  []string // nil: the host's
		sh   []string
		// leaves says whether this tar can leave files out.
		leaves bool
	}
	shells := []shell{{name: "gnu", sh: []string{"/bin/sh", "-c"}, leaves: true}}
	if bb, err := exec.LookPath("busybox"); err == nil {
		bin := t.TempDir()
		for _, applet := range []string{"sh", "tar", "find", "sort", "xargs", "stat", "sha256sum", "cut"} {
			if err := os.Symlink(bb, filepath.Join(bin, applet)); err != nil {
				t.Fatal(err)
			}
		}
		shells = append(shells, shell{name: "busybox", env: []string{"PATH=" + bin}, sh: []string{filepath.Join(bin, "sh"), "-c"}})
	} else if os.Getenv("CI") == "true" {
		t.Fatal("busybox is not installed (scripts/setup installs busybox-static)")
	} else {
		t.Log("busybox not installed: only the host's tools are tried")
	}

	leave := []string{"pkgcache.bin", "srcpkgcache.bin"}
	for _, sh := range shells {
		t.Run(sh.name, func(t *testing.T) {
			cacheDir, out := t.TempDir(), t.TempDir()
			write := func(name, data string) {
				p := filepath.Join(cacheDir, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			pack := func() (members []string, content string) {
				cmd := exec.Command(sh.sh[0], append(sh.sh[1:], packScript(cacheDir, out, leave))...)
				if sh.env != nil {
					cmd.Env = sh.env
				}
				if b, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("pack script: %v\n%s", err, b)
				}
				list, err := exec.Command("tar", "-tf", filepath.Join(out, "cache.tar")).Output()
				if err != nil {
					t.Fatal(err)
				}
				c, err := os.ReadFile(filepath.Join(out, "content"))
				if err != nil {
					t.Fatal(err)
				}
				return strings.Fields(string(list)), strings.TrimSpace(string(c))
			}

			write("pkgcache.bin", "binary cache 1")
			write("srcpkgcache.bin", "source cache 1")
			write("archives/gcc.deb", "gcc")
			write("archives/pkgcache.bin", "not at the root: kept")
			members, first := pack()
			for _, m := range []string{"./archives/gcc.deb", "./archives/pkgcache.bin"} {
				if !slices.Contains(members, m) {
					t.Errorf("tarball lacks %s: %v", m, members)
				}
			}
			for _, m := range []string{"./pkgcache.bin", "./srcpkgcache.bin"} {
				if slices.Contains(members, m) != !sh.leaves {
					t.Errorf("tarball has %s: %v; want it only where tar can leave it out", m, members)
				}
			}

			write("pkgcache.bin", "binary cache 2")
			if _, second := pack(); (second == first) != sh.leaves {
				t.Errorf("after pkgcache.bin changed, content %s then %s; want the same only where it is left out", first, second)
			}
			write("archives/curl.deb", "curl")
			if _, third := pack(); third == first {
				t.Errorf("content did not change when a package was added")
			}
		})
	}
}
