package build_test

import (
	"archive/tar"
	"io"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/internal/testenv"
	"github.com/larder-build/larder/remote"
)

// fleet returns a fleet of the environment's amd64 builder and an arm64 one.
func fleet(t *testing.T, env *testenv.Env) *remote.Fleet {
	t.Helper()
	ctx := ctxT(t)
	arm, err := env.Arm64(ctx)
	if err != nil {
		testenv.Unavailable(t, err)
	}
	f, err := remote.NewFleet(ctx, remote.FromBuilder(env.Builder), remote.FromBuilder(arm))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// pullIndex reads the index ref and checks it with validate.Index.
func pullIndex(t *testing.T, ref string) v1.ImageIndex {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := ggcrremote.Index(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Errorf("validate.Index(%s): %v", ref, err)
	}
	return idx
}

// A two-platform solve writes one OCI layout tarball whose index holds
// both platforms' images, and pushes an index, both annotated.
func TestTwoPlatformsToATarballAndAnIndex(t *testing.T) {
	env, bb := setup(t)
	f := fleet(t, env)
	n := nonce()
	tarball := filepath.Join(t.TempDir(), "app.tar")
	ref := env.Registry + "/test/two-platforms:" + n
	res, err := build.Solve(ctxT(t), f, build.Image(bb).Run("uname -m > /arch # "+n),
		build.Platforms("linux/amd64", "linux/arm64"),
		build.OCITarball(tarball, "app:"+n),
		build.Push(ref),
		build.Annotation("org.opencontainers.image.title", "two"),
		build.Annotation("org.opencontainers.image.vendor", "larder", build.OnIndex, build.OnManifest))
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	untar(t, tarball, dir)
	lp, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	top, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	tm, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(tm.Manifests) != 1 || tm.Manifests[0].Annotations["io.containerd.image.name"] != "docker.io/library/app:"+n {
		t.Fatalf("index.json %+v, want one index named docker.io/library/app:%s", tm.Manifests, n)
	}
	// Solve's digest is the pushed index's; the layout's has OCI media types.
	if d := pushedDigest(t, ref); d != res.Digest.String() {
		t.Errorf("the pushed index is %s, Solve says %s", d, res.Digest)
	}
	idx, err := top.ImageIndex(tm.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	pushed := pullIndex(t, ref)
	for what, idx := range map[string]v1.ImageIndex{"tarball": idx, "pushed": pushed} {
		if err := validate.Index(idx); err != nil {
			t.Errorf("%s: validate.Index: %v", what, err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		if im.Annotations["org.opencontainers.image.vendor"] != "larder" || im.Annotations["org.opencontainers.image.title"] != "" {
			t.Errorf("%s: index annotations %v, want only the vendor", what, im.Annotations)
		}
		var archs []string
		for _, d := range im.Manifests {
			img, err := idx.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			m, err := img.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			if m.Annotations["org.opencontainers.image.title"] != "two" || m.Annotations["org.opencontainers.image.vendor"] != "larder" {
				t.Errorf("%s %s: manifest annotations %v", what, d.Platform, m.Annotations)
			}
			want := map[string]string{"amd64": "x86_64\n", "arm64": "aarch64\n"}[d.Platform.Architecture]
			if got := testenv.ImageFiles(t, img)["arch"]; got != want {
				t.Errorf("%s %s: /arch = %q, want %q", what, d.Platform, got, want)
			}
			archs = append(archs, d.Platform.Architecture)
		}
		if strings.Join(archs, " ") != "amd64 arm64" {
			t.Errorf("%s: platforms %v", what, archs)
		}
	}
}

// With SourceDateEpoch, the same graph on two fresh builders gives the same
// image digest; without it, the images differ only in their times.
func TestSourceDateEpochIsReproducible(t *testing.T) {
	env, bb := setup(t)
	n := nonce()
	st := build.Image(bb).Run("mkdir -p /out && echo same > /out/file && touch /out/new # "+n).Env("A", "1").Cmd("cat", "/out/file")
	epoch := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	digests := map[string][]string{}
	var without []v1.Image
	for i := range 2 {
		b, err := env.NewBuilder(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, with := range []bool{true, false} {
			ref := env.Registry + "/test/epoch:" + n + "-" + strings.Repeat("x", i+1)
			opts := []build.SolveOption{build.Push(ref)}
			key := "without"
			if with {
				ref += "-epoch"
				opts = []build.SolveOption{build.Push(ref), build.SourceDateEpoch(epoch)}
				key = "with"
			}
			res, err := build.Solve(ctxT(t), b, st, opts...)
			if err != nil {
				t.Fatal(err)
			}
			digests[key] = append(digests[key], res.Digest.String())
			img := testenv.Pull(t, ref)
			if !with {
				without = append(without, img)
			}
			if err := validate.Image(img); err != nil {
				t.Errorf("validate.Image: %v", err)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if with && !cf.Created.Time.Equal(epoch) {
				t.Errorf("created %v, want %v", cf.Created, epoch)
			}
			testenv.WalkImage(t, img, func(path string, h *tar.Header, _ io.Reader) {
				if with && h.ModTime.After(epoch) {
					t.Errorf("%s: time %v is after the epoch", path, h.ModTime)
				}
			})
		}
		b.Close()
	}
	if d := digests["with"]; d[0] != d[1] {
		t.Errorf("with SourceDateEpoch, two fresh builders gave %s and %s", d[0], d[1])
	}
	if d := digests["without"]; d[0] == d[1] {
		t.Errorf("without SourceDateEpoch, two builds seconds apart gave the same digest %s", d[0])
	}
	// Without it, only times differ: the configurations without them, and
	// every file's content, mode and owner.
	c0, c1 := timeless(t, without[0]), timeless(t, without[1])
	if !reflect.DeepEqual(c0, c1) {
		t.Errorf("without SourceDateEpoch, the configurations differ beyond times:\n%+v\n%+v", c0, c1)
	}
	if e0, e1 := entriesOf(t, without[0]), entriesOf(t, without[1]); !reflect.DeepEqual(e0, e1) {
		t.Errorf("without SourceDateEpoch, the files differ beyond times:\n%v\n%v", e0, e1)
	}
}

// timeless returns img's configuration without its times.
func timeless(t *testing.T, img v1.Image) *v1.ConfigFile {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{}
	for i := range cf.History {
		cf.History[i].Created = v1.Time{}
	}
	// The layers' digests hold their files' times.
	cf.RootFS.DiffIDs = nil
	return cf
}

// pushedDigest returns the digest of the manifest or index at ref.
func pushedDigest(t *testing.T, ref string) string {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	d, err := ggcrremote.Head(r)
	if err != nil {
		t.Fatal(err)
	}
	return d.Digest.String()
}

// With Provenance and SBOM, a two-platform fleet build pushes one index
// that holds, per platform, an attestation manifest referring to its image,
// with an in-toto provenance statement and the generator's SBOM listing the
// file the build wrote.
func TestAttestationsOnAFleet(t *testing.T) {
	env, bb := setup(t)
	f := fleet(t, env)
	gen, err := env.SBOMGenerator(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	n := nonce()
	ref := env.Registry + "/test/attested:" + n
	_, err = build.Solve(ctxT(t), f, build.Image(bb).Run("uname -m > /arch # "+n),
		build.Platforms("linux/amd64", "linux/arm64"), build.Push(ref),
		build.Provenance("max"), build.SBOM(gen))
	if err != nil {
		t.Fatal(err)
	}
	idx := pullIndex(t, ref)
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	images := map[string]string{} // digest: architecture
	for _, d := range im.Manifests {
		if d.Annotations["vnd.docker.reference.type"] == "" {
			images[d.Digest.String()] = d.Platform.Architecture
		}
	}
	if len(images) != 2 {
		t.Fatalf("%d images in the index, want 2: %+v", len(images), im.Manifests)
	}
	attested := map[string]bool{}
	for _, d := range im.Manifests {
		if d.Annotations["vnd.docker.reference.type"] != "attestation-manifest" {
			continue
		}
		arch, ok := images[d.Annotations["vnd.docker.reference.digest"]]
		if !ok {
			t.Errorf("attestation %s refers to %s, not an image of the index", d.Digest, d.Annotations["vnd.docker.reference.digest"])
			continue
		}
		attested[arch] = true
		att, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		m, err := att.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		types := map[string]string{}
		for _, l := range m.Layers {
			pt := l.Annotations["in-toto.io/predicate-type"]
			layer, err := att.LayerByDigest(l.Digest)
			if err != nil {
				t.Fatal(err)
			}
			rc, err := layer.Uncompressed()
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			types[pt] = string(b)
		}
		if s := types["https://spdx.dev/Document"]; !strings.Contains(s, `"fileName":"/arch"`) {
			t.Errorf("%s: no SBOM listing /arch among %v", arch, slices.Collect(maps.Keys(types)))
		}
		if _, ok := types["https://slsa.dev/provenance/v0.2"]; !ok {
			if _, ok := types["https://slsa.dev/provenance/v1"]; !ok {
				t.Errorf("%s: no provenance among %v", arch, slices.Collect(maps.Keys(types)))
			}
		}
	}
	if !attested["amd64"] || !attested["arm64"] {
		t.Errorf("attested platforms %v, want amd64 and arm64", attested)
	}
}

// One platform with provenance goes out as an index of the image and its
// attestation, which takes an index annotation.
func TestOnePlatformWithProvenance(t *testing.T) {
	env, bb := setup(t)
	n := nonce()
	ref := env.Registry + "/test/one-attested:" + n
	res, err := build.Solve(ctxT(t), env.Builder, build.Image(bb).Run("echo "+n+" > /n"),
		build.Push(ref), build.Provenance("min"), build.Annotation("org.opencontainers.image.title", "one", build.OnIndex))
	if err != nil {
		t.Fatal(err)
	}
	if d := pushedDigest(t, ref); d != res.Digest.String() {
		t.Errorf("pushed %s, Solve says %s", d, res.Digest)
	}
	im, err := pullIndex(t, ref).IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 2 || im.Manifests[1].Annotations["vnd.docker.reference.digest"] != im.Manifests[0].Digest.String() {
		t.Errorf("manifests %+v, want the image and its attestation", im.Manifests)
	}
	if im.Annotations["org.opencontainers.image.title"] != "one" {
		t.Errorf("index annotations %v", im.Annotations)
	}
}
