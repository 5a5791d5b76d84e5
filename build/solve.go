package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/docker/cli/cli/config"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/auth/authprovider"
	"github.com/moby/buildkit/session/secrets/secretsprovider"
	"github.com/moby/buildkit/session/sshforward/sshprovider"
	"github.com/moby/buildkit/solver/pb"
	"github.com/moby/buildkit/util/progress/progressui"
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

// SolveOption configures [Solve]. Each option checks its own input; Solve
// reports every mistake before it contacts the builder.
type SolveOption func(*solveOptions) error

type solveOptions struct {
	platforms   []ocispecs.Platform
	locals      map[string]string
	secrets     map[string][]byte
	ssh         []sshprovider.AgentConfig
	sshProvider session.Attachable   // made from ssh once the options are applied
	exports     []client.ExportEntry // tarballs and raw entries: one platform only
	exportFns   []string             // the options that added them, for errors
	localDirs   []string
	pushRefs    []string
	cacheFrom   []cache.Backend
	cacheTo     []cache.Backend
	displays    []display
	onEvent     []func(Event)
	key         string
	persist     *persistOptions
	noAuth      bool
	imageOutput bool
}

type display struct {
	w    io.Writer
	mode progressui.DisplayMode
}

// WithLocal sends the directory dir to the builder as the local source name,
// which [Local] stages refer to. Every Local in the graph needs one.
func WithLocal(name, dir string) SolveOption {
	return func(o *solveOptions) error {
		if err := checkLocalName(name); err != nil {
			return fmt.Errorf("WithLocal(%q): %w", name, err)
		}
		fi, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("WithLocal(%q, %q): %w", name, dir, err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("WithLocal(%q, %q): not a directory", name, dir)
		}
		if o.locals == nil {
			o.locals = map[string]string{}
		}
		if _, dup := o.locals[name]; dup {
			return fmt.Errorf("WithLocal(%q): given twice", name)
		}
		o.locals[name] = dir
		return nil
	}
}

// WithSecret makes value available to secret mounts with this id. The value
// travels through the client session only: it is never part of the
// definition, a layer, a cache export or the progress output.
func WithSecret(id string, value []byte) SolveOption {
	return func(o *solveOptions) error {
		if id == "" {
			return errors.New("WithSecret: empty id")
		}
		if o.secrets == nil {
			o.secrets = map[string][]byte{}
		}
		if _, dup := o.secrets[id]; dup {
			return fmt.Errorf("WithSecret(%q): given twice", id)
		}
		o.secrets[id] = slices.Clone(value)
		return nil
	}
}

// WithSecretFile is [WithSecret] with the content of the file at path, read
// when the option is applied.
func WithSecretFile(id, path string) SolveOption {
	return func(o *solveOptions) error {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("WithSecretFile(%q): %w", id, err)
		}
		return WithSecret(id, b)(o)
	}
}

// WithSecretEnv is [WithSecret] with the value of the environment variable
// name, which must be set.
func WithSecretEnv(id, name string) SolveOption {
	return func(o *solveOptions) error {
		v, ok := os.LookupEnv(name)
		if !ok {
			return fmt.Errorf("WithSecretEnv(%q): environment variable %s is not set", id, name)
		}
		return WithSecret(id, []byte(v))(o)
	}
}

// WithSSH forwards an SSH agent to SSH mounts with this id: the agent at
// the socket paths given, or private key files, or $SSH_AUTH_SOCK when no
// path is given.
func WithSSH(id string, paths ...string) SolveOption {
	return func(o *solveOptions) error {
		if id == "" {
			return errors.New("WithSSH: empty id (the default id of an SSH mount is \"default\")")
		}
		if len(paths) == 0 && os.Getenv("SSH_AUTH_SOCK") == "" {
			return fmt.Errorf("WithSSH(%q): no path given and SSH_AUTH_SOCK is not set", id)
		}
		o.ssh = append(o.ssh, sshprovider.AgentConfig{ID: id, Paths: paths})
		return nil
	}
}

// Push pushes the image to each reference, such as
// "registry.example.com/team/app:1.2", with credentials from the Docker
// configuration ($DOCKER_CONFIG, else ~/.docker/config.json).
func Push(refs ...string) SolveOption {
	return func(o *solveOptions) error {
		if len(refs) == 0 {
			return errors.New("Push: no reference")
		}
		for _, r := range refs {
			if _, err := reference.ParseNormalizedNamed(r); err != nil {
				return fmt.Errorf("Push(%q): %w (want host/repo:tag)", r, err)
			}
		}
		o.pushRefs = append(o.pushRefs, refs...)
		o.imageOutput = true
		return nil
	}
}

