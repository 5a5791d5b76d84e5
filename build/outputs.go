package build

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/distribution/reference"
	"github.com/moby/buildkit/client"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// Push pushes the image to each reference, such as
// "registry.example.com/team/app:1.2", with credentials from the solve's
// keychain (see [WithKeychain]). A reference with a digest is an error.
func Push(refs ...string) SolveOption {
	return func(o *solveOptions) error {
		if len(refs) == 0 {
			return errors.New("Push: no reference (give one or more, such as \"registry.example.com/team/app:1.2\")")
		}
		for _, r := range refs {
			named, err := reference.ParseNormalizedNamed(r)
			if err != nil {
				return fmt.Errorf("Push(%q): %w (want host/repo:tag)", r, err)
			}
			if _, ok := named.(reference.Digested); ok {
				return fmt.Errorf("Push(%q): an image can't be pushed to a digest, which names what is already there (want host/repo:tag)", r)
			}
		}
		o.pushRefs = append(o.pushRefs, refs...)
		o.imageOutput = true
		return nil
	}
}

// OCITarball writes the image as an OCI layout tarball to the file path,
// named ref ("" for no name). With several platforms, the layout's index
// holds the index of them all. The file takes its path only when the
// Solve succeeds; see [Solve].
func OCITarball(path, ref string) SolveOption {
	return tarball(client.ExporterOCI, "OCITarball", path, ref, false)
}

// DockerTarball writes the image as a tarball that `docker load` reads, to
// the file path, tagged ref. The file takes its path only when the Solve
// succeeds; see [Solve].
func DockerTarball(path, ref string) SolveOption {
	return tarball(client.ExporterDocker, "DockerTarball", path, ref, true)
}

func tarball(typ, fn, path, ref string, needRef bool) SolveOption {
	return func(o *solveOptions) error {
		if path == "" {
			return fmt.Errorf("%s: empty path (give the file to write, such as \"app.tar\")", fn)
		}
		if dir := filepath.Dir(path); dir != "" {
			if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
				return fmt.Errorf("%s(%q): directory %s does not exist (make it, or write the file elsewhere)", fn, path, dir)
			}
		}
		if err := o.claim(fn, path); err != nil {
			return err
		}
		attrs := map[string]string{}
		if ref != "" {
			if _, err := reference.ParseNormalizedNamed(ref); err != nil {
				return fmt.Errorf("%s(%q, %q): %w (want a reference such as app:1.2)", fn, path, ref, err)
			}
			attrs["name"] = ref
		} else if needRef {
			return fmt.Errorf("%s(%q): a reference is needed to tag the image (give one such as \"app:1.2\")", fn, path)
		}
		if typ == client.ExporterOCI {
			if o.image.ociPaths == nil {
				o.image.ociPaths = map[int]string{}
			}
			o.image.ociPaths[len(o.exports)] = path
		}
		o.exports = append(o.exports, client.ExportEntry{
			Type:  typ,
			Attrs: attrs,
			Output: func(map[string]string) (io.WriteCloser, error) {
				return o.image.files.create(path)
			},
		})
		o.exportFns = append(o.exportFns, fn)
		o.imageOutput = true
		return nil
	}
}

// LocalDir writes the result's filesystem to the directory dir on the
// client, creating it if needed; a file at dir is an error. When several
// platforms are built, each goes to a subdirectory named like
// "linux_arm64" or "linux_arm_v7".
func LocalDir(dir string) SolveOption {
	return func(o *solveOptions) error {
		if dir == "" {
			return errors.New("LocalDir: empty path (give the directory to write, such as \"./out\")")
		}
		if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
			return fmt.Errorf("LocalDir(%q): a file is there (give a directory, new or existing)", dir)
		}
		if err := o.claim("LocalDir", dir); err != nil {
			return err
		}
		o.localDirs = append(o.localDirs, dir)
		return nil
	}
}

// claim records that the option fn writes to path, and fails when another
// output of the solve writes there already.
func (o *solveOptions) claim(fn, path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = filepath.Clean(path)
	}
	if o.outputs == nil {
		o.outputs = map[string]string{}
	}
	if other, ok := o.outputs[abs]; ok {
		return fmt.Errorf("%s(%q): %s writes there too (give each output a path of its own)", fn, path, other)
	}
	o.outputs[abs] = fn
	return nil
}

// knownExporters are the exporters BuildKit v0.33.1 has.
var knownExporters = []string{client.ExporterImage, "registry", client.ExporterLocal, client.ExporterTar, client.ExporterOCI, client.ExporterDocker, "cacheonly"}

// Export adds a raw BuildKit export entry, for exporters Larder does not
// wrap. It takes a single-platform build. Its Type must be one of BuildKit's
// exporters: image, registry, local, tar, oci, docker or cacheonly; its
// attributes are BuildKit's to check.
func Export(e client.ExportEntry) SolveOption {
	return func(o *solveOptions) error {
		if e.Type == "" {
			return errors.New("Export: entry has no Type (set it to one of BuildKit's exporters, such as client.ExporterOCI)")
		}
		if !slices.Contains(knownExporters, e.Type) {
			return fmt.Errorf("Export: unknown exporter type %q (want one of %s)", e.Type, strings.Join(knownExporters, ", "))
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
	var exports []client.ExportEntry
	for i, e := range o.exports {
		if multi && writesIndex(o.exportFns[i]) {
			// Each platform's layout, made into one later.
			path := platformDir(ociDir(o.image.tmp, i), p) + ".tar"
			e = client.ExportEntry{Type: client.ExporterOCI, Attrs: e.Attrs, Output: func(map[string]string) (io.WriteCloser, error) {
				if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
					return nil, err
				}
				return os.Create(path)
			}}
		}
		exports = append(exports, o.withImageAttrs(e, multi))
	}
	for _, dir := range o.localDirs {
		if multi {
			dir = platformDir(dir, p)
		}
		exports = append(exports, client.ExportEntry{Type: client.ExporterLocal, OutputDir: dir})
	}
	if len(o.pushRefs) > 0 {
		attrs := map[string]string{"name": strings.Join(o.pushRefs, ","), "push": "true"}
		if multi {
			named, _ := reference.ParseNormalizedNamed(o.pushRefs[0])
			attrs = map[string]string{"name": named.Name(), "push": "true", "push-by-digest": "true"}
		}
		exports = append(exports, o.withImageAttrs(client.ExportEntry{Type: client.ExporterImage, Attrs: attrs}, multi))
	}
	return exports
}
