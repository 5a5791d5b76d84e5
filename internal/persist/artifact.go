// Package persist is the format of persisted cache mounts in a
// cache.MountStore, and how they are read and committed so that concurrent
// saves merge instead of losing each other's files.
//
// The artifact of one cache mount is the union of the heads kept under its
// key. A head is an OCI image manifest (artifact type ArtifactType) whose
// layers are gzip-compressed tar files of the cache's files, applied in
// order, and which may name older heads it replaces. A save writes its new
// layer, then a new head listing the layers it restored plus the new one,
// replacing the heads it restored; heads written by concurrent saves are
// left alone, so the next restore merges them. Nothing read from a store is
// trusted: a head must have this package's form exactly, and a blob is used
// only once its digest and size match its head's.
package persist

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/larder-build/larder/cache"
)

const (
	// ArtifactType is the artifact type of a head's manifest.
	ArtifactType = "application/vnd.larder.cache-mount.v1"
	// LayerType is the media type of a head's layers.
	LayerType = ocispecs.MediaTypeImageLayerGzip

	annotationReplaces = "dev.larder.cache-mount.replaces" // comma-separated head names
	annotationFiles    = "dev.larder.cache-mount.files"    // entries in a layer
	annotationBytes    = "dev.larder.cache-mount.bytes"    // bytes of the files in a layer

	// MaxLayers is the most layers a save leaves in a head: a save that
	// would leave more writes the whole cache as one layer instead.
	MaxLayers = 8
	// maxReadLayers bounds the layers of a head that is read, and
	// maxReplaces the heads it may replace.
	maxReadLayers = 64
	maxReplaces   = 4096
	// maxBlob bounds the size of a layer that is read: 64 GiB.
	maxBlob = 64 << 30
)

// emptyConfig is the config blob of every head, OCI's empty descriptor.
var emptyConfig = ocispecs.DescriptorEmptyJSON

// Layer is one layer of an artifact.
type Layer struct {
	ocispecs.Descriptor
	// Files is how many entries the layer holds; Bytes, the size of its
	// regular files.
	Files, Bytes int64
}

// Artifact is what a store holds for one key: its valid heads, merged.
type Artifact struct {
	// Key is the artifact's key in its store.
	Key string
	// Heads are the heads merged, oldest first.
	Heads []string
	// Replaced are the heads that a merged head replaces, left out.
	Replaced []string
	// Invalid are the heads that are not artifacts of this form, with
	// why: tampered, or written by something else. They are left out.
	Invalid []HeadError
	// Layers are the layers of the merged heads, each once, in the order
	// to apply them.
	Layers []Layer

	layersOf map[string][]Layer // the layers of each merged head
}

// merge adds the head name, whose layers are layers, to a: its layers that
// a lacks go last.
func (a *Artifact) merge(name string, layers []Layer) {
	a.Heads = append(a.Heads, name)
	if a.layersOf == nil {
		a.layersOf = map[string][]Layer{}
	}
	a.layersOf[name] = layers
	for _, l := range layers {
		if !slices.ContainsFunc(a.Layers, func(m Layer) bool { return m.Digest == l.Digest }) {
			a.Layers = append(a.Layers, l)
		}
	}
}

// HeadError says why a head was left out.
type HeadError struct {
	// Name is the head's name.
	Name string
	// Err says what is wrong with it.
	Err error
}

// Size returns the total size of the artifact's layers.
func (a *Artifact) Size() int64 {
	var n int64
	for _, l := range a.Layers {
		n += l.Size
	}
	return n
}

// Bytes returns the total size of the files in the artifact's layers,
// counting a file once per layer that holds it.
func (a *Artifact) Bytes() int64 {
	var n int64
	for _, l := range a.Layers {
		n += l.Bytes
	}
	return n
}

// Read reads and merges the heads kept under key. A head that is not an
// artifact of this package's form is left out and listed in Invalid; a
// head that disappears while it is read (a concurrent save replaced it) is
// left out silently. Read fails only when the store can't be listed or a
// head can't be read.
func Read(ctx context.Context, s cache.MountStore, key string) (*Artifact, error) {
	names, err := s.Heads(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("listing the heads of %s: %w", key, err)
	}
	slices.Sort(names)
	a := &Artifact{Key: key}
	type head struct {
		name string
		m    *ocispecs.Manifest
	}
	var heads []head
	replaced := map[string]bool{}
	for _, n := range names {
		if !cache.ValidHeadName(n) {
			continue
		}
		b, err := s.ReadHead(ctx, key, n)
		if errors.Is(err, cache.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading head %s of %s: %w", n, key, err)
		}
		m, rep, err := parseHead(b)
		if err != nil {
			a.Invalid = append(a.Invalid, HeadError{Name: n, Err: err})
			continue
		}
		for _, r := range rep {
			if r != n {
				replaced[r] = true
			}
		}
		heads = append(heads, head{n, m})
	}
	for _, h := range heads {
		if replaced[h.name] {
			a.Replaced = append(a.Replaced, h.name)
			continue
		}
		var layers []Layer
		for _, d := range h.m.Layers {
			files, _ := strconv.ParseInt(d.Annotations[annotationFiles], 10, 64)
			bytes, _ := strconv.ParseInt(d.Annotations[annotationBytes], 10, 64)
			layers = append(layers, Layer{Descriptor: ocispecs.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size}, Files: files, Bytes: bytes})
		}
		a.merge(h.name, layers)
	}
	return a, nil
}

