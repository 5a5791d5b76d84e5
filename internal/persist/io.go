package persist

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/larder-build/larder/cache"
)

// ErrContent is what a blob whose content does not match its descriptor
// fails with.
var ErrContent = errors.New("content does not match its digest or size")

// verified returns a reader of r that fails with ErrContent unless r
// yields exactly d.Size bytes with digest d.Digest. It reports the
// mismatch at the end, before io.EOF, so that nothing that reads to the
// end takes wrong content for right.
func verified(r io.Reader, d ocispecs.Descriptor) io.Reader {
	return &verifier{r: io.LimitReader(r, d.Size+1), d: d, v: d.Digest.Verifier()}
}

type verifier struct {
	r io.Reader
	d ocispecs.Descriptor
	v digest.Verifier
	n int64
}

func (v *verifier) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.n += int64(n)
	v.v.Write(p[:n])
	if v.n > v.d.Size {
		return n, fmt.Errorf("blob %s: more than %d bytes: %w", v.d.Digest, v.d.Size, ErrContent)
	}
	if err == io.EOF && (v.n != v.d.Size || !v.v.Verified()) {
		return n, fmt.Errorf("blob %s: %d bytes with another digest: %w", v.d.Digest, v.n, ErrContent)
	}
	return n, err
}

// LayerFile is the name Fetch gives the file of layer l.
func LayerFile(l Layer) string { return l.Digest.Encoded() + ".tar.gz" }

// Fetch writes each layer of a to dir, named by LayerFile, several at a
// time, and returns the artifact whose layers are all there, and how many
// bytes it fetched. A layer is written under a temporary name and kept only
// once its digest and size are checked; a layer already in dir is checked,
// not fetched again.
//
// A layer that the store does not have, or whose content is not what its
// head says, leaves out the heads that hold it: the artifact returned has
// them in Invalid, and the layers of the other heads. So a blob that a
// store lost (a lifecycle rule, a registry's garbage collection) costs the
// files of the heads that hold it, not the whole cache, and a save on top
// replaces only the heads that were restored. Any other failure, such as a
// store that does not answer, fails Fetch.
func Fetch(ctx context.Context, s cache.MountStore, a *Artifact, dir string) (*Artifact, int64, error) {
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(4)
	sizes := make([]int64, len(a.Layers))
	lost := make([]error, len(a.Layers))
	for i, l := range a.Layers {
		eg.Go(func() error {
			n, err := fetchLayer(ectx, s, a.Key, l, filepath.Join(dir, LayerFile(l)))
			sizes[i] = n
			if errors.Is(err, cache.ErrNotFound) || errors.Is(err, ErrContent) {
				lost[i], sizes[i] = err, 0
				return nil
			}
			return err
		})
	}
	if err := eg.Wait(); err != nil {
		return nil, 0, err
	}
	var total int64
	bad := map[digest.Digest]error{}
	for i, l := range a.Layers {
		total += sizes[i]
		if lost[i] != nil {
			bad[l.Digest] = lost[i]
		}
	}
	if len(bad) == 0 {
		return a, total, nil
	}
	out := &Artifact{Key: a.Key, Replaced: a.Replaced, Invalid: slices.Clone(a.Invalid)}
	for _, h := range a.Heads {
		layers := a.layersOf[h]
		if i := slices.IndexFunc(layers, func(l Layer) bool { return bad[l.Digest] != nil }); i >= 0 {
			out.Invalid = append(out.Invalid, HeadError{Name: h, Err: bad[layers[i].Digest]})
			continue
		}
		out.merge(h, layers)
	}
	return out, total, nil
}

func fetchLayer(ctx context.Context, s cache.MountStore, key string, l Layer, path string) (int64, error) {
	if f, err := os.Open(path); err == nil {
		_, err = io.Copy(io.Discard, verified(f, l.Descriptor))
		f.Close()
		if err == nil {
			return 0, nil
		}
	}
	rc, err := s.ReadBlob(ctx, key, l.Descriptor)
	if err != nil {
		return 0, fmt.Errorf("reading layer %s: %w", l.Digest, err)
	}
	defer rc.Close()
	tmp := path + ".part"
	f, err := os.Create(tmp)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, verified(rc, l.Descriptor))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return n, fmt.Errorf("reading layer %s: %w", l.Digest, err)
	}
	return n, nil
}

