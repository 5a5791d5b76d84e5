package testenv_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/moby/buildkit/client"
	"github.com/tonistiigi/fsutil"

	"github.com/larder-build/larder/internal/testenv"
)

// The generator image holds a binary for each of its platforms, as its
// entrypoint.
func TestSBOMGeneratorImage(t *testing.T) {
	env := testenv.Get(t)
	ref, err := env.SBOMGenerator(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for arch, machine := range map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64} {
		r, err := name.ParseReference(ref)
		if err != nil {
			t.Fatal(err)
		}
		img, err := ggcrremote.Image(r, ggcrremote.WithPlatform(v1.Platform{OS: "linux", Architecture: arch}))
		if err != nil {
			t.Fatalf("%s for linux/%s: %v", ref, arch, err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.Architecture != arch || !slices.Equal(cf.Config.Entrypoint, []string{"/sbomgen"}) {
			t.Errorf("linux/%s config: architecture %s, entrypoint %q", arch, cf.Architecture, cf.Config.Entrypoint)
		}
		var bin []byte
		testenv.WalkImage(t, img, func(path string, h *tar.Header, r io.Reader) {
			if path == "sbomgen" && h.Typeflag == tar.TypeReg && h.Mode&0o111 != 0 {
				bin, _ = io.ReadAll(r)
			}
		})
		f, err := elf.NewFile(bytes.NewReader(bin))
		if err != nil {
			t.Fatalf("linux/%s /sbomgen (%d bytes): %v", arch, len(bin), err)
		}
		if f.Machine != machine {
			t.Errorf("linux/%s /sbomgen is for %v, want %v", arch, f.Machine, machine)
		}
		if interp := f.Section(".interp"); interp != nil {
			t.Errorf("linux/%s /sbomgen is dynamically linked", arch)
		}
		t.Logf("linux/%s: /sbomgen, %d bytes, %v", arch, len(bin), f.Machine)
	}
}

// A Dockerfile build with attest:sbom=generator=<SBOMGenerator> and
// provenance pushes an index whose attestation manifest for the image holds
// the generator's SPDX document, which lists the file the build wrote, and
// the provenance.
func TestSBOMGeneratorAttestsDockerfileBuild(t *testing.T) {
	env := testenv.Get(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	busybox, err := env.Busybox(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dockerfile := "FROM " + busybox + "\nRUN echo hi > /hi\n"
	ref := env.Registry + "/larder/sbomtest:dockerfile"
	solveWithSBOM(ctx, t, env, env.Builder.Client(), "", dockerfile, nil, ref)

	img, att := attestationFor(t, ref, "amd64")
	sboms := att.statements("https://spdx.dev/Document")
	if len(sboms) != 1 {
		t.Fatalf("attestation manifest has %d SPDX statements, want 1", len(sboms))
	}
	sbom := sboms[0]
	checkSubject(t, sbom, img.digest)
	doc := sbom.spdx(t)
	t.Logf("SPDX document %q (%s), %d files, creators %v", doc.Name, doc.SPDXVersion, len(doc.Files), doc.CreationInfo.Creators)
	if doc.SPDXVersion != "SPDX-2.3" || doc.Name != "sbom" {
		t.Errorf("document %q is %s, want the core document \"sbom\" in SPDX-2.3", doc.Name, doc.SPDXVersion)
	}
	// BuildKit re-encodes the core document with spdx/tools-golang and
	// signs it as a creator: it could parse what the generator wrote.
	if !slices.ContainsFunc(doc.CreationInfo.Creators, func(c string) bool { return strings.HasPrefix(c, "Tool: buildkit-") }) {
		t.Errorf("creators %v: BuildKit did not supplement the document (could it parse it?)", doc.CreationInfo.Creators)
	}

	hi := doc.file("/hi")
	if hi == nil {
		t.Fatalf("the SBOM does not list /hi; it lists %v", doc.fileNames())
	}
	sum := sha256.Sum256([]byte("hi\n"))
	if got := hi.checksum("SHA256"); got != hex.EncodeToString(sum[:]) {
		t.Errorf("/hi SHA256 = %q, want %x", got, sum)
	}
	if hi.checksum("SHA1") == "" {
		t.Errorf("/hi has no SHA1 checksum (SPDX requires one)")
	}
	// BuildKit names each file's layer in its comment.
	if want := "layerID: " + img.layers[len(img.layers)-1]; hi.Comment != want {
		t.Errorf("/hi comment = %q, want %q (the RUN step's layer)", hi.Comment, want)
	}
	busyboxFile := doc.file("/bin/busybox")
	if busyboxFile == nil {
		t.Errorf("the SBOM does not list /bin/busybox")
	} else if want := "layerID: " + img.layers[0]; busyboxFile.Comment != want {
		t.Errorf("/bin/busybox comment = %q, want %q (the base image's layer)", busyboxFile.Comment, want)
	}
	if f := doc.file("/bin/sh"); f != nil {
		t.Errorf("the SBOM lists the symbolic link /bin/sh: %+v", f)
	}
	t.Logf("/hi: %+v", *hi)

	provs := att.statements("https://slsa.dev/provenance/v0.2", "https://slsa.dev/provenance/v1")
	if len(provs) != 1 {
		t.Fatalf("attestation manifest has %d SLSA provenance statements, want 1; layers: %v", len(provs), att.predicateTypes())
	}
	checkSubject(t, provs[0], img.digest)
	t.Logf("provenance: %s, %d bytes", provs[0].PredicateType, len(provs[0].Predicate))
	checkGeneratorDependency(ctx, t, env, provs[0], "amd64")
}

// With BUILDKIT_SBOM_SCAN_CONTEXT, BuildKit gives the generator the build
// context as an extra filesystem, which gets its own document.
func TestSBOMGeneratorScansExtras(t *testing.T) {
	env := testenv.Get(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	busybox, err := env.Busybox(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dockerfile := "FROM " + busybox + "\nARG BUILDKIT_SBOM_SCAN_CONTEXT=true\nCOPY ctxfile /copied\n"
	ref := env.Registry + "/larder/sbomtest:extras"
	solveWithSBOM(ctx, t, env, env.Builder.Client(), "", dockerfile, map[string]string{"ctxfile": "context\n"}, ref)

	img, att := attestationFor(t, ref, "amd64")
	docs := map[string]*spdxDocument{}
	for _, s := range att.statements("https://spdx.dev/Document") {
		checkSubject(t, s, img.digest)
		doc := s.spdx(t)
		docs[doc.Name] = doc
	}
	if len(docs) != 2 || docs["sbom"] == nil || docs["sbom-context"] == nil {
		t.Fatalf("SPDX documents %v, want sbom and sbom-context", keys(docs))
	}
	if docs["sbom"].file("/copied") == nil {
		t.Errorf("the core document does not list /copied: %v", docs["sbom"].fileNames())
	}
	if docs["sbom-context"].file("/ctxfile") == nil {
		t.Errorf("the context's document does not list /ctxfile: %v", docs["sbom-context"].fileNames())
	}
}

// On a linux/arm64 daemon the generator runs as linux/arm64 (BuildKit runs
// it on the build platform, the worker's first), under emulation here.
func TestSBOMGeneratorOnArm64(t *testing.T) {
	env := testenv.Get(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	arm, err := env.Arm64(ctx)
	if err != nil {
		testenv.Unavailable(t, err)
	}
	busybox, err := env.Busybox(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dockerfile := "FROM " + busybox + "\nRUN uname -m > /arch\n"
	ref := env.Registry + "/larder/sbomtest:arm64"
	solveWithSBOM(ctx, t, env, arm.Client(), "linux/arm64", dockerfile, nil, ref)

	img, att := attestationFor(t, ref, "arm64")
	sboms := att.statements("https://spdx.dev/Document")
	if len(sboms) != 1 {
		t.Fatalf("attestation manifest has %d SPDX statements, want 1", len(sboms))
	}
	checkSubject(t, sboms[0], img.digest)
	doc := sboms[0].spdx(t)
	sum := sha256.Sum256([]byte("aarch64\n"))
	if f := doc.file("/arch"); f == nil || f.checksum("SHA256") != hex.EncodeToString(sum[:]) {
		t.Errorf("/arch in the SBOM: %+v, want the checksum of \"aarch64\\n\"", f)
	}
	provs := att.statements("https://slsa.dev/provenance/v0.2", "https://slsa.dev/provenance/v1")
	if len(provs) != 1 {
		t.Fatalf("attestation manifest has %d SLSA provenance statements, want 1; layers: %v", len(provs), att.predicateTypes())
	}
	checkGeneratorDependency(ctx, t, env, provs[0], "arm64")
}

// checkGeneratorDependency checks that the provenance names the generator
// image, by the digest of its index, and the platform BuildKit ran it as
// among the build's dependencies.
func checkGeneratorDependency(ctx context.Context, t *testing.T, env *testenv.Env, prov statement, arch string) {
	t.Helper()
	gen, err := env.SBOMGenerator(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(gen)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := ggcrremote.Index(r)
	if err != nil {
		t.Fatal(err)
	}
	want, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	type dependency struct {
		URI    string            `json:"uri"`
		Digest map[string]string `json:"digest"`
	}
	var p struct {
		BuildDefinition struct {
			ResolvedDependencies []dependency `json:"resolvedDependencies"`
		} `json:"buildDefinition"` // SLSA v1
		Materials []dependency `json:"materials"` // SLSA v0.2
	}
	if err := json.Unmarshal(prov.Predicate, &p); err != nil {
		t.Fatal(err)
	}
	deps := append(p.BuildDefinition.ResolvedDependencies, p.Materials...)
	for _, d := range deps {
		if strings.Contains(d.URI, "/larder/sbomgen@") && strings.Contains(d.URI, "platform=linux%2F"+arch) && d.Digest[want.Algorithm] == want.Hex {
			t.Logf("provenance names the generator: %s %s", d.URI, want)
			return
		}
	}
	t.Errorf("provenance dependencies %+v do not name the linux/%s generator image %s", deps, arch, want)
}

// solveWithSBOM builds dockerfile for platform (the daemon's default when
// empty), with a context holding files, with the raw BuildKit client,
// attesting an SBOM made by the environment's generator and max-mode
// provenance, and pushes the result to ref.
func solveWithSBOM(ctx context.Context, t *testing.T, env *testenv.Env, c *client.Client, platform, dockerfile string, files map[string]string, ref string) {
	t.Helper()
	gen, err := env.SBOMGenerator(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files = mapsWith(files, "Dockerfile", dockerfile)
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fs, err := fsutil.NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	attrs := map[string]string{
		"attest:sbom":       "generator=" + gen,
		"attest:provenance": "mode=max",
	}
	if platform != "" {
		attrs["platform"] = platform
	}
	_, err = c.Solve(ctx, nil, client.SolveOpt{
		Frontend:      "dockerfile.v0",
		FrontendAttrs: attrs,
		LocalMounts:   map[string]fsutil.FS{"context": fs, "dockerfile": fs},
		Exports: []client.ExportEntry{{
			Type:  client.ExporterImage,
			Attrs: map[string]string{"name": ref, "push": "true"},
		}},
	}, nil)
	if err != nil {
		t.Fatalf("solve with generator %s: %v", gen, err)
	}
}

type pushedImage struct {
	digest string   // of its manifest
	layers []string // digests, base first
}

type attestationManifest struct {
	layers []statement
}

type statement struct {
	PredicateType string `json:"predicateType"`
	Subject       []struct {
		Name   string            `json:"name"`
		Digest map[string]string `json:"digest"`
	} `json:"subject"`
	Predicate json.RawMessage `json:"predicate"`
}

type spdxDocument struct {
	SPDXVersion  string `json:"spdxVersion"`
	Name         string `json:"name"`
	CreationInfo struct {
		Creators []string `json:"creators"`
	} `json:"creationInfo"`
	Files []spdxFile `json:"files"`
}

type spdxFile struct {
	FileName  string `json:"fileName"`
	Comment   string `json:"comment"`
	Checksums []struct {
		Algorithm string `json:"algorithm"`
		Value     string `json:"checksumValue"`
	} `json:"checksums"`
}

// attestationFor reads the index at ref and returns its linux/arch image
// and the attestation manifest that refers to it.
func attestationFor(t *testing.T, ref, arch string) (pushedImage, attestationManifest) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := ggcrremote.Index(r)
	if err != nil {
		t.Fatalf("reading the index %s: %v", ref, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var img pushedImage
	for _, d := range im.Manifests {
		if d.Platform != nil && d.Platform.OS == "linux" && d.Platform.Architecture == arch {
			img.digest = d.Digest.String()
			i, err := idx.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			m, err := i.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range m.Layers {
				img.layers = append(img.layers, l.Digest.String())
			}
		}
	}
	if img.digest == "" {
		t.Fatalf("%s has no linux/%s image: %+v", ref, arch, im.Manifests)
	}
	var att attestationManifest
	found := 0
	for _, d := range im.Manifests {
		if d.Annotations["vnd.docker.reference.type"] != "attestation-manifest" {
			continue
		}
		if d.Annotations["vnd.docker.reference.digest"] != img.digest {
			t.Logf("attestation manifest %s refers to %s", d.Digest, d.Annotations["vnd.docker.reference.digest"])
			continue
		}
		found++
		t.Logf("attestation manifest %s refers to the linux/%s image %s", d.Digest, arch, img.digest)
		i, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		m, err := i.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range m.Layers {
			if l.MediaType != "application/vnd.in-toto+json" {
				t.Errorf("attestation layer %s has media type %s", l.Digest, l.MediaType)
			}
			layer, err := i.LayerByDigest(l.Digest)
			if err != nil {
				t.Fatal(err)
			}
			// The statement is stored as is, not compressed.
			rc, err := layer.Compressed()
			if err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			var s statement
			if err := json.Unmarshal(data, &s); err != nil {
				t.Fatalf("attestation layer %s: %v", l.Digest, err)
			}
			if got := l.Annotations["in-toto.io/predicate-type"]; got != s.PredicateType {
				t.Errorf("layer %s annotated with predicate type %q, holds %q", l.Digest, got, s.PredicateType)
			}
			t.Logf("  layer %s: %s, %d bytes", l.Digest, s.PredicateType, len(data))
			att.layers = append(att.layers, s)
		}
	}
	if found != 1 {
		t.Fatalf("%s has %d attestation manifests for its linux/%s image %s, want 1", ref, found, arch, img.digest)
	}
	return img, att
}

// statements returns the statements with one of the predicate types.
func (a attestationManifest) statements(predicateTypes ...string) []statement {
	var out []statement
	for _, s := range a.layers {
		if slices.Contains(predicateTypes, s.PredicateType) {
			out = append(out, s)
		}
	}
	return out
}

func (a attestationManifest) predicateTypes() []string {
	var out []string
	for _, s := range a.layers {
		out = append(out, s.PredicateType)
	}
	return out
}

// checkSubject checks that s is about the image whose manifest has digest.
func checkSubject(t *testing.T, s statement, digest string) {
	t.Helper()
	algo, hex, _ := strings.Cut(digest, ":")
	for _, sub := range s.Subject {
		if sub.Digest[algo] == hex {
			return
		}
	}
	t.Errorf("%s statement's subjects %+v do not name the image %s", s.PredicateType, s.Subject, digest)
}

func (s statement) spdx(t *testing.T) *spdxDocument {
	t.Helper()
	var doc spdxDocument
	if err := json.Unmarshal(s.Predicate, &doc); err != nil {
		t.Fatalf("SPDX predicate: %v", err)
	}
	return &doc
}

func (d *spdxDocument) file(name string) *spdxFile {
	for i := range d.Files {
		if d.Files[i].FileName == name {
			return &d.Files[i]
		}
	}
	return nil
}

func (d *spdxDocument) fileNames() []string {
	var out []string
	for _, f := range d.Files {
		out = append(out, f.FileName)
	}
	return out
}

func (f *spdxFile) checksum(algorithm string) string {
	for _, c := range f.Checksums {
		if c.Algorithm == algorithm {
			return c.Value
		}
	}
	return ""
}

func mapsWith(m map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
