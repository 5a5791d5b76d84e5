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
	"runtime"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// sbomgenPackage is the generator's source, built for each platform of the
// image.
const sbomgenPackage = "github.com/larder-build/larder/internal/testenv/sbomgen"

// SBOMGenerator returns the reference of an SBOM generator image index for
// linux/amd64 and linux/arm64 in the environment's registry, pushing it on
// first use. It stands in for BuildKit's default generator
// (docker/buildkit-syft-scanner), which these machines can't pull: a solve
// with the frontend attribute "attest:sbom" set to "generator=" + the
// reference gets an SBOM attestation, an SPDX 2.3 document listing the
// image's regular files with their checksums (see package sbomgen for what
// it does and does not record).
//
// The generator is internal/testenv/sbomgen, compiled with the go command in
// PATH (Go's build cache makes that fast after the first time); the images
// hold that one static binary, /sbomgen, as their entrypoint.
func (e *Env) SBOMGenerator(ctx context.Context) (string, error) {
	return e.image(ctx, "sbomgen:latest", func() (v1.ImageIndex, v1.Image, error) {
		dir, err := os.MkdirTemp("", "larder-sbomgen-")
		if err != nil {
			return nil, nil, err
		}
		defer os.RemoveAll(dir)
		idx := v1.ImageIndex(empty.Index)
		for _, arch := range []string{"amd64", "arm64"} {
			bin := filepath.Join(dir, "sbomgen-"+arch)
			if err := buildSBOMGen(ctx, arch, bin); err != nil {
				return nil, nil, err
			}
			layer, err := sbomgenLayer(bin)
			if err != nil {
				return nil, nil, err
			}
			img, err := imageOf(arch, nil, layer)
			if err != nil {
				return nil, nil, err
			}
			cf, err := img.ConfigFile()
			if err != nil {
				return nil, nil, err
			}
			cf = cf.DeepCopy()
			// BuildKit runs Entrypoint followed by Cmd, in WorkingDir, with
			// Env and its BUILDKIT_SCAN_* variables.
			cf.Config.Entrypoint = []string{"/sbomgen"}
			cf.Config.Cmd = nil
			cf.Config.WorkingDir = "/"
			if img, err = mutate.ConfigFile(img, cf); err != nil {
				return nil, nil, err
			}
			idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
				Add:        img,
				Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}},
			})
		}
		return idx, nil, nil
	})
}

// buildSBOMGen compiles the generator, statically, for linux/arch into out.
// It builds from the source next to this file when that is on disk, else by
// import path from the working directory, which for a test is its package's
// directory in this module.
func buildSBOMGen(ctx context.Context, arch, out string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("building the SBOM generator needs the go command: %w", err)
	}
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-buildvcs=false", "-o", out, sbomgenPackage)
	if _, file, _, ok := runtime.Caller(0); ok {
		if _, err := os.Stat(filepath.Join(filepath.Dir(file), "sbomgen", "main.go")); err == nil {
			cmd.Dir = filepath.Dir(file)
		}
	}
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s for linux/%s: %w\n%s", sbomgenPackage, arch, err, tail(out, 20))
	}
	return nil
}

// sbomgenLayer makes a layer holding the binary at bin as /sbomgen.
func sbomgenLayer(bin string) (v1.Layer, error) {
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: "sbomgen", Mode: 0o755, Size: int64(len(data)), ModTime: time.Unix(0, 0)}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, err
	}
	if _, err := tw.Write(data); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
}