// OCITarball writes the image as an OCI layout tarball to the file path,
// named ref ("" for no name).
func OCITarball(path, ref string) SolveOption {
	return tarball(client.ExporterOCI, "OCITarball", path, ref, false)
}

// DockerTarball writes the image as a tarball that `docker load` reads, to
// the file path, tagged ref.
func DockerTarball(path, ref string) SolveOption {
	return tarball(client.ExporterDocker, "DockerTarball", path, ref, true)
}

func tarball(typ, fn, path, ref string, needRef bool) SolveOption {
	return func(o *solveOptions) error {
		if path == "" {
			return fmt.Errorf("%s: empty path", fn)
		}
		if dir := filepath.Dir(path); dir != "" {
			if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
				return fmt.Errorf("%s(%q): directory %s does not exist", fn, path, dir)
			}
		}
		attrs := map[string]string{}
		if ref != "" {
			if _, err := reference.ParseNormalizedNamed(ref); err != nil {
				return fmt.Errorf("%s(%q, %q): %w", fn, path, ref, err)
			}
			attrs["name"] = ref
		} else if needRef {
			return fmt.Errorf("%s(%q): a reference is needed to tag the image", fn, path)
		}
		o.exports = append(o.exports, client.ExportEntry{
			Type:  typ,
			Attrs: attrs,
			Output: func(map[string]string) (io.WriteCloser, error) {
				return os.Create(path)
			},
		})
		o.exportFns = append(o.exportFns, fn)
		o.imageOutput = true
		return nil
	}
}

// LocalDir writes the result's filesystem to the directory dir on the
// client, creating it if needed. When several platforms are built, each
// goes to a subdirectory named like "linux_arm64" or "linux_arm_v7".
func LocalDir(dir string) SolveOption {
	return func(o *solveOptions) error {
		if dir == "" {
			return errors.New("LocalDir: empty path")
		}
		o.localDirs = append(o.localDirs, dir)
		return nil
	}
}

// Export adds a raw BuildKit export entry, for exporters Larder does not
// wrap. It takes a single-platform build.
func Export(e client.ExportEntry) SolveOption {
	return func(o *solveOptions) error {
		if e.Type == "" {
			return errors.New("Export: entry has no Type")
		}
		o.exports = append(o.exports, e)
		o.exportFns = append(o.exportFns, "Export")
		return nil
	}
}

// CacheFrom imports layer cache from each backend before the solve.
func CacheFrom(backends ...cache.Backend) SolveOption {
	return func(o *solveOptions) error {
		for _, b := range backends {
			if b == nil {
				return errors.New("CacheFrom: nil backend")
			}
			if _, err := b.ImportAttrs(); err != nil {
				return fmt.Errorf("CacheFrom: %w", err)
			}
		}
		o.cacheFrom = append(o.cacheFrom, backends...)
		return nil
	}
}

// CacheTo exports the solve's layer cache to each backend.
func CacheTo(backends ...cache.Backend) SolveOption {
	return func(o *solveOptions) error {
		for _, b := range backends {
			if b == nil {
				return errors.New("CacheTo: nil backend")
			}
			if _, err := b.ExportAttrs(); err != nil {
				return fmt.Errorf("CacheTo: %w", err)
			}
		}
		o.cacheTo = append(o.cacheTo, backends...)
		return nil
	}
}

// Platforms sets the platforms the graph is built for, such as
// "linux/amd64" and "linux/arm64". Each platform is solved on its own, on a
// daemon the builder routes it to, concurrently. With more than one, Push
// pushes each platform's image by digest and then one index of them all
// under the references given. The default is the builder's default
// platform.
func Platforms(ps ...string) SolveOption {
	return func(o *solveOptions) error {
		if len(ps) == 0 {
			return errors.New("Platforms: no platform")
		}
		for _, p := range ps {
			pl, err := platforms.Parse(p)
			if err != nil {
				return fmt.Errorf("Platforms(%q): %w (want os/arch[/variant], such as linux/arm64)", p, err)
			}
			pl = platforms.Normalize(pl)
			if slices.ContainsFunc(o.platforms, func(q ocispecs.Platform) bool { return platforms.Only(q).Match(pl) && platforms.Only(pl).Match(q) }) {
				return fmt.Errorf("Platforms: %s given twice", platforms.Format(pl))
			}
			o.platforms = append(o.platforms, pl)
		}
		return nil
	}
}

