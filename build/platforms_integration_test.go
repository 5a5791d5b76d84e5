package build_test

import (
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/internal/testenv"
)

// Two platforms built on one daemon (arm64 under emulation) are pushed as
// one index whose manifests carry their platforms and run.
func TestTwoPlatformsPushOneIndex(t *testing.T) {
	env, bb := setup(t)
	n := nonce()
	s := build.Image(bb).Run("uname -m > /arch # " + n)
	ref := env.Registry + "/test/multi:" + n
	out := t.TempDir()
	res, err := build.Solve(ctxT(t), env.Builder, s,
		build.Platforms("linux/amd64", "linux/arm64"), build.Push(ref, ref+"-b"), build.LocalDir(out))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Platforms) != 2 || res.Platforms[0].Platform != "linux/amd64" || res.Platforms[1].Platform != "linux/arm64" {
		t.Fatalf("platform results %+v", res.Platforms)
	}
	for _, tc := range []struct{ dir, want string }{{"linux_amd64", "x86_64\n"}, {"linux_arm64", "aarch64\n"}} {
		if got := testenv.ReadFile(t, filepath.Join(out, tc.dir), "arch"); got != tc.want {
			t.Errorf("%s/arch = %q, want %q", tc.dir, got, tc.want)
		}
	}
	r, _ := name.ParseReference(ref)
	idx, err := ggcrremote.Index(r)
	if err != nil {
		t.Fatalf("reading the index: %v", err)
	}
	d, _ := idx.Digest()
	if d.String() != res.Digest.String() {
		t.Errorf("index digest %s, result says %s", d, res.Digest)
	}
	im, _ := idx.IndexManifest()
	if len(im.Manifests) != 2 {
		t.Fatalf("index has %d manifests, want 2", len(im.Manifests))
	}
	want := map[string]string{"amd64": "x86_64\n", "arm64": "aarch64\n"}
	for i, m := range im.Manifests {
		if m.Platform == nil || m.Platform.OS != "linux" || want[m.Platform.Architecture] == "" {
			t.Fatalf("manifest %d has platform %+v", i, m.Platform)
		}
		if m.Digest.String() != res.Platforms[i].Digest.String() {
			t.Errorf("manifest %d is %s, the %s solve pushed %s", i, m.Digest, res.Platforms[i].Platform, res.Platforms[i].Digest)
		}
		img, err := idx.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cfg, _ := img.ConfigFile()
		if cfg.Architecture != m.Platform.Architecture {
			t.Errorf("manifest for %s has a config for %s", m.Platform.Architecture, cfg.Architecture)
		}
		if got := testenv.ImageFiles(t, img)["arch"]; got != want[m.Platform.Architecture] {
			t.Errorf("%s image's /arch = %q", m.Platform.Architecture, got)
		}
	}
	// Each platform's image runs: build on it, for its platform.
	for _, p := range []struct{ platform, want string }{{"linux/amd64", "x86_64\n"}, {"linux/arm64", "aarch64\n"}} {
		dir, _ := solveDir(t, env, build.Image(ref+"-b").Run("cp /arch /copied; uname -m >> /copied"), build.Platforms(p.platform))
		if got := testenv.ReadFile(t, dir, "copied"); got != p.want+p.want {
			t.Errorf("running the %s image gave %q", p.platform, got)
		}
	}
}
