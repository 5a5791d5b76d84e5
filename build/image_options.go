package build

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/moby/buildkit/client"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// imageOptions are the solve's options for the images it writes.
type imageOptions struct {
	annotations []annotation
	epoch       *time.Time
	provenance  string // "min" or "max"; "" for none
	sbom        string // the SBOM generator image; "" for none
	// ociPaths are the files of the OCITarball options, by their index in
	// the solve's exports.
	ociPaths map[int]string
	// engines are the engines of the Load options, by their index in the
	// solve's exports.
	engines map[int]*engineAPI
	// tmp holds each platform's OCI layout when several platforms go
	// to an OCITarball; made by Solve, removed when it returns.
	tmp string
	// files are the tarballs written on the client, renamed to their
	// paths when Solve succeeds.
	files tarFiles
}

type annotation struct {
	key, value      string
	manifest, index bool
}

// AnnotationTarget says where an [Annotation] goes.
type AnnotationTarget string

const (
	// OnManifest annotates each platform's image manifest.
	OnManifest AnnotationTarget = "manifest"
	// OnIndex annotates the index of a multi-platform image, or of a
	// single platform's image and its attestations.
	OnIndex AnnotationTarget = "index"
)

var annotationKey = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]*$`)

// Annotation sets the OCI annotation key to value on the images the solve
// pushes or writes, as buildx's --annotation does: on each manifest by
// default, or where says ([OnManifest], [OnIndex], or both). An index
// annotation needs an index: several [Platforms], or attestations
// ([Provenance], [SBOM]). It does not change any step or cache key.
func Annotation(key, value string, where ...AnnotationTarget) SolveOption {
	return func(o *solveOptions) error {
		if !annotationKey.MatchString(key) {
			return fmt.Errorf("Annotation(%q): want a key of letters, digits, '.', '_', '/' and '-', such as \"org.opencontainers.image.source\"", key)
		}
		a := annotation{key: key, value: value, manifest: len(where) == 0}
		for _, w := range where {
			switch w {
			case OnManifest:
				a.manifest = true
			case OnIndex:
				a.index = true
			default:
				return fmt.Errorf("Annotation(%q): unknown target %q (want build.OnManifest or build.OnIndex)", key, w)
			}
		}
		o.image.annotations = append(o.image.annotations, a)
		return nil
	}
}

// SourceDateEpoch makes the images the solve writes reproducible, as
// SOURCE_DATE_EPOCH does for BuildKit: the image's creation time, the
// history entries after the base image's, and the times of files in the
// layers the solve made become t where they are later than t; the base
// image's history keeps its times. The same graph solved on two fresh
// builders then gives the same image digest, as long as t is not later
// than the solve (what was made before t keeps the time it was made).
// Steps do not see the time; set
// Env("SOURCE_DATE_EPOCH", …) for tools that read it, which changes their
// cache keys. t is kept to the second. It does not change any cache key.
func SourceDateEpoch(t time.Time) SolveOption {
	return func(o *solveOptions) error {
		if t.IsZero() || t.Unix() < 0 {
			return fmt.Errorf("SourceDateEpoch(%s): want a time after 1970, such as the last commit's (git log -1 --format=%%ct)", t)
		}
		u := time.Unix(t.Unix(), 0).UTC()
		o.image.epoch = &u
		return nil
	}
}

// imageExporters are the exporters that write an image.
var imageExporters = []string{client.ExporterImage, "registry", client.ExporterOCI, client.ExporterDocker}

// withImageAttrs returns e with the attributes of the solve's image
// options, when e writes an image; multi says whether an index of several
// platforms will be made of it.
func (o *solveOptions) withImageAttrs(e client.ExportEntry, multi bool) client.ExportEntry {
	if !slices.Contains(imageExporters, e.Type) {
		return e
	}
	e.Attrs = maps.Clone(e.Attrs)
	if e.Attrs == nil {
		e.Attrs = map[string]string{}
	}
	for _, a := range o.image.annotations {
		if a.manifest {
			e.Attrs["annotation-manifest."+a.key] = a.value
		}
		if a.index && !multi {
			e.Attrs["annotation-index."+a.key] = a.value
		}
	}
	if o.image.epoch != nil {
		e.Attrs["source-date-epoch"] = strconv.FormatInt(o.image.epoch.Unix(), 10)
		e.Attrs["rewrite-timestamp"] = "true"
	}
	return e
}

// indexAnnotations returns the annotations of the index Larder makes of
// several platforms.
func (o *solveOptions) indexAnnotations() map[string]string {
	var m map[string]string
	for _, a := range o.image.annotations {
		if a.index {
			if m == nil {
				m = map[string]string{}
			}
			m[a.key] = a.value
		}
	}
	return m
}

// writesIndex reports whether the output option fn writes one index of
// several platforms, which Larder makes of each platform's layout.
func writesIndex(fn string) bool { return fn == "OCITarball" || fn == "Load" }

// writeIndexes makes the index of the platforms ps for each output that
// writes one, and returns the digest of the last.
func (o *solveOptions) writeIndexes(ctx context.Context, ps []ocispecs.Platform) (digest.Digest, error) {
	var d digest.Digest
	for i, fn := range o.exportFns {
		if !writesIndex(fn) || len(ps) < 2 {
			continue
		}
		path, files := o.image.ociPaths[i], &o.image.files
		if fn == "Load" {
			path, files = filepath.Join(o.image.tmp, strconv.Itoa(i)+".tar"), nil
		}
		var err error
		d, err = writeOCITarball(o.exports[i].Attrs["name"], ociDir(o.image.tmp, i), ps, o.indexAnnotations(), path, files)
		if err == nil && fn == "Load" {
			err = o.image.engines[i].loadFile(ctx, path)
		}
		if err != nil {
			return "", fmt.Errorf("%s: %w", fn, err)
		}
	}
	return d, nil
}

// checkImageOptions reports image options that the solve of ps can't
// honour.
func (o *solveOptions) checkImageOptions(ctx context.Context, ps []ocispecs.Platform) error {
	var errs []error
	for i, eng := range o.image.engines {
		if len(ps) < 2 {
			break
		}
		ok, err := engineStoresIndexes(ctx, eng.host)
		if err == nil && !ok {
			err = fmt.Errorf("the engine at %s keeps one platform's image per tag (Docker's classic image store), and %d platforms are built (Load one platform, use Docker's containerd image store, or Push an index)", eng.host, len(ps))
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", o.exports[i].Attrs["name"], err))
		}
	}
	if len(ps) == 1 && !o.attests() {
		for _, a := range o.image.annotations {
			if a.index {
				errs = append(errs, fmt.Errorf("Annotation(%q, OnIndex): a single platform's image has no index (build several Platforms, add Provenance or SBOM, or annotate OnManifest)", a.key))
			}
		}
	}
	if len(o.image.annotations) > 0 && !o.imageOutput {
		errs = append(errs, errors.New("Annotation: the solve writes no image (add Push, OCITarball or DockerTarball)"))
	}
	if o.image.epoch != nil && !o.imageOutput {
		errs = append(errs, errors.New("SourceDateEpoch: the solve writes no image (add Push, OCITarball or DockerTarball)"))
	}
	return errors.Join(errs...)
}

// Provenance adds to each platform's image an attestation of how it was
// built: an in-toto statement with a SLSA provenance predicate, made by
// the builder, as buildx's --provenance does. mode is "min" (the build's
// inputs and builder) or "max" (also the build's definition and its
// steps). The images then go out as an index of the image and its
// attestation manifest, per platform. It does not change any cache key.
func Provenance(mode string) SolveOption {
	return func(o *solveOptions) error {
		if mode != "min" && mode != "max" {
			return fmt.Errorf("Provenance(%q): unknown mode (want \"min\" or \"max\")", mode)
		}
		o.image.provenance = mode
		return nil
	}
}

// SBOM adds to each platform's image an attestation of what it holds: an
// in-toto statement with an SPDX document that the image generator makes
// by scanning the image's filesystem, as buildx's --sbom=generator=… does.
// generator follows BuildKit's SBOM scanner protocol, such as
// "docker/buildkit-syft-scanner:stable-1"; the builder pulls it. It does
// not change any cache key.
func SBOM(generator string) SolveOption {
	return func(o *solveOptions) error {
		if _, err := reference.ParseNormalizedNamed(generator); err != nil || generator == "" {
			return fmt.Errorf("SBOM(%q): want the generator's image reference, such as \"docker/buildkit-syft-scanner:stable-1\"", generator)
		}
		o.image.sbom = generator
		return nil
	}
}

// attests reports whether the solve makes attestations.
func (o *solveOptions) attests() bool { return o.image.provenance != "" || o.image.sbom != "" }

// attestAttrs adds to attrs the frontend attributes that ask the builder
// for the solve's attestations.
func (o *solveOptions) attestAttrs(attrs map[string]string) {
	if o.image.provenance != "" {
		attrs["attest:provenance"] = "mode=" + o.image.provenance
	}
	if o.image.sbom != "" {
		attrs["attest:sbom"] = "generator=" + o.image.sbom
	}
}

// platformDir names the directory of platform p under dir.
func platformDir(dir string, p ocispecs.Platform) string {
	return filepath.Join(dir, strings.ReplaceAll(platforms.Format(p), "/", "_"))
}
