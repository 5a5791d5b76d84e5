package build

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/containerd/platforms"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	"github.com/moby/buildkit/session/sshforward/sshprovider"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tonistiigi/fsutil"
	"golang.org/x/sync/errgroup"

	"github.com/larder-build/larder/cache"
)

// Builder is what [Solve] runs on: a BuildKit daemon or a fleet of them.
// *remote.Builder and *remote.Fleet satisfy it.
type Builder interface {
	// Platforms lists the platforms the builder runs, its default first.
	Platforms() []ocispecs.Platform
	// Acquire returns a client for a daemon that builds platform p, chosen
	// by key when several could, and the name of that daemon for reports.
	// The caller calls release with the solve's error when the solve ends.
	Acquire(ctx context.Context, p ocispecs.Platform, key string) (c *client.Client, name string, release func(error), err error)
}

// Result is what [Solve] returns: what each platform's solve gave, and
// the report of them all. When a solve fails after the builder was
// contacted, Solve returns a partial Result beside the error: the report of
// the steps that ran, and what the platforms that finished gave.
type Result struct {
	// Digest is the digest of the image manifest exported or pushed, or of
	// the index when several platforms were pushed; "" when no image was
	// exported.
	Digest digest.Digest
	// Report covers every platform of the solve.
	Report *Report
	// Platforms holds what each platform's solve gave, in the order the
	// platforms were given; the zero PlatformResult for a platform whose
	// solve never reached a builder.
	Platforms []PlatformResult
}

// PlatformResult is what the solve of one platform gave.
type PlatformResult struct {
	// Platform is the platform built, such as "linux/arm64".
	Platform string
	// Builder is the name of the daemon that built the platform.
	Builder string
	// Digest is the platform's image manifest, "" when no image was
	// exported.
	Digest digest.Digest
	// Graph identifies the definition solved, as the builder resolved it:
	// a digest of its operations in order. Two solves with the same Graph
	// have the same cache keys.
	Graph digest.Digest
	// Report is the report of this platform's solve alone.
	Report *Report
	// ExporterResponse is BuildKit's raw exporter response.
	ExporterResponse map[string]string
}

// Solve builds s on b with the outputs and session options given, and waits
// for the result. Everything that can be checked on the client is checked
// before b is contacted: the stage's own mistakes, options, local
// directories and secrets that the graph needs and the options do not give;
// all of them are reported at once, in one error that starts with
// "build: Solve: ".
//
// A failed command returns a [*StepError]. Every other error starts with
// "build: Solve: ", then the platform when several are built; errors wrap
// BuildKit's own, so errors.As still reaches *errdefs.VertexError. Once the
// builder was contacted, a failed Solve returns a partial [*Result] too.
//
// The tarballs it writes on the client ([OCITarball], [DockerTarball]) are
// written under temporary names beside their paths and take their names
// only when Solve succeeds: a failed Solve leaves whatever was at a path.
func Solve(ctx context.Context, b Builder, s Stage, opts ...SolveOption) (*Result, error) {
	var o solveOptions
	res, err := solve(ctx, b, s, &o, opts)
	if ferr := o.image.files.finish(err == nil); ferr != nil && err == nil {
		err = fmt.Errorf("build: Solve: %w", ferr)
	}
	return res, err
}