// parseHead checks that b is a head's manifest and returns it with the
// names of the heads it replaces.
func parseHead(b []byte) (*ocispecs.Manifest, []string, error) {
	var m ocispecs.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, nil, fmt.Errorf("not a manifest: %w", err)
	}
	switch {
	case m.SchemaVersion != 2 || m.MediaType != ocispecs.MediaTypeImageManifest:
		return nil, nil, fmt.Errorf("not an OCI image manifest (schema %d, media type %q)", m.SchemaVersion, m.MediaType)
	case m.ArtifactType != ArtifactType:
		return nil, nil, fmt.Errorf("artifact type %q, want %q", m.ArtifactType, ArtifactType)
	case m.Config.MediaType != emptyConfig.MediaType || m.Config.Digest != emptyConfig.Digest || m.Config.Size != emptyConfig.Size:
		return nil, nil, fmt.Errorf("config %s is not the empty descriptor", m.Config.Digest)
	case len(m.Layers) == 0 || len(m.Layers) > maxReadLayers:
		return nil, nil, fmt.Errorf("%d layers, want 1 to %d", len(m.Layers), maxReadLayers)
	}
	for _, l := range m.Layers {
		if err := checkLayer(l); err != nil {
			return nil, nil, err
		}
	}
	var rep []string
	if r := m.Annotations[annotationReplaces]; r != "" {
		rep = strings.Split(r, ",")
		if len(rep) > maxReplaces {
			return nil, nil, fmt.Errorf("replaces %d heads, more than %d", len(rep), maxReplaces)
		}
		for _, n := range rep {
			if !cache.ValidHeadName(n) {
				return nil, nil, fmt.Errorf("replaces %q, which is not a head name", n)
			}
		}
	}
	return &m, rep, nil
}

func checkLayer(l ocispecs.Descriptor) error {
	if l.MediaType != LayerType {
		return fmt.Errorf("layer media type %q, want %q", l.MediaType, LayerType)
	}
	if err := l.Digest.Validate(); err != nil || l.Digest.Algorithm() != digest.SHA256 {
		return fmt.Errorf("layer digest %q is not a sha256 digest", l.Digest)
	}
	if l.Size <= 0 || l.Size > maxBlob {
		return fmt.Errorf("layer %s has size %d, want 1 to %d", l.Digest, l.Size, int64(maxBlob))
	}
	for _, k := range []string{annotationFiles, annotationBytes} {
		if v, ok := l.Annotations[k]; ok {
			if n, err := strconv.ParseInt(v, 10, 64); err != nil || n < 0 {
				return fmt.Errorf("layer %s: annotation %s is %q, not a count", l.Digest, k, v)
			}
		}
	}
	return nil
}

// NewHeadName returns the name of a head committed at t: its time in
// nanoseconds, so that names sort by time, then a random part.
func NewHeadName(t time.Time) string {
	var b [4]byte
	rand.Read(b[:])
	return fmt.Sprintf("%019d-%s", t.UnixNano(), hex.EncodeToString(b[:]))
}

// manifest returns the manifest of a head with layers, replacing the heads
// in replaces.
func manifest(layers []Layer, replaces []string, created time.Time) ([]byte, error) {
	m := ocispecs.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispecs.MediaTypeImageManifest,
		ArtifactType: ArtifactType,
		Config:       emptyConfig,
		Annotations:  map[string]string{ocispecs.AnnotationCreated: created.UTC().Format(time.RFC3339Nano)},
	}
	if len(replaces) > 0 {
		m.Annotations[annotationReplaces] = strings.Join(replaces, ",")
	}
	for _, l := range layers {
		d := l.Descriptor
		d.Annotations = map[string]string{
			annotationFiles: strconv.FormatInt(l.Files, 10),
			annotationBytes: strconv.FormatInt(l.Bytes, 10),
		}
		m.Layers = append(m.Layers, d)
	}
	return json.Marshal(m)
}
