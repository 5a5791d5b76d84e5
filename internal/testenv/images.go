package testenv

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/larder-build/larder/internal/daemon"
)

// DebianMirror is the mirror the Debian base image is bootstrapped from and
// that its sources.list names.
const DebianMirror = "http://deb.debian.org/debian"

// The apt and dpkg configuration that Docker's official Debian images ship,
// so that tests meet the same defaults users do. docker-clean is what apt
// cache mounts must undo.
var debianDockerFiles = map[string]string{
	"etc/apt/apt.conf.d/docker-clean": `DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };

Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
`,
	"etc/apt/apt.conf.d/docker-autoremove-suggests": "Apt::AutoRemove::SuggestsImportant \"false\";\n",
	"etc/apt/apt.conf.d/docker-no-languages":        "Acquire::Languages \"none\";\n",
	"etc/apt/apt.conf.d/docker-gzip-indexes":        "Acquire::GzipIndexes \"true\";\n",
}

// Debian returns the reference of a Debian bookworm (minbase) image for
// linux/amd64 in the environment's registry, pushing it on first use. The
// root filesystem comes from debootstrap, run once and cached as a tarball
// in [CacheDir].
func (e *Env) Debian(ctx context.Context) (string, error) {
	return e.image(ctx, "debian:bookworm", func() (v1.ImageIndex, v1.Image, error) {
		path, err := debianTarball(ctx)
		if err != nil {
			return nil, nil, err
		}
		layer, err := tarball.LayerFromFile(path)
		if err != nil {
			return nil, nil, err
		}
		img, err := imageOf("amd64", []string{"/bin/bash"}, layer)
		return nil, img, err
	})
}

// Busybox returns the reference of a busybox image index for linux/amd64 and
// linux/arm64 in the environment's registry, pushing it on first use. Every
// applet is linked in /bin.
func (e *Env) Busybox(ctx context.Context) (string, error) {
	return e.image(ctx, "busybox:latest", func() (v1.ImageIndex, v1.Image, error) {
		idx := v1.ImageIndex(empty.Index)
		for _, arch := range []struct{ name, bin string }{
			{"amd64", "/bin/busybox"},
			{"arm64", filepath.Join(CacheDir(), "busybox-arm64", "bin", "busybox")},
		} {
			layer, err := busyboxLayer(arch.bin)
			if err != nil {
				return nil, nil, err
			}
			img, err := imageOf(arch.name, []string{"/bin/sh"}, layer)
			if err != nil {
				return nil, nil, err
			}
			idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
				Add:        img,
				Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch.name}},
			})
		}
		return idx, nil, nil
	})
}

// image pushes what make returns under repo:tag once per Env.
func (e *Env) image(ctx context.Context, repoTag string, make func() (v1.ImageIndex, v1.Image, error)) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ref, ok := e.images[repoTag]; ok {
		return ref, nil
	}
	ref := e.Registry + "/larder/" + repoTag
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", err
	}
	idx, img, err := make()
	if err != nil {
		return "", fmt.Errorf("testenv: making %s: %w", repoTag, err)
	}
	if idx != nil {
		err = ggcrremote.WriteIndex(r, idx, ggcrremote.WithContext(ctx))
	} else {
		err = ggcrremote.Write(r, img, ggcrremote.WithContext(ctx))
	}
	if err != nil {
		return "", fmt.Errorf("testenv: pushing %s: %w", ref, err)
	}
	e.images[repoTag] = ref
	return ref, nil
}

func imageOf(arch string, cmd []string, layers ...v1.Layer) (v1.Image, error) {
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		return nil, err
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Created = v1.Time{Time: time.Unix(0, 0).UTC()}
	cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cf.Config.Cmd = cmd
	return mutate.ConfigFile(img, cf)
}

// debianTarball returns the cached gzipped root filesystem, running
// debootstrap under a lock the first time, so that test binaries running in
// parallel make it once.
func debianTarball(ctx context.Context) (string, error) {
	dir := CacheDir()
	path := filepath.Join(dir, "debian-bookworm-amd64.tar.gz")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	unlock, err := daemon.Lock(filepath.Join(dir, "debian.lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return "", fmt.Errorf("debootstrap not found (run scripts/setup): %w", err)
	}
	root, err := os.MkdirTemp(dir, "debian-root-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(root)
	out, err := exec.CommandContext(ctx, "debootstrap", "--variant=minbase", "bookworm", root, DebianMirror).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("debootstrap: %w\n%s", err, tail(out, 20))
	}
	for rel, content := range debianDockerFiles {
		if err := os.WriteFile(filepath.Join(root, rel), []byte(content), 0o644); err != nil {
			return "", err
		}
	}
	// Like the official images: no package lists or downloaded packages.
	for _, pattern := range []string{"var/lib/apt/lists/*", "var/cache/apt/*.bin", "var/cache/apt/archives/*.deb"} {
		matches, _ := filepath.Glob(filepath.Join(root, pattern))
		for _, m := range matches {
			if filepath.Base(m) != "lock" && filepath.Base(m) != "partial" && filepath.Base(m) != "auxfiles" {
				os.RemoveAll(m)
			}
		}
	}
	tmp := path + ".tmp"
	out, err = exec.CommandContext(ctx, "tar", "--numeric-owner", "--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*",
		"-C", root, "-czf", tmp, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("tar: %w\n%s", err, tail(out, 20))
	}
	return path, os.Rename(tmp, path)
}

// busyboxLayer makes a layer with the static busybox at bin and a link in
// /bin for each of its applets.
func busyboxLayer(bin string) (v1.Layer, error) {
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("busybox: %w (run scripts/setup)", err)
	}
	// The host's busybox lists the applets; both architectures are built
	// from the same Debian source.
	list, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("busybox --list: %w", err)
	}
	applets := strings.Fields(string(list))
	sort.Strings(applets)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	for _, d := range []struct {
		name string
		mode int64
	}{{"bin/", 0o755}, {"etc/", 0o755}, {"tmp/", 0o1777}, {"root/", 0o700}} {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d.name, Mode: d.mode, ModTime: epoch})
	}
	passwd := "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
	group := "root:x:0:\nnogroup:x:65534:\n"
	for _, f := range []struct{ name, body string }{{"etc/passwd", passwd}, {"etc/group", group}} {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: 0o644, Size: int64(len(f.body)), ModTime: epoch})
		tw.Write([]byte(f.body))
	}
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755, Size: int64(len(data)), ModTime: epoch})
	tw.Write(data)
	for _, a := range applets {
		if a == "busybox" {
			continue
		}
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", ModTime: epoch})
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
}

func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