func solve(ctx context.Context, b Builder, s Stage, o *solveOptions, opts []SolveOption) (*Result, error) {
	var errs []error
	for _, opt := range opts {
		if opt == nil {
			errs = append(errs, errors.New("nil option (leave it out of the list)"))
			continue
		}
		if err := opt(o); err != nil {
			errs = append(errs, err)
		}
	}
	if b == nil {
		errs = append(errs, errors.New("nil builder (pass a *remote.Builder from remote.Dial or remote.Start, or a *remote.Fleet)"))
	}
	ps := o.platforms
	if len(ps) == 0 && b != nil {
		if bps := b.Platforms(); len(bps) > 0 {
			ps = []ocispecs.Platform{platforms.Normalize(bps[0])}
		} else {
			errs = append(errs, errors.New("the builder lists no platform; set one with Platforms"))
		}
	}
	if i := slices.IndexFunc(o.exportFns, func(fn string) bool { return !writesIndex(fn) }); len(ps) > 1 && i >= 0 {
		errs = append(errs, fmt.Errorf("%s writes a single platform's image, but %d platforms are built (Push an index or write an OCITarball, or solve each platform on its own)", o.exportFns[i], len(ps)))
	}
	if err := o.checkImageOptions(ctx, ps); err != nil {
		errs = append(errs, err)
	}
	// Client-side checks on the graph as it marshals without a builder:
	// the stage's own mistakes, then what the session must provide.
	localID := localUniqueID(o.locals)
	solves := make([]*platformSolve, len(ps))
	if err := s.mistakes(); err != nil {
		errs = append(errs, err)
	} else {
		for i, p := range ps {
			env := newMarshalEnv(ctx, nil, p)
			def, err := s.state(env).Marshal(ctx, llb.Platform(p), llb.LocalUniqueID(localID))
			if err == nil {
				err = checkSession(def, o)
			}
			if err != nil {
				errs = append(errs, err)
				break
			}
			solves[i] = &platformSolve{
				opts: o, stage: s, platform: p, localID: localID, multi: len(ps) > 1,
				plan: marshalled{def: def, regenerable: env.regenerable},
			}
		}
	}
	if len(o.ssh) > 0 && len(errs) == 0 {
		sp, err := sshprovider.NewSSHAgentProvider(o.ssh)
		if err != nil {
			errs = append(errs, fmt.Errorf("WithSSH: %w (give the socket of a running SSH agent or a private key file)", err))
		}
		o.sshProvider = sp
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("build: Solve: %w", err)
	}
	o.mask = newMasker(o.secrets)

	if len(ps) > 1 && slices.ContainsFunc(o.exportFns, writesIndex) {
		dir, err := os.MkdirTemp("", "larder-oci-")
		if err != nil {
			return nil, fmt.Errorf("build: Solve: %w", err)
		}
		defer os.RemoveAll(dir)
		o.image.tmp = dir
	}

	start := time.Now()
	disp := startDisplays(ctx, o.displays)
	results := make([]PlatformResult, len(ps))
	eg, ectx := errgroup.WithContext(ctx)
	for i, sv := range solves {
		sv.display = disp.in
		eg.Go(func() error {
			r, err := sv.run(ectx, b)
			if r != nil {
				results[i] = *r
			}
			return sv.wrap(err)
		})
	}
	err := eg.Wait()
	disp.wait()
	res := &Result{Platforms: results, Report: mergeReports(results, time.Since(start))}
	if err != nil {
		return res, err
	}
	if len(ps) == 1 {
		res.Digest = results[0].Digest
		return res, nil
	}
	if len(o.pushRefs) > 0 {
		d, err := pushIndex(ctx, o.pushRefs, results, o.indexAnnotations(), o.auth())
		if err != nil {
			return res, fmt.Errorf("build: Solve: %w", err)
		}
		res.Digest = d
	}
	d, err := o.writeIndexes(ctx, ps)
	if err != nil {
		return res, fmt.Errorf("build: Solve: %w", err)
	}
	if res.Digest == "" {
		res.Digest = d
	}
	return res, nil
}

// marshalled is a stage marshalled for a platform without a builder.
type marshalled struct {
	def         *llb.Definition
	regenerable map[string][]string // cache id: files a tool rebuilds on its own
}

// platformSolve is the solve of one platform of a [Solve].
type platformSolve struct {
	opts     *solveOptions
	stage    Stage
	platform ocispecs.Platform
	plan     marshalled // stage marshalled for platform without a builder
	localID  string     // the unique id of the session's local sources
	multi    bool       // one platform of several
	display  chan<- *client.SolveStatus
}

// wrap gives err the prefix of Solve's errors, "build: Solve: ", then the
// platform when several are built. A *StepError names its step and
// platform itself.
func (sv *platformSolve) wrap(err error) error {
	var se *StepError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se):
		se.multi = sv.multi
		return err
	case sv.multi:
		return fmt.Errorf("build: Solve: %s: %w", platforms.Format(sv.platform), err)
	}
	return fmt.Errorf("build: Solve: %w", err)
}

// run solves the platform on the daemon b routes it to.
func (sv *platformSolve) run(ctx context.Context, b Builder) (*PlatformResult, error) {
	c, name, release, err := b.Acquire(ctx, sv.platform, sv.opts.key)
	if err != nil {
		return nil, err
	}
	var ps *persistence
	if sv.opts.persist != nil {
		// The caches' ids and targets can depend on what only the
		// builder knows (the image's environment and users).
		if err := sv.planOn(ctx, c); err != nil {
			release(err)
			return nil, err
		}
		if ps, err = newPersistence(sv); err != nil {
			release(err)
			return nil, err
		}
	}
	if ps != nil {
		defer ps.close()
	}
	res, err := sv.on(ctx, c, ps)
	release(err)
	res.Builder = name
	res.Report.Builders = []string{name}
	res.Report.CacheMounts = ps.reports()
	return res, err
}

