package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/containerd/platforms"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	"github.com/moby/buildkit/solver/errdefs"
	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tonistiigi/fsutil"
	"golang.org/x/sync/errgroup"

	"github.com/larder-build/larder/cache"
	"github.com/larder-build/larder/internal/persist"
)

// A solve with persisted cache mounts runs in two client sessions on one
// builder (see persist_probe.go for why two):
//
//  1. The probe: the graph is solved with its cache-mounting steps
//     poisoned, which says which of them will run. Only the caches of
//     those are read from the store, and their layers fetched to the
//     client, checked against their digests.
//  2. The solve: the helper fills each of those caches from its layers,
//     the graph is solved as the user wrote it, and the helper packs what
//     each cache gained into a new layer, which the client reads from the
//     builder and commits to the store.

// cacheUse is one persisted cache mount of a graph.
type cacheUse struct {
	id     string
	mount  *pb.Mount // as the first step that uses it mounts it
	input  *pb.Input // the mount's own input (what gives it its owner), nil for none
	steps  []digest.Digest
	key    string
	leave  []string // files in the cache, relative to it, left out of its artifact
	report *MountReport

	needed   bool              // a step that mounts it runs, or could not be proven cached
	artifact *persist.Artifact // what the store holds; nil when it could not be read
	layers   string            // the directory its layers were fetched to, "" for none
	restored bool
	base     llb.State // the restore's output, which holds the artifact's index
}

// persistence carries the persisted cache mounts of one platform's solve.
type persistence struct {
	opts     *persistOptions
	store    cache.MountStore // with the solve's keychain
	ns       string
	platform ocispecs.Platform
	regen    map[string][]string // cache id: files its tool rebuilds on its own
	helper   *helper
	tmp      string // where layers are fetched to
	uses     []*cacheUse
	def      *llb.Definition // the graph as the solve marshals it
	rec      *recorder       // the solve's, whose logs hold the helper's
}

// newPersistence returns the persistence of sv, nil when its graph mounts
// no cache.
func newPersistence(sv *platformSolve) (*persistence, error) {
	uses, err := findUses(sv.plan.def)
	if err != nil || len(uses) == 0 {
		return nil, err
	}
	o := sv.opts
	ns := o.persist.namespace
	if ns == "" {
		ns = o.key
	}
	if ns == "" {
		ns = "default"
	}
	return &persistence{
		opts:     o.persist,
		store:    o.persist.store.WithKeychain(o.auth()),
		ns:       ns,
		platform: sv.platform,
		regen:    sv.plan.regenerable,
	}, nil
}

// findUses lists the cache mounts of def, each id once, in the order the
// graph first mounts them, with every exec op that mounts them.
func findUses(def *llb.Definition) ([]*cacheUse, error) {
	var uses []*cacheUse
	byID := map[string]*cacheUse{}
	for _, dt := range def.Def {
		var op pb.Op
		if err := op.UnmarshalVT(dt); err != nil {
			return nil, err
		}
		ex := op.GetExec()
		if ex == nil {
			continue
		}
		for _, m := range ex.Mounts {
			if m.MountType != pb.MountType_CACHE || m.CacheOpt == nil {
				continue
			}
			u := byID[m.CacheOpt.ID]
			if u == nil {
				u = &cacheUse{id: m.CacheOpt.ID, mount: m, report: &MountReport{ID: m.CacheOpt.ID, Target: m.Dest}}
				if m.Input >= 0 && int(m.Input) < len(op.Inputs) {
					u.input = op.Inputs[m.Input]
				}
				byID[u.id] = u
				uses = append(uses, u)
			}
			if d := digest.FromBytes(dt); !slices.Contains(u.steps, d) {
				u.steps = append(u.steps, d)
			}
		}
	}
	return uses, nil
}

// fail records err for u, and returns it in strict mode.
func (ps *persistence) fail(u *cacheUse, what string, err error) error {
	u.report.Notes = append(u.report.Notes, fmt.Sprintf("%s: %v", what, err))
	if ps.opts.strict {
		return fmt.Errorf("cache mount %q: %s: %w", u.id, what, err)
	}
	return nil
}

// failAll records err for every cache, and returns it in strict mode.
func (ps *persistence) failAll(what string, err error) error {
	for _, u := range ps.uses {
		if e := ps.fail(u, what, err); e != nil {
			return e
		}
	}
	return nil
}

