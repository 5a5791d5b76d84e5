package build

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/moby/buildkit/client/llb"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/larder-build/larder/internal/persist"
)

// saved is what the helper's save writes to layer.json.
type saved struct {
	Version    int           `json:"version"`
	Digest     digest.Digest `json:"digest"`
	Size       int64         `json:"size"`
	Files      int64         `json:"files"`
	Bytes      int64         `json:"bytes"`
	CacheFiles int64         `json:"cacheFiles"`
	CacheBytes int64         `json:"cacheBytes"`
}

// saveIn saves, in the session of the user's solve and after it, what each
// needed cache gained: the helper packs the files that are not in the
// artifact as it was restored into a new layer, which is read from the
// builder and committed to the store.
func (ps *persistence) saveIn(ctx context.Context, gc gateway.Client) error {
	if ps.helper == nil {
		return nil
	}
	eg, ectx := errgroup.WithContext(ctx)
	for _, u := range ps.uses {
		if !u.needed || u.artifact == nil {
			continue
		}
		eg.Go(func() error {
			start := time.Now()
			err := ps.save(ectx, gc, u, len(u.artifact.Layers) >= persist.MaxLayers)
			u.report.ExportTime = time.Since(start)
			if err != nil {
				return ps.fail(u, "saving to "+u.report.Artifact, err)
			}
			return nil
		})
	}
	return eg.Wait()
}

// save packs u's cache, whole when full, and commits what it gained.
func (ps *persistence) save(ctx context.Context, gc gateway.Client, u *cacheUse, full bool) error {
	args := []string{"save", "-cache", "/cache", "-out", "/out"}
	var extra []llb.RunOption
	if u.index != "" && !full {
		args = append(args, "-index", "/base/index")
		base := llb.Local(localName("index", ps.useIndex(u)), llb.WithCustomNamef("[persist] index of %s", u.id))
		extra = append(extra, llb.AddMount("/base", base, llb.Readonly))
	}
	if full {
		args = append(args, "-full")
	}
	if len(u.leave) > 0 {
		args = append(args, "-leave", strings.Join(u.leave, ","))
	}
	// A save must run each time, never come from cache: a nonce makes it
	// new. (llb.IgnoreCache would give the step new, empty cache mounts.)
	extra = append(extra, llb.AddEnv("LARDER_SAVE", fmt.Sprint(time.Now().UnixNano())))
	ex, err := ps.run(u, "save", args, extra...)
	if err != nil {
		return err
	}
	r, err := ps.solveState(ctx, gc, ex.AddMount("/out", llb.Scratch()))
	if err != nil {
		return err
	}
	ref, err := r.SingleRef()
	if err != nil {
		return err
	}
	b, err := ref.ReadFile(ctx, gateway.ReadRequest{Filename: "layer.json"})
	if err != nil {
		return err
	}
	var s saved
	if err := json.Unmarshal(b, &s); err != nil || s.Version != 1 {
		return fmt.Errorf("the helper's layer.json: %q: %v", b, err)
	}
	base := u.artifact
	if !full && s.Files > 0 && len(base.Layers) > 0 && base.Bytes()+s.Bytes > 2*s.CacheBytes {
		// More than half of what the artifact would hold is stale:
		// files changed or deleted since. Write the whole cache instead.
		return ps.save(ctx, gc, u, true)
	}
	sv := persist.Save{Full: full}
	if s.Files > 0 {
		sv.Layer = persist.Layer{Descriptor: ocispecs.Descriptor{Digest: s.Digest, Size: s.Size}, Files: s.Files, Bytes: s.Bytes}
		sv.Content = &refReader{ctx: ctx, ref: ref, name: "layer.tar.gz", size: s.Size}
	}
	c, err := persist.Commit(ctx, ps.store, base, sv, time.Now())
	if err != nil {
		return err
	}
	m := u.report
	switch {
	case s.Files == 0 && s.CacheFiles == 0 && !u.restored:
		m.Notes = append(m.Notes, "the cache is empty: nothing saved")
	case s.Files == 0 && c.Name == "":
		m.Notes = append(m.Notes, "unchanged since it was restored: nothing saved")
	case s.Files == 0:
		m.Notes = append(m.Notes, fmt.Sprintf("unchanged since it was restored; its %d heads merged into one", len(base.Heads)))
	default:
		m.Exported, m.ExportedBytes, m.Compacted = true, c.Uploaded, full
		m.SavedFiles, m.SavedBytes = s.Files, s.Bytes
		if full && len(base.Layers) > 0 {
			m.Notes = append(m.Notes, fmt.Sprintf("compacted: one layer of the whole cache replaces %d", len(base.Layers)))
		}
	}
	if len(c.Concurrent) > 0 {
		m.ConcurrentSaves = len(c.Concurrent)
		m.Notes = append(m.Notes, fmt.Sprintf("saved beside %d heads that other builds committed since the restore: the next restore merges them", len(c.Concurrent)))
	}
	if c.Cleanup != nil {
		m.Notes = append(m.Notes, "the heads it replaces stay in the store: "+c.Cleanup.Error())
	}
	return nil
}

// useIndex returns the index of u among the caches.
func (ps *persistence) useIndex(u *cacheUse) int { return slices.Index(ps.uses, u) }

// refReader reads the file name of ref, of size bytes, from the builder a
// few megabytes at a time.
type refReader struct {
	ctx  context.Context
	ref  gateway.Reference
	name string
	size int64
	off  int64
	buf  []byte
}

const refChunk = 4 << 20

func (r *refReader) Read(p []byte) (int, error) {
	if len(r.buf) == 0 {
		if r.off >= r.size {
			return 0, io.EOF
		}
		n := min(r.size-r.off, refChunk)
		b, err := r.ref.ReadFile(r.ctx, gateway.ReadRequest{Filename: r.name, Range: &gateway.FileRange{Offset: int(r.off), Length: int(n)}})
		if err != nil {
			return 0, err
		}
		if len(b) == 0 {
			return 0, io.ErrUnexpectedEOF
		}
		r.off += int64(len(b))
		r.buf = b
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}
