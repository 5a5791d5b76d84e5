package build

import (
	"errors"
	"strings"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/errdefs"
	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"
)

// Persisted cache mounts are restored only for the steps that will run: a
// restore costs seconds, and on an unchanged graph every step comes from
// cache. BuildKit has no call that says whether a step is in its cache, so
// the graph is probed: solved once, in a session of its own, with every
// step that mounts a persisted cache poisoned so that it can't run.
//
// The poison is a cache mount sharing mode BuildKit does not know. An exec
// op's cache key leaves out its cache mounts' ids and sharing modes
// (solver/llbsolver/ops/exec.go, CacheMap), so a poisoned step has the same
// cache key as the real one, and comes from cache exactly when the real
// one would. BuildKit reads the sharing mode only when it mounts the cache
// to run the step, so a poisoned step that would run fails before its
// command starts, with "invalid cache sharing option". The steps before it
// run for real and stay in the builder's cache for the real solve. The
// probe gets a session of its own because, within one session, BuildKit
// merges the real step into the failed poisoned one (same cache key) and
// fails it too.
//
// The exception: a cache mount whose id is its target and whose sharing is
// shared (mounts.Cache's defaults, and a Dockerfile's) keeps its id and
// sharing in the cache key. Poisoning it changes the key, so such a step is
// always counted as one that runs.

// poisonSharing is the sharing mode that no BuildKit knows.
const poisonSharing = pb.CacheSharingOpt(1 << 20)

// probe is a definition with its poisoned steps.
type probe struct {
	def *llb.Definition
	// poisoned maps each poisoned step's digest in def to its digest in
	// the graph.
	poisoned map[digest.Digest]digest.Digest
	// changed are the digests of def that the graph does not have: the
	// poisoned steps and every step after them.
	changed map[digest.Digest]bool
}

// poison returns def with the cache mounts of the exec ops in steps given
// the poison sharing mode, and the ops after them pointed at the poisoned
// ones. def's ops come in the order llb marshals them: every op after its
// inputs.
func poison(def *llb.Definition, steps map[digest.Digest]bool) (*probe, error) {
	in := def.ToPB()
	out := &probe{poisoned: map[digest.Digest]digest.Digest{}, changed: map[digest.Digest]bool{}}
	renamed := map[string]string{}
	var ops [][]byte
	metas := map[digest.Digest]llb.OpMetadata{}
	for _, dt := range in.Def {
		old := digest.FromBytes(dt)
		var op pb.Op
		if err := op.UnmarshalVT(dt); err != nil {
			return nil, err
		}
		touched := false
		for _, inp := range op.Inputs {
			if n, ok := renamed[inp.Digest]; ok {
				inp.Digest, touched = n, true
			}
		}
		if ex := op.GetExec(); ex != nil && steps[old] {
			for _, m := range ex.Mounts {
				if m.MountType == pb.MountType_CACHE && m.CacheOpt != nil {
					m.CacheOpt.Sharing, touched = poisonSharing, true
				}
			}
		}
		if touched {
			b, err := op.MarshalVT()
			if err != nil {
				return nil, err
			}
			dt = b
		}
		d := digest.FromBytes(dt)
		if touched {
			renamed[old.String()] = d.String()
			out.changed[d] = true
			if steps[old] {
				out.poisoned[d] = old
			}
		}
		ops = append(ops, dt)
		if md, ok := def.Metadata[old]; ok {
			metas[d] = md
		}
	}
	out.def = &llb.Definition{Def: ops, Metadata: metas, Source: def.Source}
	return out, nil
}

// poisonedStep returns the graph's digest of the poisoned step that err
// says could not run, and false when err is another failure.
func (p *probe) poisonedStep(err error) (digest.Digest, bool) {
	if err == nil || !strings.Contains(err.Error(), "invalid cache sharing option") {
		return "", false
	}
	var ve *errdefs.VertexError
	if !errors.As(err, &ve) {
		return "", false
	}
	d, ok := p.poisoned[digest.Digest(ve.Digest)]
	return d, ok
}