// Key names the project a solve belongs to, so that a fleet sends the same
// project to the same member and its cache mounts stay warm. A single
// builder ignores it. The default is "".
func Key(key string) SolveOption {
	return func(o *solveOptions) error {
		o.key = key
		return nil
	}
}

// Progress draws BuildKit's own progress display on w: "auto" (a live
// display on a terminal, plain lines otherwise), "tty", "plain", "rawjson"
// or "quiet".
func Progress(w io.Writer, mode string) SolveOption {
	return func(o *solveOptions) error {
		if w == nil {
			return errors.New("Progress: nil writer")
		}
		m := progressui.DisplayMode(mode)
		switch m {
		case progressui.AutoMode, progressui.TtyMode, progressui.PlainMode, progressui.RawJSONMode, progressui.QuietMode:
		default:
			return fmt.Errorf("Progress: mode %q (want auto, tty, plain, rawjson or quiet)", mode)
		}
		o.displays = append(o.displays, display{w: w, mode: m})
		return nil
	}
}

// OnEvent calls fn with each progress event of the solve, in order, from one
// goroutine. fn should return quickly: the display waits for it.
func OnEvent(fn func(Event)) SolveOption {
	return func(o *solveOptions) error {
		if fn == nil {
			return errors.New("OnEvent: nil func")
		}
		o.onEvent = append(o.onEvent, fn)
		return nil
	}
}

// WithoutRegistryAuth does not offer the Docker configuration's registry
// credentials to the builder. The default offers them.
func WithoutRegistryAuth() SolveOption {
	return func(o *solveOptions) error {
		o.noAuth = true
		return nil
	}
}

// Result is what a successful [Solve] returns.
type Result struct {
	// Digest is the digest of the image manifest exported or pushed, or of
	// the index when several platforms were pushed; "" when no image was
	// exported.
	Digest digest.Digest
	// Report covers every platform of the solve.
	Report *Report
	// Platforms holds what each platform's solve gave, in the order the
	// platforms were given.
	Platforms []PlatformResult
}

// PlatformResult is what the solve of one platform gave.
type PlatformResult struct {
	Platform string
	// Builder is the name of the daemon that built the platform.
	Builder string
	// Digest is the platform's image manifest, "" when no image was
	// exported.
	Digest digest.Digest
	// Graph identifies the definition solved, as the builder resolved it:
	// a digest of its operations in order. Two solves with the same Graph
	// have the same cache keys.
	Graph  digest.Digest
	Report *Report
	// ExporterResponse is BuildKit's raw exporter response.
	ExporterResponse map[string]string
}

