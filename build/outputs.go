package build

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/moby/buildkit/client"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// Push pushes the image to each reference, such as
// "registry.example.com/team/app:1.2", with credentials from the solve's
// keychain (see [WithKeychain]).
func Push(refs ...string) SolveOption {
	return func(o *solveOptions) error {
		if len(refs) == 0 {
			return errors.New("Push: no reference")
		}
		for _, r := range refs {
			if _, err := reference.ParseNormalizedNamed(r); err != nil {
				return fmt.Errorf("Push(%q): %w (want host/repo:tag)", r, err)
			}
		}
		o.pushRefs = append(o.pushRefs, refs...)
		o.imageOutput = true
		return nil
	}
}

// OCITarball writes the image as an OCI layout tarball to the file path,
// named ref ("" for no name).
func OCITarball(path, ref string) SolveOption {
	return tarball(client.ExporterOCI, "OCITarball", path, ref, false)
}

// DockerTarball writes the image as a tarball that `docker load` reads, to
// the file path, tagged ref.
func DockerTarball(path, ref string) SolveOption {
	return tarball(client.ExporterDocker, "DockerTarball", path, ref, true)
}

func tarball(typ, fn, path, ref string, needRef bool) SolveOption {
	return func(o *solveOptions) error {
		if path == "" {
			return fmt.Errorf("%s: empty path", fn)
		}
		if dir := filepath.Dir(path); dir != "" {
			if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
				return fmt.Errorf("%s(%q): directory %s does not exist", fn, path, dir)
			}
		}
		attrs := map[string]string{}
		if ref != "" {
			if _, err := reference.ParseNormalizedNamed(ref); err != nil {
				return fmt.Errorf("%s(%q, %q): %w", fn, path, ref, err)
			}
			attrs["name"] = ref
		} else if needRef {
			return fmt.Errorf("%s(%q): a reference is needed to tag the image", fn, path)
		}
		o.exports = append(o.exports, client.ExportEntry{
			Type:  typ,
			Attrs: attrs,
			Output: func(map[string]string) (io.WriteCloser, error) {
				return os.Create(path)
			},
		})
		o.exportFns = append(o.exportFns, fn)
		o.imageOutput = true
		return nil
	}
}

// LocalDir writes the result's filesystem to the directory dir on the
// client, creating it if needed. When several platforms are built, each
// goes to a subdirectory named like "linux_arm64" or "linux_arm_v7".
func LocalDir(dir string) SolveOption {
	return func(o *solveOptions) error {
		if dir == "" {
			return errors.New("LocalDir: empty path")
		}
		o.localDirs = append(o.localDirs, dir)
		return nil
	}
}

// Export adds a raw BuildKit export entry, for exporters Larder does not
// wrap. It takes a single-platform build.
func Export(e client.ExportEntry) SolveOption {
	return func(o *solveOptions) error {
		if e.Type == "" {
			return errors.New("Export: entry has no Type")
		}
		o.exports = append(o.exports, e)
		o.exportFns = append(o.exportFns, "Export")
		return nil
	}
}

// exportsFor returns the export entries of the solve of p. With several
// platforms, local directories get a subdirectory per platform and images
// are pushed by digest, to be put in an index afterwards.
func (o *solveOptions) exportsFor(p ocispecs.Platform, multi bool) []client.ExportEntry {
	exports := slices.Clone(o.exports)
	for _, dir := range o.localDirs {
		if multi {
			dir = filepath.Join(dir, strings.ReplaceAll(platforms.Format(p), "/", "_"))
		}
		exports = append(exports, client.ExportEntry{Type: client.ExporterLocal, OutputDir: dir})
	}
	if len(o.pushRefs) > 0 {
		attrs := map[string]string{"name": strings.Join(o.pushRefs, ","), "push": "true"}
		if multi {
			named, _ := reference.ParseNormalizedNamed(o.pushRefs[0])
			attrs = map[string]string{"name": named.Name(), "push": "true", "push-by-digest": "true"}
		}
		exports = append(exports, client.ExportEntry{Type: client.ExporterImage, Attrs: attrs})
	}
	return exports
}