// Save is what a save adds to an artifact.
type Save struct {
	// Layer is the new layer; a zero Digest when the cache holds nothing
	// the artifact lacks.
	Layer Layer
	// Content reads the new layer's content.
	Content io.Reader
	// Full says that Layer holds the whole cache: the new head holds it
	// alone instead of adding it to the artifact's layers.
	Full bool
}

// Committed is what Commit did.
type Committed struct {
	// Name is the new head's name, "" when nothing was committed.
	Name string
	// Layers is how many layers the new head holds.
	Layers int
	// Concurrent are the heads that other saves committed since base was
	// read: the next restore merges them with this one.
	Concurrent []string
	// Uploaded is how many bytes of layer were written to the store: 0 when
	// the store held the layer already.
	Uploaded int64
	// Cleanup is why replaced heads could not be deleted, nil when they
	// were (or a store that can't delete heads kept them).
	Cleanup error
}

// Commit saves sv on top of base, the artifact of its key as it was
// restored (or an empty Artifact with the key when nothing was restored):
// it writes the new layer, then a new head that holds base's layers and the
// new one and replaces base's heads, then deletes the heads it replaces.
// Heads that other saves committed meanwhile are kept, and listed in
// Committed.Concurrent. When sv has no layer and base merges at most one
// head, there is nothing to commit. A failure before the head is committed
// leaves the store's heads as they were.
func Commit(ctx context.Context, s cache.MountStore, base *Artifact, sv Save, now time.Time) (*Committed, error) {
	key := base.Key
	c := &Committed{}
	hasLayer := sv.Layer.Digest != ""
	if !hasLayer && len(base.Heads) <= 1 {
		return c, nil
	}
	layers := slices.Clone(base.Layers)
	if sv.Full {
		layers = nil
	}
	if hasLayer {
		sv.Layer.MediaType = LayerType
		if err := checkLayer(sv.Layer.Descriptor); err != nil {
			return c, err
		}
		cr := &countingReader{r: verified(sv.Content, sv.Layer.Descriptor)}
		if err := s.WriteBlob(ctx, key, sv.Layer.Descriptor, cr); err != nil {
			return c, fmt.Errorf("writing layer %s: %w", sv.Layer.Digest, err)
		}
		c.Uploaded = cr.n
		if !slices.ContainsFunc(layers, func(l Layer) bool { return l.Digest == sv.Layer.Digest }) {
			layers = append(layers, sv.Layer)
		}
	}
	if len(layers) == 0 {
		return c, nil
	}
	if err := s.WriteBlob(ctx, key, emptyConfig, bytes.NewReader(emptyConfig.Data)); err != nil {
		return c, fmt.Errorf("writing the config blob: %w", err)
	}
	replaces := append(slices.Clone(base.Heads), base.Replaced...)
	m, err := manifest(layers, replaces, now)
	if err != nil {
		return c, err
	}
	name := NewHeadName(now)
	if err := s.CommitHead(ctx, key, name, m); err != nil {
		return c, fmt.Errorf("committing head %s: %w", name, err)
	}
	c.Name, c.Layers = name, len(layers)
	if now, err := s.Heads(ctx, key); err == nil {
		known := map[string]bool{name: true}
		for _, n := range replaces {
			known[n] = true
		}
		for _, h := range base.Invalid {
			known[h.Name] = true
		}
		for _, n := range now {
			if !known[n] && cache.ValidHeadName(n) {
				c.Concurrent = append(c.Concurrent, n)
			}
		}
		slices.Sort(c.Concurrent)
	}
	for _, n := range replaces {
		if err := s.DeleteHead(ctx, key, n); err != nil {
			if !errors.Is(err, errors.ErrUnsupported) {
				c.Cleanup = err
			}
			break
		}
	}
	return c, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
