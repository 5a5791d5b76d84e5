package build

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/containerd/platforms"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	"github.com/moby/buildkit/solver/pb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tonistiigi/fsutil"
)

// cacheUse is one cache mount of a graph, as the first step that uses it
// mounts it.
type cacheUse struct {
	mount   *pb.Mount
	input   *pb.Input // the cache mount's own input, nil for none
	rootfs  *pb.Input // the step's root filesystem
	report  *MountReport
	key     string
	leave   []string // files in the cache, relative to it, left out of its artifact
	content string   // content digest of what was restored or last saved, "" for none
}

const (
	persistSeed  = "/.larder-seed"
	persistOut   = "/.larder-out"
	persistLabel = "dev.larder.cache-mount.sha256"  // of cache.tar, checked when restoring
	contentLabel = "dev.larder.cache-mount.content" // of the cache's contents, to tell a change
	sizeLabel    = "dev.larder.cache-mount.size"    // of cache.tar, in bytes
	persistPath  = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// identity names a cache mount as BuildKit tells caches apart: by id, and
// by the source (and path in it) that an owner or mode is made from.
func (u *cacheUse) identity() string {
	k := u.mount.CacheOpt.ID + "\x00" + u.mount.Selector
	if u.input != nil {
		k += "\x00" + u.input.Digest
	}
	return k
}

// findCacheMounts lists the cache mounts of def, each once, in the order
// the graph first uses them.
func findCacheMounts(def *llb.Definition) ([]*cacheUse, error) {
	var uses []*cacheUse
	seen := map[string]bool{}
	for _, dt := range def.Def {
		var op pb.Op
		if err := op.UnmarshalVT(dt); err != nil {
			return nil, err
		}
		ex := op.GetExec()
		if ex == nil {
			continue
		}
		var rootfs *pb.Input
		for _, m := range ex.Mounts {
			if m.Dest == "/" && m.Input >= 0 && int(m.Input) < len(op.Inputs) {
				rootfs = op.Inputs[m.Input]
			}
		}
		for _, m := range ex.Mounts {
			if m.MountType != pb.MountType_CACHE || m.CacheOpt == nil || rootfs == nil {
				continue
			}
			u := &cacheUse{mount: m, rootfs: rootfs, report: &MountReport{ID: m.CacheOpt.ID, Target: m.Dest}}
			if m.Input >= 0 && int(m.Input) < len(op.Inputs) {
				u.input = op.Inputs[m.Input]
			}
			if seen[u.identity()] {
				continue
			}
			seen[u.identity()] = true
			uses = append(uses, u)
		}
	}
	return uses, nil
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

// run returns the state of a step in the cache's first step's root
// filesystem, with the cache mounted as that step mounts it. what names the
// step in progress ("restore", "save").
func (u *cacheUse) run(def *llb.Definition, what, script string, extra ...llb.RunOption) (llb.ExecState, error) {
	root, err := inputState(def, u.rootfs)
	if err != nil {
		return llb.ExecState{}, err
	}
	src := llb.Scratch()
	if u.input != nil {
		if src, err = inputState(def, u.input); err != nil {
			return llb.ExecState{}, err
		}
	}
	mopts := []llb.MountOption{llb.AsPersistentCacheDir(u.mount.CacheOpt.ID, llb.CacheMountSharingMode(u.mount.CacheOpt.Sharing))}
	if u.mount.Selector != "" {
		mopts = append(mopts, llb.SourcePath(u.mount.Selector))
	}
	ropts := []llb.RunOption{
		llb.Args([]string{"/bin/sh", "-c", script}),
		llb.AddEnv("PATH", strings.TrimPrefix(persistPath, "PATH=")),
		llb.User("0:0"),
		llb.Dir("/"),
		llb.AddMount(u.mount.Dest, src, mopts...),
		llb.WithCustomNamef("[persist] %s %s", what, u.report.ID),
	}
	return root.Run(append(ropts, extra...)...), nil
}

// persistence carries the persisted caches of one platform's solve.
type persistence struct {
	opts     *persistOptions
	keychain authn.Keychain
	ns       string
	stage    Stage
	platform ocispecs.Platform
	localID  string
	uses     []*cacheUse
	// def is the graph as the user's solve marshalled it: restoring and
	// saving reuse its vertices.
	def   *llb.Definition
	seeds map[*cacheUse]seeded
	packs map[*cacheUse]packed
	nonce string // makes this save's packing steps new
}

// newPersistence finds the cache mounts in def, s marshalled for p without
// a builder: cache ids do not depend on image configurations, so it tells
// which artifacts to send before the session starts.
func newPersistence(sv *platformSolve) (*persistence, error) {
	o, s, p, m, localID := sv.opts, sv.stage, sv.platform, sv.plan, sv.localID
	uses, err := findCacheMounts(m.def)
	if err != nil {
		return nil, err
	}
	ns := o.persist.namespace
	if ns == "" {
		ns = o.key
	}
	if ns == "" {
		ns = "default"
	}
	ps := &persistence{opts: o.persist, keychain: o.auth(), ns: ns, stage: s, platform: p, localID: localID, uses: uses}
	for _, u := range uses {
		u.key = o.persist.store.Key(ns, u.mount.CacheOpt.ID, platforms.Format(p))
		u.leave = m.regenerable[u.mount.CacheOpt.ID]
		if o.persist.store.IsRegistry() {
			u.report.Artifact = o.persist.store.Ref(u.key)
		} else {
			u.report.Artifact = o.persist.store.Dir(u.key)
		}
	}
	return ps, nil
}

// fail records err for u, and returns it in strict mode.
func (ps *persistence) fail(u *cacheUse, what string, err error) error {
	u.report.Notes = append(u.report.Notes, fmt.Sprintf("%s: %v", what, err))
	if ps.opts.strict {
		return fmt.Errorf("cache mount %q: %s: %w", u.report.ID, what, err)
	}
	return nil
}

// seeded is an artifact found for a cache, to restore it from.
type seeded struct {
	st           llb.State
	sum, content string
	size         int64
	lookup       time.Duration // finding the artifact
}

// prepare finds each cache's artifact, and returns the local directories
// the session must send for them.
func (ps *persistence) prepare(ctx context.Context) (map[string]fsutil.FS, error) {
	ps.seeds = map[*cacheUse]seeded{}
	locals := map[string]fsutil.FS{}
	for _, u := range ps.uses {
		start := time.Now()
		st, sum, content, size, mounts, err := ps.seed(ctx, u)
		if err != nil {
			if err := ps.fail(u, "restoring", err); err != nil {
				return nil, err
			}
			continue
		}
		if sum == "" {
			u.report.Notes = append(u.report.Notes, "no artifact yet: the cache starts empty")
			continue
		}
		maps.Copy(locals, mounts)
		ps.seeds[u] = seeded{st, sum, content, size, time.Since(start)}
	}
	return locals, nil
}

// restoreIn fills each cache that has an artifact, in the session of the
// user's solve, before it: def is the graph as that solve marshalled it.
// Restoring, the user's steps and packing share one session because a
// cache mount that another session still holds is not waited for: BuildKit
// gives a shared mount a new, empty cache instead.
func (ps *persistence) restoreIn(ctx context.Context, gc gateway.Client, def *llb.Definition) error {
	if err := ps.adopt(def); err != nil {
		return err
	}
	for _, u := range ps.uses {
		sd, ok := ps.seeds[u]
		if !ok {
			continue
		}
		script := fmt.Sprintf(`set -e; got=$(sha256sum %[1]s/cache.tar | cut -d' ' -f1); `+
			`[ "$got" = %[2]s ] || { echo "cache.tar has checksum $got, want %[2]s" >&2; exit 1; }; tar -xf %[1]s/cache.tar -C %[3]s`,
			persistSeed, sd.sum, shellQuote(u.mount.Dest))
		start := time.Now()
		if err := ps.solveIn(ctx, gc, u, script, nil, llb.AddMount(persistSeed, sd.st, llb.Readonly)); err != nil {
			if err := ps.fail(u, "restoring "+u.report.Artifact, err); err != nil {
				return err
			}
			continue
		}
		u.content = sd.content
		u.report.Restored, u.report.RestoredBytes, u.report.RestoreTime = true, sd.size, sd.lookup+time.Since(start)
	}
	return nil
}

// adopt takes the resolved definition def: the cache mounts found in it,
// with their root filesystems as the user's solve has them, replace the
// unresolved ones.
func (ps *persistence) adopt(def *llb.Definition) error {
	resolved, err := findCacheMounts(def)
	if err != nil {
		return err
	}
	byIdentity := map[string]*cacheUse{}
	for _, r := range resolved {
		byIdentity[r.identity()] = r
	}
	for _, u := range ps.uses {
		r, ok := byIdentity[u.identity()]
		if !ok {
			return fmt.Errorf("cache mount %q is not in the resolved graph", u.report.ID)
		}
		u.mount, u.input, u.rootfs = r.mount, r.input, r.rootfs
	}
	ps.def = def
	return nil
}

// solveIn solves, in a session, a step that runs script with u's cache
// mounted, and passes its result to then.
func (ps *persistence) solveIn(ctx context.Context, gc gateway.Client, u *cacheUse, script string, then func(*gateway.Result) error, extra ...llb.RunOption) error {
	st, err := u.run(ps.def, "restore", script, extra...)
	if err != nil {
		return err
	}
	return ps.solveState(ctx, gc, st.Root(), then)
}

func (ps *persistence) solveState(ctx context.Context, gc gateway.Client, st llb.State, then func(*gateway.Result) error) error {
	def, err := st.Marshal(ctx, llb.Platform(ps.platform))
	if err != nil {
		return err
	}
	// Evaluate: a gateway solve is lazy, and nothing else uses the result.
	r, err := gc.Solve(ctx, gateway.SolveRequest{Definition: def.ToPB(), Evaluate: true})
	if err != nil {
		return err
	}
	if then != nil {
		return then(r)
	}
	return nil
}

// seed returns the artifact of u as a state, the checksum of its tarball,
// the digest of its contents, the tarball's size, and the local directory
// the session must send for it; an empty sum when there is no artifact.
func (ps *persistence) seed(ctx context.Context, u *cacheUse) (st llb.State, sum, content string, size int64, locals map[string]fsutil.FS, err error) {
	if !ps.opts.store.IsRegistry() {
		dir := u.report.Artifact
		b, err := os.ReadFile(filepath.Join(dir, "sum"))
		if errors.Is(err, os.ErrNotExist) {
			return st, "", "", 0, nil, nil
		}
		if err != nil {
			return st, "", "", 0, nil, err
		}
		c, err := os.ReadFile(filepath.Join(dir, "content"))
		if err != nil {
			return st, "", "", 0, nil, err
		}
		fi, err := os.Stat(filepath.Join(dir, "cache.tar"))
		if err != nil {
			return st, "", "", 0, nil, err
		}
		fs, err := fsutil.NewFS(dir)
		if err != nil {
			return st, "", "", 0, nil, err
		}
		name := "larder-cache-" + u.key
		return llb.Local(name, llb.SharedKeyHint(name)), strings.TrimSpace(string(b)), strings.TrimSpace(string(c)),
			fi.Size(), map[string]fsutil.FS{name: fs}, nil
	}
	ref, err := name.ParseReference(u.report.Artifact)
	if err != nil {
		return st, "", "", 0, nil, err
	}
	desc, err := ggcrremote.Get(ref, ggcrremote.WithContext(ctx), ggcrremote.WithAuthFromKeychain(ps.keychain))
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == 404 {
		return st, "", "", 0, nil, nil
	}
	if err != nil {
		return st, "", "", 0, nil, err
	}
	img, err := desc.Image()
	if err != nil {
		return st, "", "", 0, nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return st, "", "", 0, nil, err
	}
	sum, content = cf.Config.Labels[persistLabel], cf.Config.Labels[contentLabel]
	if len(sum) != 64 || len(content) != 64 {
		return st, "", "", 0, nil, fmt.Errorf("%s is not a cache mount artifact (no %s label)", ref, persistLabel)
	}
	if _, err := fmt.Sscan(cf.Config.Labels[sizeLabel], &size); err != nil {
		return st, "", "", 0, nil, fmt.Errorf("%s is not a cache mount artifact (no %s label)", ref, sizeLabel)
	}
	pinned := ref.Context().Name() + "@" + desc.Digest.String()
	return llb.Image(pinned, llb.Platform(ps.platform)), sum, content, size, nil, nil
}

// packIn packs every cache anew, in the session of the user's solve after
// it, and reads each checksum and size.
func (ps *persistence) packIn(ctx context.Context, gc gateway.Client) error {
	start := time.Now()
	ps.packs = map[*cacheUse]packed{}
	ps.nonce = fmt.Sprintf("%d", start.UnixNano())
	for _, u := range ps.uses {
		err := ps.solveState(ctx, gc, ps.pack(u), func(r *gateway.Result) error {
			ref, err := r.SingleRef()
			if err != nil {
				return err
			}
			b, err := ref.ReadFile(ctx, gateway.ReadRequest{Filename: "sum"})
			if err != nil {
				return err
			}
			c, err := ref.ReadFile(ctx, gateway.ReadRequest{Filename: "content"})
			if err != nil {
				return err
			}
			st, err := ref.StatFile(ctx, gateway.StatRequest{Path: "cache.tar"})
			if err != nil {
				return err
			}
			ps.packs[u] = packed{strings.TrimSpace(string(b)), strings.TrimSpace(string(c)), st.Size, time.Since(start)}
			return nil
		})
		if err != nil {
			if err := ps.fail(u, "packing", err); err != nil {
				return err
			}
		}
	}
	return nil
}

// packed is a cache packed after the user's solve.
type packed struct {
	sum, content string
	size         int64
	took         time.Duration
}

// save exports each cache whose contents changed since it was restored,
// on c, from what packIn packed.
func (ps *persistence) save(ctx context.Context, c *client.Client, o *solveOptions) error {
	for _, u := range ps.uses {
		pk, ok := ps.packs[u]
		if !ok {
			continue
		}
		if pk.content == u.content {
			u.report.ExportTime = pk.took
			u.report.Notes = append(u.report.Notes, "unchanged since it was restored: nothing saved")
			continue
		}
		t := time.Now()
		if err := ps.export(ctx, c, u, pk, o); err != nil {
			if err := ps.fail(u, "saving to "+u.report.Artifact, err); err != nil {
				return err
			}
			continue
		}
		u.content = pk.content
		u.report.Exported, u.report.ExportedBytes, u.report.ExportTime = true, pk.size, pk.took+time.Since(t)
	}
	return nil
}

// pack returns the state holding u's cache as cache.tar and its checksum
// as sum. The step is made new by the save's nonce rather than by
// llb.IgnoreCache, because BuildKit gives a step that ignores the cache new,
// empty cache mounts. Exporting solves the same step again, which is then
// the result packIn made.
func (ps *persistence) pack(u *cacheUse) llb.State {
	out := persistOut
	st, err := u.run(ps.def, "save", packScript(u.mount.Dest, out, u.leave)+" # "+ps.nonce, llb.AddMount(out, llb.Scratch()))
	if err != nil {
		return llb.Scratch().Async(func(context.Context, llb.State, *llb.Constraints) (llb.State, error) { return llb.State{}, err })
	}
	return st.GetMount(out)
}

// packScript is the shell script that packs the cache mounted at dir into
// out/cache.tar, with the tarball's checksum in out/sum and the digest of
// the cache's contents in out/content: the sorted paths with mode, owner
// and type, and each file's data; not mtimes or tar's order. The files in
// leave (relative to dir) are left out of both, where tar can leave them
// out (GNU tar; busybox's has no --exclude, and keeps them).
func packScript(dir, out string, leave []string) string {
	tarCmd := fmt.Sprintf(`tar -cf %s/cache.tar .; list() { find . "$@"; }`, out)
	if len(leave) > 0 {
		var tarEx, findEx string
		for _, f := range leave {
			// Anchored at the cache's root, as tar and find name its files.
			p := "./" + shellQuote(f)
			tarEx += " --exclude=" + p
			findEx += " ! -path " + p
		}
		tarCmd = fmt.Sprintf(`if tar%[2]s -cf %[1]s/cache.tar . 2>/dev/null; then list() { find .%[3]s "$@"; }; else %[4]s; fi`,
			out, tarEx, findEx, tarCmd)
	}
	return fmt.Sprintf(`set -e; cd %[1]s; %[3]s; `+
		`sha256sum %[2]s/cache.tar | cut -d' ' -f1 > %[2]s/sum; `+
		`{ list -print0 | sort -z | xargs -0 -r stat -c '%%n %%a %%u %%g %%F'; `+
		`list -type f -print0 | sort -z | xargs -0 -r sha256sum; } | sha256sum | cut -d' ' -f1 > %[2]s/content`,
		shellQuote(dir), out, tarCmd)
}

// export exports u's packed cache to its artifact.
func (ps *persistence) export(ctx context.Context, c *client.Client, u *cacheUse, pk packed, o *solveOptions) error {
	so := client.SolveOpt{FrontendAttrs: map[string]string{}}
	tmp := u.report.Artifact + ".tmp"
	if ps.opts.store.IsRegistry() {
		so.Exports = []client.ExportEntry{{Type: client.ExporterImage, Attrs: map[string]string{
			"name": u.report.Artifact, "push": "true", "oci-mediatypes": "true",
		}}}
	} else {
		if err := os.RemoveAll(tmp); err != nil {
			return err
		}
		so.Exports = []client.ExportEntry{{Type: client.ExporterLocal, OutputDir: tmp}}
	}
	cfg, err := json.Marshal(ocispecs.Image{
		Platform: ocispecs.Platform{OS: ps.platform.OS, Architecture: ps.platform.Architecture, Variant: ps.platform.Variant},
		Config: ocispecs.ImageConfig{Labels: map[string]string{
			persistLabel: pk.sum, contentLabel: pk.content, sizeLabel: fmt.Sprint(pk.size),
		}},
		RootFS: ocispecs.RootFS{Type: "layers"},
	})
	if err != nil {
		return err
	}
	so.Session = append(so.Session, sessionAttachables(o)...)
	def, err := ps.pack(u).Marshal(ctx, llb.Platform(ps.platform))
	if err != nil {
		return err
	}
	_, err = c.Build(ctx, so, "", func(ctx context.Context, gc gateway.Client) (*gateway.Result, error) {
		r, err := gc.Solve(ctx, gateway.SolveRequest{Definition: def.ToPB()})
		if err != nil {
			return nil, err
		}
		r.AddMeta(exptypes.ExporterImageConfigKey, cfg)
		return r, nil
	}, nil)
	if err != nil || ps.opts.store.IsRegistry() {
		return err
	}
	if err := os.RemoveAll(u.report.Artifact); err != nil {
		return err
	}
	return os.Rename(tmp, u.report.Artifact)
}

func (ps *persistence) reports() []MountReport {
	out := make([]MountReport, len(ps.uses))
	for i, u := range ps.uses {
		out[i] = *u.report
	}
	return out
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(path.Clean(s), "'", `'\''`) + "'"
}
