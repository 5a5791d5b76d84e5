package build

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	"golang.org/x/sync/errgroup"

	"github.com/larder-build/larder/internal/persist"
)

// restore reads each cache's artifact, fetches its layers, and fills the
// cache from them in a session of its own, whose statuses the solve's
// displays show. It runs beside the probe, which may call it off by
// cancelling ctx: a cache it had begun to fill keeps the whole files it
// got, which is all a cache promises. so is the solve's session, whose
// credentials, secrets and local directories a cache's own input may need.
func (ps *persistence) restore(ctx context.Context, c *client.Client, sv *platformSolve, so client.SolveOpt) error {
	start := time.Now()
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(4)
	for i, u := range ps.uses {
		eg.Go(func() error { return ps.read(ectx, u, filepath.Join(ps.tmp, localName("layers", i)), start) })
	}
	if err := eg.Wait(); err != nil {
		return err
	}
	locals, err := ps.locals("layers")
	if err != nil || ctx.Err() != nil || len(locals) == 1 {
		return err // nothing to restore
	}
	so.LocalMounts = mergeLocals(so.LocalMounts, locals)
	statusCh := make(chan *client.SolveStatus)
	done := ps.rec.consume(statusCh, sv.display)
	_, err = c.Build(ctx, so, "", func(ctx context.Context, gc gateway.Client) (*gateway.Result, error) {
		def, err := sv.stage.state(newMarshalEnv(ctx, gc, sv.platform)).Marshal(ctx, llb.Platform(sv.platform), llb.LocalUniqueID(sv.localID))
		if err != nil {
			return nil, err
		}
		if err := ps.adopt(def); err != nil {
			return nil, err
		}
		eg, ectx := errgroup.WithContext(ctx)
		for i, u := range ps.uses {
			if u.layers != "" {
				eg.Go(func() error { return ps.restoreOne(ectx, gc, i, u) })
			}
		}
		return nil, eg.Wait()
	}, statusCh)
	<-done
	return err
}

// restoreOne fills u's cache from its fetched layers, and keeps the index
// of the artifact in the directory u.index.
func (ps *persistence) restoreOne(ctx context.Context, gc gateway.Client, i int, u *cacheUse) error {
	start := time.Now()
	args := []string{"restore", "-cache", "/cache", "-index", "/out/index"}
	for _, l := range u.artifact.Layers {
		args = append(args, "/layers/"+persist.LayerFile(l))
	}
	layers := llb.Local(localName("layers", i), llb.SharedKeyHint("larder-layers-"+u.key), llb.WithCustomNamef("[persist] layers of %s", u.id))
	ex, err := ps.run(u, "restore", args, llb.AddMount("/layers", layers, llb.Readonly))
	var index []byte
	if err == nil {
		var r *gateway.Result
		if r, err = ps.solveState(ctx, gc, ex.AddMount("/out", llb.Scratch())); err == nil {
			index, err = readFile(ctx, r, "index")
		}
	}
	if err == nil {
		u.index = filepath.Join(ps.tmp, localName("index", i))
		if err = os.MkdirAll(u.index, 0o700); err == nil {
			err = os.WriteFile(filepath.Join(u.index, "index"), index, 0o600)
		}
	}
	if err != nil {
		u.artifact, u.index = &persist.Artifact{Key: u.key}, "" // replace nothing
		if ctx.Err() != nil {
			return nil // called off
		}
		ps.note(u, "restoring", err)
		return nil
	}
	u.restored = true
	u.report.Restored = true
	u.report.RestoreTime += time.Since(start)
	return nil
}

// readFile reads the file name of r's single result, a few megabytes at a
// time: one ReadFile fails beyond BuildKit's 16 MiB message limit, which
// the index of a cache of a few hundred thousand files passes.
func readFile(ctx context.Context, r *gateway.Result, name string) ([]byte, error) {
	ref, err := r.SingleRef()
	if err != nil {
		return nil, err
	}
	st, err := ref.StatFile(ctx, gateway.StatRequest{Path: name})
	if err != nil {
		return nil, err
	}
	return io.ReadAll(&refReader{ctx: ctx, ref: ref, name: name, size: st.Size})
}

// mergeLocals returns a new map of the local directories of a and b.
func mergeLocals[V any](a, b map[string]V) map[string]V {
	m := make(map[string]V, len(a)+len(b))
	for k, v := range a {
		m[k] = v
	}
	for k, v := range b {
		m[k] = v
	}
	return m
}

// read reads u's artifact and fetches its layers to dir.
func (ps *persistence) read(ctx context.Context, u *cacheUse, dir string, start time.Time) error {
	a, err := persist.Read(ctx, ps.store, u.key)
	if err != nil {
		ps.note(u, "reading the store", err)
		return nil
	}
	for _, h := range a.Invalid {
		ps.note(u, "head "+h.Name+" left out", h.Err)
	}
	if len(a.Heads) > 1 {
		u.report.MergedHeads = len(a.Heads)
		u.report.Notes = append(u.report.Notes, fmt.Sprintf("merged %d heads that concurrent saves left", len(a.Heads)))
	}
	if len(a.Layers) == 0 {
		if len(a.Invalid) == 0 {
			u.report.Notes = append(u.report.Notes, "no artifact yet: the cache starts empty")
		}
		u.artifact = a
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	fetched, n, err := persist.Fetch(ctx, ps.store, a, dir)
	if err != nil {
		// Nothing of the artifact is restored, and the save must not
		// replace what the store holds.
		u.artifact = &persist.Artifact{Key: u.key}
		ps.note(u, "fetching the artifact", err)
		return nil
	}
	for _, h := range fetched.Invalid[len(a.Invalid):] {
		ps.note(u, "head "+h.Name+" left out", h.Err)
	}
	a = fetched
	if len(a.Layers) == 0 {
		u.artifact = a // every head left out: the cache starts empty
		return nil
	}
	u.artifact, u.layers = a, dir
	u.report.RestoredBytes, u.report.RestoredLayers = n, len(a.Layers)
	u.report.RestoreTime = time.Since(start)
	return nil
}
