package build

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// pushIndex pushes one index of the platforms' images, which were pushed by
// digest to the repository of refs[0], under each of refs, with credentials
// from k and the annotations given.
func pushIndex(ctx context.Context, refs []string, results []PlatformResult, annotations map[string]string, k authn.Keychain) (digest.Digest, error) {
	named, _ := reference.ParseNormalizedNamed(refs[0])
	ropts := []ggcrremote.Option{ggcrremote.WithContext(ctx), ggcrremote.WithAuthFromKeychain(k)}
	var parts []indexPart
	for _, r := range results {
		dref, err := name.NewDigest(named.Name() + "@" + r.Digest.String())
		if err != nil {
			return "", fmt.Errorf("index: %w", err)
		}
		desc, err := ggcrremote.Get(dref, ropts...)
		if err != nil {
			return "", fmt.Errorf("index: reading %s: %w", dref, err)
		}
		pl, _ := platforms.Parse(r.Platform)
		part := indexPart{platform: pl, desc: desc.Descriptor}
		if desc.MediaType.IsIndex() {
			part.index, err = desc.ImageIndex()
		} else {
			part.image, err = desc.Image()
		}
		if err != nil {
			return "", fmt.Errorf("index: %s: %w", dref, err)
		}
		parts = append(parts, part)
	}
	idx, err := makeIndex(parts, annotations)
	if err != nil {
		return "", err
	}
	for _, ref := range refs {
		tag, err := name.ParseReference(ref)
		if err != nil {
			return "", fmt.Errorf("index: %w", err)
		}
		if err := ggcrremote.WriteIndex(tag, idx, ropts...); err != nil {
			return "", fmt.Errorf("pushing the index to %s: %w", ref, err)
		}
	}
	d, err := idx.Digest()
	if err != nil {
		return "", err
	}
	return digest.Digest(d.String()), nil
}

// indexPart is what one platform's solve exported: an image, or an index
// of its image and the image's attestations.
type indexPart struct {
	platform ocispecs.Platform
	desc     v1.Descriptor
	image    v1.Image
	index    v1.ImageIndex
}

// makeIndex returns one index of the parts' images, and of their
// attestation manifests, each with its own descriptor (platform and
// annotations) as the builder wrote it.
func makeIndex(parts []indexPart, annotations map[string]string) (v1.ImageIndex, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for i, part := range parts {
		if i == 0 && part.desc.MediaType == types.DockerManifestSchema2 {
			idx = mutate.IndexMediaType(empty.Index, types.DockerManifestList)
		}
		if part.index == nil {
			idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
				Add: part.image,
				Descriptor: v1.Descriptor{
					MediaType: part.desc.MediaType,
					Platform:  &v1.Platform{OS: part.platform.OS, Architecture: part.platform.Architecture, Variant: part.platform.Variant},
				},
			})
			continue
		}
		im, err := part.index.IndexManifest()
		if err != nil {
			return nil, fmt.Errorf("index: %s: %w", platforms.Format(part.platform), err)
		}
		for _, d := range im.Manifests {
			img, err := part.index.Image(d.Digest)
			if err != nil {
				return nil, fmt.Errorf("index: %s: %s: %w", platforms.Format(part.platform), d.Digest, err)
			}
			idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: d})
		}
	}
	if len(annotations) > 0 {
		idx = mutate.Annotations(idx, annotations).(v1.ImageIndex)
	}
	return idx, nil
}

// ociDir is where the platforms of the i-th export write their layouts,
// under the solve's directory tmp.
func ociDir(tmp string, i int) string { return filepath.Join(tmp, strconv.Itoa(i)) }

// writeOCITarball writes to path an OCI layout whose index names ref (""
// for no name) and holds one index of the platforms ps, which the solve
// exported to layouts under dir; it returns the digest of that index.
func writeOCITarball(ref, dir string, ps []ocispecs.Platform, annotations map[string]string, path string, files *tarFiles) (digest.Digest, error) {
	var parts []indexPart
	for _, p := range ps {
		pdir := platformDir(dir, p)
		if err := untar(pdir+".tar", pdir); err != nil {
			return "", fmt.Errorf("%s: %w", platforms.Format(p), err)
		}
		lp, err := layout.FromPath(pdir)
		if err != nil {
			return "", err
		}
		top, err := lp.ImageIndex()
		if err != nil {
			return "", err
		}
		im, err := top.IndexManifest()
		if err != nil {
			return "", err
		}
		if len(im.Manifests) != 1 {
			return "", fmt.Errorf("%s: the layout holds %d manifests, want 1", platforms.Format(p), len(im.Manifests))
		}
		part := indexPart{platform: p, desc: im.Manifests[0]}
		if part.desc.MediaType.IsIndex() {
			part.index, err = top.ImageIndex(part.desc.Digest)
		} else {
			part.image, err = top.Image(part.desc.Digest)
		}
		if err != nil {
			return "", err
		}
		parts = append(parts, part)
	}
	idx, err := makeIndex(parts, annotations)
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "merged")
	lp, err := layout.Write(out, empty.Index)
	if err != nil {
		return "", err
	}
	var opts []layout.Option
	if ref != "" {
		opts = append(opts, layout.WithAnnotations(map[string]string{
			"io.containerd.image.name": containerdName(ref),
			ocispecs.AnnotationRefName: refName(ref),
		}))
	}
	if err := lp.AppendIndex(idx, opts...); err != nil {
		return "", err
	}
	if err := tarDir(out, path, files); err != nil {
		return "", err
	}
	d, err := idx.Digest()
	return digest.Digest(d.String()), err
}

// refName is the tag of ref, as BuildKit's OCI exporter names an image in
// its layout ("latest" when ref has none).
// containerdName returns ref as BuildKit's exporters name an image for
// containerd, normalised and tagged: "docker.io/library/app:1.2" for
// "app:1.2". Engines that keep images in containerd look them up by the
// normalised name.
func containerdName(ref string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ref
	}
	return reference.TagNameOnly(named).String()
}

func refName(ref string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ref
	}
	if t, ok := named.(reference.Tagged); ok {
		return t.Tag()
	}
	return "latest"
}

// tarDir writes the files under dir to a tarball at path, under a
// temporary name of files unless files is nil.
func tarDir(dir, path string, files *tarFiles) (err error) {
	var f *os.File
	if files != nil {
		f, err = files.create(path)
	} else {
		f, err = os.Create(path)
	}
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	tw := tar.NewWriter(f)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		h, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		h.Name = filepath.ToSlash(rel)
		h.Uname, h.Gname, h.Uid, h.Gid = "", "", 0, 0
		if d.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(tw, src)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// untar extracts the OCI layout tarball at path, which the builder wrote,
// into dir: directories and regular files only, each inside dir.
func untar(path, dir string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.FromSlash(h.Name)
		if !filepath.IsLocal(name) {
			return fmt.Errorf("the layout holds %q, outside it", h.Name)
		}
		p := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, 0o755)
		case tar.TypeReg:
			err = writeFile(p, tr)
		default:
			err = fmt.Errorf("the layout holds %q, neither a file nor a directory", h.Name)
		}
		if err != nil {
			return err
		}
	}
}

func writeFile(p string, r io.Reader) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