// Solve builds s on b with the outputs and session options given, and waits
// for the result. Everything that can be checked on the client is checked
// before b is contacted: the stage's own mistakes, options, local
// directories and secrets that the graph needs and the options do not give.
// A failed command returns a [*StepError]; errors wrap BuildKit's own, so
// errors.As still reaches *errdefs.VertexError.
func Solve(ctx context.Context, b Builder, s Stage, opts ...SolveOption) (*Result, error) {
	var o solveOptions
	var errs []error
	for _, opt := range opts {
		if opt == nil {
			errs = append(errs, errors.New("nil option"))
			continue
		}
		if err := opt(&o); err != nil {
			errs = append(errs, err)
		}
	}
	if b == nil {
		errs = append(errs, errors.New("nil builder"))
	}
	ps := o.platforms
	if len(ps) == 0 && b != nil {
		if bps := b.Platforms(); len(bps) > 0 {
			ps = []ocispecs.Platform{platforms.Normalize(bps[0])}
		} else {
			errs = append(errs, errors.New("the builder lists no platform; set one with Platforms"))
		}
	}
	if len(ps) > 1 && len(o.exports) > 0 {
		errs = append(errs, fmt.Errorf("%s writes a single platform's image, but %d platforms are built (Push an index, or solve each platform on its own)", o.exportFns[0], len(ps)))
	}
	// Client-side checks on the graph as it marshals without a builder:
	// the stage's own mistakes, then what the session must provide.
	localID := localUniqueID(o.locals)
	plans := make([]marshalled, len(ps)) // unresolved, per platform
	if err := s.mistakes(); err != nil {
		errs = append(errs, err)
	} else {
		for i, p := range ps {
			env := newMarshalEnv(nil, p)
			def, err := s.state(env).Marshal(ctx, llb.Platform(p), llb.LocalUniqueID(localID))
			if err == nil {
				err = checkSession(def, &o)
			}
			if err != nil {
				errs = append(errs, err)
				break
			}
			plans[i] = marshalled{def: def, regenerable: env.regenerable}
		}
	}
	if len(o.ssh) > 0 && len(errs) == 0 {
		sp, err := sshprovider.NewSSHAgentProvider(o.ssh)
		if err != nil {
			errs = append(errs, fmt.Errorf("WithSSH: %w", err))
		}
		o.sshProvider = sp
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("build: Solve: %w", err)
	}

	start := time.Now()
	disp := startDisplays(ctx, o.displays)
	results := make([]PlatformResult, len(ps))
	eg, ectx := errgroup.WithContext(ctx)
	for i, p := range ps {
		eg.Go(func() error {
			r, err := solvePlatform(ectx, b, s, p, plans[i], localID, &o, len(ps) > 1, disp.in)
			if r != nil {
				results[i] = *r
			}
			if err != nil && len(ps) > 1 {
				return fmt.Errorf("build: %s: %w", platforms.Format(p), err)
			}
			return err
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
	} else if len(o.pushRefs) > 0 {
		d, err := pushIndex(ctx, o.pushRefs, results)
		if err != nil {
			return res, err
		}
		res.Digest = d
	}
	return res, nil
}

// marshalled is a stage marshalled for a platform without a builder.
type marshalled struct {
	def         *llb.Definition
	regenerable map[string][]string // cache id: files a tool rebuilds on its own
}

// solvePlatform solves s for p on the daemon b routes p to. m is s
// marshalled for p without a builder.
func solvePlatform(ctx context.Context, b Builder, s Stage, p ocispecs.Platform, m marshalled, localID string, o *solveOptions, multi bool, display chan<- *client.SolveStatus) (*PlatformResult, error) {
	c, name, release, err := b.Acquire(ctx, p, o.key)
	if err != nil {
		return nil, fmt.Errorf("build: Solve: %w", err)
	}
	var ps *persistence
	if o.persist != nil {
		if ps, err = newPersistence(o, s, p, m, localID); err != nil {
			release(err)
			return nil, err
		}
	}
	res, err := solveOn(ctx, c, s, p, localID, o, multi, display, ps)
	if err == nil && ps != nil {
		err = ps.save(ctx, c, o)
	}
	release(err)
	res.Builder = name
	res.Report.Builder = name
	if ps != nil {
		res.Report.CacheMounts = ps.reports()
	}
	return res, err
}

// sessionAttachables returns what the client session offers the builder:
// registry credentials, secrets and SSH agents.
func sessionAttachables(o *solveOptions) []session.Attachable {
	var as []session.Attachable
	if !o.noAuth {
		as = append(as, authprovider.NewDockerAuthProvider(authprovider.DockerAuthProviderConfig{
			AuthConfigProvider: authprovider.LoadAuthConfig(config.LoadDefaultConfigFile(io.Discard)),
		}))
	}
	if len(o.secrets) > 0 {
		as = append(as, secretsprovider.FromMap(o.secrets))
	}
	if o.sshProvider != nil {
		as = append(as, o.sshProvider)
	}
	return as
}

// checkSession finds the local sources and required secrets the definition
// uses and checks that the options provide them.
func checkSession(def *llb.Definition, o *solveOptions) error {
	var errs []error
	for _, dt := range def.Def {
		var op pb.Op
		if err := op.UnmarshalVT(dt); err != nil {
			return err
		}
		if src := op.GetSource(); src != nil {
			if name, ok := strings.CutPrefix(src.Identifier, "local://"); ok {
				if _, have := o.locals[name]; !have {
					errs = append(errs, fmt.Errorf("the graph uses Local(%q) but no WithLocal(%q, dir) was given", name, name))
				}
			}
		}
		if ex := op.GetExec(); ex != nil {
			for _, m := range ex.Mounts {
				if so := m.SecretOpt; so != nil && !so.Optional {
					if _, have := o.secrets[so.ID]; !have {
						errs = append(errs, fmt.Errorf("a step mounts the required secret %q but no WithSecret(%q, …) was given", so.ID, so.ID))
					}
				}
				if so := m.SSHOpt; so != nil && !so.Optional && !slices.ContainsFunc(o.ssh, func(a sshprovider.AgentConfig) bool { return a.ID == so.ID }) {
					errs = append(errs, fmt.Errorf("a step mounts the required SSH agent %q but no WithSSH(%q, …) was given", so.ID, so.ID))
				}
			}
			for _, se := range ex.Secretenv {
				if !se.Optional {
					if _, have := o.secrets[se.ID]; !have {
						errs = append(errs, fmt.Errorf("a step reads the required secret %q into $%s but no WithSecret(%q, …) was given", se.ID, se.Name, se.ID))
					}
				}
			}
		}
	}
	return errors.Join(errs...)
}

// localUniqueID names the client's local directories for the builder, which
// keeps what it received of them under this id and sends only changes next
// time. It depends on the directories' absolute paths, so a solve gives the
// same definition each time it sends the same directories.
func localUniqueID(locals map[string]string) string {
	names := slices.Sorted(maps.Keys(locals))
	h := sha256.New()
	for _, n := range names {
		abs, err := filepath.Abs(locals[n])
		if err != nil {
			abs = locals[n]
		}
		fmt.Fprintf(h, "%s=%s\n", n, abs)
	}
	return "larder-" + hex.EncodeToString(h.Sum(nil))[:32]
}

// exportsFor returns the export entries of the solve of p. With several
// platforms, local directories get a subdirectory per platform and images
// are pushed by digest, to be put in an index afterwards.
func (o *solveOptions) exportsFor(p ocispecs.Platform, multi bool) []client.ExportEntry {
	exports := slices.Clone(o.exports)
	for _, dir := range o.localDirs {
		if multi {
			dir = filepath.Join(dir, strings.ReplaceAll(platforms.Format(p), "/", "_"))
		}
		exports = append(exports, client.ExportEntry{Type: client.ExporterLocal, OutputDir: dir})
	}
	if len(o.pushRefs) > 0 {
		attrs := map[string]string{"name": strings.Join(o.pushRefs, ","), "push": "true"}
		if multi {
			named, _ := reference.ParseNormalizedNamed(o.pushRefs[0])
			attrs = map[string]string{"name": named.Name(), "push": "true", "push-by-digest": "true"}
		}
		exports = append(exports, client.ExportEntry{Type: client.ExporterImage, Attrs: attrs})
	}
	return exports
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

// solveOn solves s for p on c. With ps, the graph's cache mounts are
// restored before the graph is solved and packed after it, in its session.
func solveOn(ctx context.Context, c *client.Client, s Stage, p ocispecs.Platform, localID string, o *solveOptions, multi bool, display chan<- *client.SolveStatus, ps *persistence) (*PlatformResult, error) {
	res := &PlatformResult{Platform: platforms.Format(p), Report: &Report{Platform: platforms.Format(p), Warnings: s.Warnings()}}
	so := client.SolveOpt{
		LocalMounts: map[string]fsutil.FS{},
		// BuildKit v0.33.1's client copies the cache imports into a clone
		// of FrontendAttrs, which is nil for a nil map: keep it non-nil.
		FrontendAttrs: map[string]string{},
		Exports:       o.exportsFor(p, multi),
		CacheImports:  cacheEntries(o.cacheFrom, p, multi, false),
		CacheExports:  cacheEntries(o.cacheTo, p, multi, true),
	}
	for name, dir := range o.locals {
		fs, err := fsutil.NewFS(dir)
		if err != nil {
			return res, fmt.Errorf("build: WithLocal(%q, %q): %w", name, dir, err)
		}
		so.LocalMounts[name] = fs
	}
	so.Session = sessionAttachables(o)
	if ps != nil {
		locals, err := ps.prepare(ctx)
		if err != nil {
			return res, err
		}
		maps.Copy(so.LocalMounts, locals)
	}

	rec := newRecorder(res.Report, p, o.onEvent)
	statusCh := make(chan *client.SolveStatus)
	done := rec.consume(statusCh, display)

	start := time.Now()
	resp, err := c.Build(ctx, so, "", func(ctx context.Context, gc gateway.Client) (*gateway.Result, error) {
		st := s.state(newMarshalEnv(gc, p))
		def, err := st.Marshal(ctx, llb.Platform(p), llb.LocalUniqueID(localID))
		if err != nil {
			return nil, err
		}
		rec.expect(def)
		res.Graph = graphDigest(def)
		if ps != nil {
			if err := ps.restoreIn(ctx, gc, def); err != nil {
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
			if err := ps.packIn(ctx, gc); err != nil {
				return nil, err
			}
		}
		if o.imageOutput {
			cfg, err := s.imageConfig(ctx, st, gc, p)
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

// graphDigest digests the operations of def in order.
func graphDigest(def *llb.Definition) digest.Digest {
	h := sha256.New()
	for _, dt := range def.Def {
		fmt.Fprintln(h, digest.FromBytes(dt))
	}
	return digest.NewDigest(digest.SHA256, h)
}

// pushIndex pushes one index of the platforms' images, which were pushed by
// digest to the repository of refs[0], under each of refs.
func pushIndex(ctx context.Context, refs []string, results []PlatformResult) (digest.Digest, error) {
	named, _ := reference.ParseNormalizedNamed(refs[0])
	ropts := []ggcrremote.Option{ggcrremote.WithContext(ctx), ggcrremote.WithAuthFromKeychain(authn.DefaultKeychain)}
	var idx v1.ImageIndex = empty.Index
	for i, r := range results {
		dref, err := name.NewDigest(named.Name() + "@" + r.Digest.String())
		if err != nil {
			return "", fmt.Errorf("build: index: %w", err)
		}
		desc, err := ggcrremote.Get(dref, ropts...)
		if err != nil {
			return "", fmt.Errorf("build: index: reading %s: %w", dref, err)
		}
		if i == 0 {
			idx = mutate.IndexMediaType(idx, types.OCIImageIndex)
			if desc.MediaType == types.DockerManifestSchema2 {
				idx = mutate.IndexMediaType(idx, types.DockerManifestList)
			}
		}
		img, err := desc.Image()
		if err != nil {
			return "", fmt.Errorf("build: index: %s: %w", dref, err)
		}
		pl, _ := platforms.Parse(r.Platform)
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add: img,
			Descriptor: v1.Descriptor{
				MediaType: desc.MediaType,
				Platform:  &v1.Platform{OS: pl.OS, Architecture: pl.Architecture, Variant: pl.Variant},
			},
		})
	}
	for _, ref := range refs {
		tag, err := name.ParseReference(ref)
		if err != nil {
			return "", fmt.Errorf("build: index: %w", err)
		}
		if err := ggcrremote.WriteIndex(tag, idx, ropts...); err != nil {
			return "", fmt.Errorf("build: pushing the index to %s: %w", ref, err)
		}
	}
	d, err := idx.Digest()
	if err != nil {
		return "", err
	}
	return digest.Digest(d.String()), nil
}

// imageConfig renders the exported image's configuration: the state's
// environment, working directory and user, the stage's entrypoint, command
// and labels, over the base image's.
func (s Stage) imageConfig(ctx context.Context, st llb.State, r llb.ImageMetaResolver, p ocispecs.Platform) ([]byte, error) {
	var img ocispecs.Image
	conf := s.cfg()
	if conf.base != "" {
		bp := &p
		if conf.basePlatform != nil {
			bp = conf.basePlatform
		}
		_, _, dt, err := r.ResolveImageConfig(ctx, conf.base, sourceresolver.Opt{
			ImageOpt: &sourceresolver.ResolveImageOpt{Platform: bp},
		})
		if err != nil {
			return nil, fmt.Errorf("build: resolving %s: %w", conf.base, err)
		}
		if err := json.Unmarshal(dt, &img); err != nil {
			return nil, fmt.Errorf("build: image config of %s: %w", conf.base, err)
		}
	}
	env, err := st.Env(ctx, llb.Platform(p))
	if err != nil {
		return nil, err
	}
	dir, err := st.GetDir(ctx, llb.Platform(p))
	if err != nil {
		return nil, err
	}
	img.Platform = p
	img.Config.Env = env.ToArray()
	img.Config.WorkingDir = dir
	if conf.user != "" {
		img.Config.User = conf.user
	}
	if conf.entrypoint != nil {
		img.Config.Entrypoint = conf.entrypoint
		if conf.cmd == nil {
			img.Config.Cmd = nil // as in a Dockerfile, a new entrypoint resets the command
		}
	}
	if conf.cmd != nil {
		img.Config.Cmd = conf.cmd
	}
	if len(conf.labels) > 0 {
		if img.Config.Labels == nil {
			img.Config.Labels = map[string]string{}
		}
		for k, v := range conf.labels {
			img.Config.Labels[k] = v
		}
	}
	img.RootFS = ocispecs.RootFS{Type: "layers"}
	img.History = nil
	return json.Marshal(img)
}
