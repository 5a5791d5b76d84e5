package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/containerd/platforms"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	"github.com/moby/buildkit/solver/errdefs"
	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tonistiigi/fsutil"

	"github.com/larder-build/larder/cache"
	"github.com/larder-build/larder/internal/persist"
)

// A solve with persisted cache mounts runs in client sessions on one
// builder (see persist_probe.go for why the probe has a session of its
// own):
//
//  1. At once, two things side by side. The probe: the graph is solved
//     with its cache-mounting steps poisoned, which says which of them will
//     run. The restore: each cache's artifact is read from the store, its
//     layers fetched to the client and checked against their digests, and
//     in a session of its own the helper fills the cache from them, and
//     writes the artifact's index, which the client reads back. When the
//     probe finds that no step needs a cache, the restore is called off.
//  2. The solve: the graph as the user wrote it, then, for each cache a
//     running step needed, the helper packs what the cache gained since
//     the restore into a new layer, which the client reads from the
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
	index    string // the directory that holds the restored artifact's index, "" for none
	err      error  // the first thing that went wrong restoring it
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
	ps := &persistence{
		opts:     o.persist,
		store:    o.persist.store.WithKeychain(o.auth()),
		ns:       ns,
		platform: sv.platform,
		regen:    sv.plan.regenerable,
		uses:     uses,
	}
	for _, u := range uses {
		u.key = cache.MountKey(ns, u.id, platforms.Format(sv.platform))
		u.leave = ps.regen[u.id]
		u.report.Artifact = ps.store.String() + " " + u.key
	}
	return ps, nil
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

// note records err for u, which Strict turns into the solve's error if a
// running step needs u.
func (ps *persistence) note(u *cacheUse, what string, err error) {
	u.report.Notes = append(u.report.Notes, fmt.Sprintf("%s: %v", what, err))
	if u.err == nil {
		u.err = fmt.Errorf("cache mount %q: %s: %w", u.id, what, err)
	}
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

// prepare probes the graph on c and, at the same time, restores its
// caches, each in a session of its own; see the top of this file. so is
// the solve's session, without persistence's additions.
func (ps *persistence) prepare(ctx context.Context, c *client.Client, sv *platformSolve, so client.SolveOpt, rec *recorder) error {
	ps.rec = rec
	h, err := newHelper(ctx, c)
	if err != nil {
		return ps.failAll("starting the cache helper", err)
	}
	ps.helper = h
	if ps.tmp, err = os.MkdirTemp("", "larder-persist-"); err != nil {
		return err
	}
	so.Exports, so.CacheExports = nil, nil
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	restored := make(chan error, 1)
	go func() { restored <- ps.restore(rctx, c, sv, so) }()

	needed, perr := ps.probeSession(ctx, c, sv, so, rec)
	if perr != nil || len(needed) == 0 {
		cancel() // nothing runs that needs a cache, or the solve fails anyway
	}
	rerr := <-restored
	if perr != nil {
		return fmt.Errorf("probing the graph for the steps that run: %w", perr)
	}
	for _, u := range ps.uses {
		u.needed = needed[u.id]
		if !u.needed {
			*u.report = MountReport{ID: u.report.ID, Target: u.report.Target, Artifact: u.report.Artifact,
				Notes: []string{"every step that mounts it came from cache: not restored for it, and not saved"}}
			u.restored = false
		}
	}
	if rerr != nil && len(needed) > 0 {
		return rerr
	}
	for _, u := range ps.uses {
		if u.needed && u.err != nil && ps.opts.strict {
			return u.err
		}
	}
	return nil
}

// probeSession probes the graph in a session of its own, and returns the
// ids of the caches that a running step needs.
func (ps *persistence) probeSession(ctx context.Context, c *client.Client, sv *platformSolve, so client.SolveOpt, rec *recorder) (map[string]bool, error) {
	statusCh := make(chan *client.SolveStatus)
	done := rec.consume(statusCh, sv.display)
	var needed map[string]bool
	_, err := c.Build(ctx, so, "", func(ctx context.Context, gc gateway.Client) (*gateway.Result, error) {
		def, err := sv.stage.state(newMarshalEnv(ctx, gc, sv.platform)).Marshal(ctx, llb.Platform(sv.platform), llb.LocalUniqueID(sv.localID))
		if err != nil {
			return nil, err
		}
		rec.expect(def)
		needed, err = ps.probe(ctx, gc, def, so.CacheImports, rec)
		return nil, err
	}, statusCh)
	<-done
	return needed, err
}

// probe solves the poisoned graph def and returns the ids of the caches
// that a running step needs.
func (ps *persistence) probe(ctx context.Context, gc gateway.Client, def *llb.Definition, imports []client.CacheOptionsEntry, rec *recorder) (map[string]bool, error) {
	uses, err := findUses(def)
	if err != nil {
		return nil, err
	}
	steps := map[digest.Digest]bool{}
	for _, u := range uses {
		for _, s := range u.steps {
			steps[s] = true
		}
	}
	pr, err := poison(def, steps)
	if err != nil {
		return nil, err
	}
	rec.hide(pr.changed)
	req := gateway.SolveRequest{Definition: pr.def.ToPB(), Evaluate: true}
	for _, ci := range imports {
		req.CacheImports = append(req.CacheImports, gateway.CacheOptionsEntry{Type: ci.Type, Attrs: ci.Attrs})
	}
	_, err = gc.Solve(ctx, req)
	if err == nil {
		return nil, nil // every poisoned step came from cache, or was not needed
	}
	if ctx.Err() != nil {
		return nil, err
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
	needed := map[string]bool{}
	for _, u := range uses {
		if slices.ContainsFunc(u.steps, func(s digest.Digest) bool { return !cached[s] }) {
			needed[u.id] = true
		}
	}
	return needed, nil
}

// locals returns the local directories a session sends for persistence:
// the helper, and, per cache, the fetched layers (for the restore) or the
// restored artifact's index (for the save).
func (ps *persistence) locals(what string) (map[string]fsutil.FS, error) {
	m := map[string]fsutil.FS{}
	if ps.helper == nil {
		return m, nil
	}
	m[helperName] = ps.helper.fs
	for i, u := range ps.uses {
		dir := u.layers
		if what == "index" {
			dir = u.index
		}
		if dir == "" {
			continue
		}
		fs, err := fsutil.NewFS(dir)
		if err != nil {
			return nil, err
		}
		m[localName(what, i)] = fs
	}
	return m, nil
}

// localName names the local directory of what ("layers" or "index") for
// the cache i.
func localName(what string, i int) string { return fmt.Sprintf("larder-%s-%d", what, i) }

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