// prepare probes the graph on c in a session of its own, then reads the
// artifacts of the caches that a running step needs and fetches their
// layers. so is the solve's session, without persistence's additions.
func (ps *persistence) prepare(ctx context.Context, c *client.Client, sv *platformSolve, so client.SolveOpt, rec *recorder) error {
	ps.rec = rec
	h, err := newHelper(ctx, c)
	if err != nil {
		uses, _ := findUses(sv.plan.def)
		ps.uses = uses
		return ps.failAll("starting the cache helper", err)
	}
	ps.helper = h
	statusCh := make(chan *client.SolveStatus)
	done := rec.consume(statusCh, sv.display)
	so.Exports, so.CacheExports = nil, nil
	_, err = c.Build(ctx, so, "", func(ctx context.Context, gc gateway.Client) (*gateway.Result, error) {
		def, err := sv.stage.state(newMarshalEnv(gc, sv.platform)).Marshal(ctx, llb.Platform(sv.platform), llb.LocalUniqueID(sv.localID))
		if err != nil {
			return nil, err
		}
		rec.expect(def)
		if ps.uses, err = findUses(def); err != nil {
			return nil, err
		}
		return nil, ps.probe(ctx, gc, def, so.CacheImports, rec)
	}, statusCh)
	<-done
	if err != nil {
		return fmt.Errorf("probing the graph for the steps that run: %w", err)
	}
	start := time.Now()
	ps.tmp, err = os.MkdirTemp("", "larder-layers-")
	if err != nil {
		return err
	}
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(4)
	for i, u := range ps.uses {
		u.key = cache.MountKey(ps.ns, u.id, platforms.Format(ps.platform))
		u.leave = ps.regen[u.id]
		u.report.Artifact = ps.store.String() + " " + u.key
		if !u.needed {
			u.report.Notes = append(u.report.Notes, "every step that mounts it came from cache: neither restored nor saved")
			continue
		}
		eg.Go(func() error { return ps.read(ectx, u, filepath.Join(ps.tmp, fmt.Sprint(i)), start) })
	}
	return eg.Wait()
}

// probe solves the poisoned graph and marks the caches that a running step
// needs.
func (ps *persistence) probe(ctx context.Context, gc gateway.Client, def *llb.Definition, imports []client.CacheOptionsEntry, rec *recorder) error {
	steps := map[digest.Digest]bool{}
	for _, u := range ps.uses {
		for _, s := range u.steps {
			steps[s] = true
		}
	}
	pr, err := poison(def, steps)
	if err != nil {
		return err
	}
	rec.hide(pr.changed)
	req := gateway.SolveRequest{Definition: pr.def.ToPB(), Evaluate: true}
	for _, ci := range imports {
		req.CacheImports = append(req.CacheImports, gateway.CacheOptionsEntry{Type: ci.Type, Attrs: ci.Attrs})
	}
	_, err = gc.Solve(ctx, req)
	if err == nil {
		return nil // every poisoned step came from cache, or was not needed
	}
	if ctx.Err() != nil {
		return err
	}
	// A poisoned step could not run, or something else failed. A cache
	// is needed unless every step that mounts it came from cache; the
	// solve reports the failure itself.
	cached := map[digest.Digest]bool{}
	for p, s := range pr.poisoned {
		if rec.cachedHidden(p) {
			cached[s] = true
		}
	}
	for _, u := range ps.uses {
		u.needed = slices.ContainsFunc(u.steps, func(s digest.Digest) bool { return !cached[s] })
	}
	return nil
}