// on solves the platform on c. With ps, the graph's cache mounts are
// restored before the graph is solved and packed after it, in its session.
func (sv *platformSolve) on(ctx context.Context, c *client.Client, ps *persistence) (*PlatformResult, error) {
	o, s, p := sv.opts, sv.stage, sv.platform
	res := &PlatformResult{Platform: platforms.Format(p), Report: &Report{Platforms: []string{platforms.Format(p)}, Warnings: append(s.Warnings(), o.warnings...)}}
	so := client.SolveOpt{
		LocalMounts: map[string]fsutil.FS{},
		// BuildKit v0.33.1's client copies the cache imports into a clone
		// of FrontendAttrs, which is nil for a nil map: keep it non-nil.
		FrontendAttrs: map[string]string{},
		Exports:       o.exportsFor(p, sv.multi),
		CacheImports:  cacheEntries(o.cacheFrom, p, sv.multi, false),
		CacheExports:  cacheEntries(o.cacheTo, p, sv.multi, true),
	}
	o.attestAttrs(so.FrontendAttrs)
	for name, dir := range o.locals {
		fs, err := fsutil.NewFS(dir)
		if err != nil {
			return res, fmt.Errorf("WithLocal(%q, %q): %w", name, dir, err)
		}
		so.LocalMounts[name] = fs
	}
	so.Session = sessionAttachables(o)
	rec := newRecorder(res.Report, p, o.onEvent, o.mask)
	start := time.Now()
	if ps != nil {
		if err := ps.prepare(ctx, c, sv, so, rec); err != nil {
			res.Report.Duration = time.Since(start)
			return res, rec.stepError(err)
		}
		locals, err := ps.locals("index")
		if err != nil {
			return res, err
		}
		so.LocalMounts = maps.Clone(so.LocalMounts)
		maps.Copy(so.LocalMounts, locals)
	}

	statusCh := make(chan *client.SolveStatus)
	done := rec.consume(statusCh, sv.display)
	resp, err := c.Build(ctx, so, "", func(ctx context.Context, gc gateway.Client) (*gateway.Result, error) {
		env := newMarshalEnv(ctx, gc, p)
		st := s.state(env)
		def, err := st.Marshal(ctx, llb.Platform(p), llb.LocalUniqueID(sv.localID))
		if err != nil {
			return nil, err
		}
		rec.expect(def)
		res.Graph = graphDigest(def)
		for _, w := range env.warnings {
			if !slices.Contains(res.Report.Warnings, w) {
				res.Report.Warnings = append(res.Report.Warnings, w)
			}
		}
		if ps != nil {
			if err := ps.adopt(def); err != nil {
				return nil, err
			}
		}
		req := gateway.SolveRequest{Definition: def.ToPB(), Evaluate: ps != nil}
		for _, ci := range so.CacheImports {
			req.CacheImports = append(req.CacheImports, gateway.CacheOptionsEntry{Type: ci.Type, Attrs: ci.Attrs})
		}
		r, err := gc.Solve(ctx, req)
		if err != nil {
			return nil, err
		}
		if ps != nil {
			if err := ps.saveIn(ctx, gc); err != nil {
				return nil, err
			}
		}
		if o.imageOutput {
			cfg, err := s.imageConfig(ctx, env, st, gc, p)
			if err != nil {
				return nil, err
			}
			r.AddMeta(exptypes.ExporterImageConfigKey, cfg)
		}
		return r, nil
	}, statusCh)
	<-done
	res.Report.Duration = time.Since(start)
	if err != nil {
		return res, rec.stepError(err)
	}
	res.ExporterResponse = resp.ExporterResponse
	if d := resp.ExporterResponse[exptypes.ExporterImageDigestKey]; d != "" {
		res.Digest = digest.Digest(d)
	}
	return res, nil
}

// cacheEntries converts backends to BuildKit's entries, keeping platforms
// apart when several are built.
func cacheEntries(backends []cache.Backend, p ocispecs.Platform, multi, export bool) []client.CacheOptionsEntry {
	var out []client.CacheOptionsEntry
	for _, b := range backends {
		if multi {
			b = cache.ForPlatform(b, platforms.Format(p))
		}
		attrs, _ := b.ImportAttrs()
		if export {
			attrs, _ = b.ExportAttrs()
		}
		out = append(out, client.CacheOptionsEntry{Type: b.Type(), Attrs: attrs})
	}
	return out
}

// graphDigest digests the operations of def in order.
func graphDigest(def *llb.Definition) digest.Digest {
	h := sha256.New()
	for _, dt := range def.Def {
		fmt.Fprintln(h, digest.FromBytes(dt))
	}
	return digest.NewDigest(digest.SHA256, h)
}

// planOn marshals the stage with the builder c, as the solve will, for
// persistence to plan on.
func (sv *platformSolve) planOn(ctx context.Context, c *client.Client) error {
	so := client.SolveOpt{FrontendAttrs: map[string]string{}, Session: sessionAttachables(sv.opts)}
	_, err := c.Build(ctx, so, "", func(ctx context.Context, gc gateway.Client) (*gateway.Result, error) {
		env := newMarshalEnv(ctx, gc, sv.platform)
		def, err := sv.stage.state(env).Marshal(ctx, llb.Platform(sv.platform), llb.LocalUniqueID(sv.localID))
		if err != nil {
			return nil, err
		}
		sv.plan = marshalled{def: def, regenerable: env.regenerable}
		return nil, nil
	}, nil)
	return err
}