// read reads u's artifact and fetches its layers to dir.
func (ps *persistence) read(ctx context.Context, u *cacheUse, dir string, start time.Time) error {
	a, err := persist.Read(ctx, ps.store, u.key)
	if err != nil {
		return ps.fail(u, "reading the store", err)
	}
	for _, h := range a.Invalid {
		if err := ps.fail(u, "head "+h.Name+" left out", h.Err); err != nil {
			return err
		}
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
	n, err := persist.Fetch(ctx, ps.store, a, dir)
	if err != nil {
		// Nothing of the artifact is restored, and the save must not
		// replace what the store holds.
		u.artifact = &persist.Artifact{Key: u.key}
		return ps.fail(u, "fetching the artifact", err)
	}
	u.artifact, u.layers = a, dir
	u.report.RestoredBytes, u.report.RestoredLayers = n, len(a.Layers)
	u.report.RestoreTime = time.Since(start)
	return nil
}

// locals returns the local directories the solve's session sends for
// persistence: the helper, and each cache's fetched layers.
func (ps *persistence) locals() (map[string]fsutil.FS, error) {
	m := map[string]fsutil.FS{}
	if ps.helper == nil {
		return m, nil
	}
	m[helperName] = ps.helper.fs
	for i, u := range ps.uses {
		if u.layers == "" {
			continue
		}
		fs, err := fsutil.NewFS(u.layers)
		if err != nil {
			return nil, err
		}
		m[layersName(i)] = fs
	}
	return m, nil
}

func layersName(i int) string { return fmt.Sprintf("larder-layers-%d", i) }

// close removes the fetched layers.
func (ps *persistence) close() {
	if ps.tmp != "" {
		os.RemoveAll(ps.tmp)
	}
}

// adopt takes def, the graph as the solve marshalled it: the caches'
// mounts and inputs are those of def.
func (ps *persistence) adopt(def *llb.Definition) error {
	uses, err := findUses(def)
	if err != nil {
		return err
	}
	for _, u := range ps.uses {
		i := slices.IndexFunc(uses, func(r *cacheUse) bool { return r.id == u.id })
		if i < 0 {
			return fmt.Errorf("cache mount %q is not in the graph the builder resolved", u.id)
		}
		u.mount, u.input = uses[i].mount, uses[i].input
	}
	ps.def = def
	return nil
}

// run returns the state of the helper running args on the builder's
// platform, with u's cache mounted at /cache as the graph mounts it.
func (ps *persistence) run(u *cacheUse, what string, args []string, extra ...llb.RunOption) (llb.ExecState, error) {
	src := llb.Scratch()
	if u.input != nil {
		var err error
		if src, err = inputState(ps.def, u.input); err != nil {
			return llb.ExecState{}, err
		}
	}
	mopts := []llb.MountOption{llb.AsPersistentCacheDir(u.mount.CacheOpt.ID, llb.CacheMountSharingMode(u.mount.CacheOpt.Sharing))}
	if u.mount.Selector != "" {
		mopts = append(mopts, llb.SourcePath(u.mount.Selector))
	}
	ropts := []llb.RunOption{
		llb.Args(append([]string{"/" + helperName}, args...)),
		llb.User("0:0"),
		llb.Dir("/"),
		llb.Network(llb.NetModeNone),
		llb.AddMount("/cache", src, mopts...),
		llb.WithCustomNamef("[persist] %s %s", what, u.id),
	}
	return ps.helper.root().Platform(ps.helper.platform).Run(append(ropts, extra...)...), nil
}

// inputState returns the state of the vertex in of def.
func inputState(def *llb.Definition, in *pb.Input) (llb.State, error) {
	term, err := (&pb.Op{Inputs: []*pb.Input{{Digest: in.Digest, Index: in.Index}}}).MarshalVT()
	if err != nil {
		return llb.State{}, err
	}
	d := def.ToPB()
	d.Def = append(d.Def[:len(d.Def):len(d.Def)], term)
	op, err := llb.NewDefinitionOp(d)
	if err != nil {
		return llb.State{}, err
	}
	return llb.NewState(op.Output()), nil
}

// solveState solves st, evaluated, on the helper's platform. When the
// helper fails, the error ends with the last thing it wrote.
func (ps *persistence) solveState(ctx context.Context, gc gateway.Client, st llb.State) (*gateway.Result, error) {
	def, err := st.Marshal(ctx, llb.Platform(ps.helper.platform))
	if err != nil {
		return nil, err
	}
	// Evaluate: a gateway solve is lazy, and nothing else uses the result.
	r, err := gc.Solve(ctx, gateway.SolveRequest{Definition: def.ToPB(), Evaluate: true})
	var ve *errdefs.VertexError
	if err != nil && errors.As(err, &ve) {
		if tail := ps.rec.tail(digest.Digest(ve.Digest), 1); len(tail) > 0 {
			err = fmt.Errorf("%w: %s", err, tail[0])
		}
	}
	return r, err
}

// restoreIn fills, in the session of the user's solve and before it, each
// needed cache from its fetched layers. Restoring, the user's steps and
// saving share one session because a cache mount that another session
// still holds is not waited for: BuildKit gives a shared mount a new,
// empty cache instead.
func (ps *persistence) restoreIn(ctx context.Context, gc gateway.Client, def *llb.Definition) error {
	if ps.helper == nil {
		return nil
	}
	if err := ps.adopt(def); err != nil {
		return err
	}
	eg, ectx := errgroup.WithContext(ctx)
	for i, u := range ps.uses {
		if u.layers == "" {
			continue
		}
		eg.Go(func() error {
			start := time.Now()
			args := []string{"restore", "-cache", "/cache", "-index", "/out/index"}
			for _, l := range u.artifact.Layers {
				args = append(args, "/layers/"+persist.LayerFile(l))
			}
			layers := llb.Local(layersName(i), llb.SharedKeyHint("larder-layers-"+u.key), llb.WithCustomNamef("[persist] layers of %s", u.id))
			ex, err := ps.run(u, "restore", args, llb.AddMount("/layers", layers, llb.Readonly))
			var out llb.State
			if err == nil {
				out = ex.AddMount("/out", llb.Scratch())
				_, err = ps.solveState(ectx, gc, out)
			}
			if err != nil {
				u.artifact = &persist.Artifact{Key: u.key} // replace nothing
				return ps.fail(u, "restoring", err)
			}
			u.restored, u.base = true, out
			u.report.Restored = true
			u.report.RestoreTime += time.Since(start)
			return nil
		})
	}
	return eg.Wait()
}

// reports returns what persistence did with each cache.
func (ps *persistence) reports() []MountReport {
	if ps == nil {
		return nil
	}
	out := make([]MountReport, len(ps.uses))
	for i, u := range ps.uses {
		out[i] = *u.report
		out[i].Notes = slices.Clone(u.report.Notes)
	}
	return out
}
