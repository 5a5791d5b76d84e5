package build

import (
	"context"
	"errors"
	"fmt"
	neturl "net/url"
	"slices"
	"strings"

	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/patternmatcher"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/larder-build/larder/internal/platform"
	"github.com/larder-build/larder/mounts"
)

// Stage is one state of a build graph: a source, or a source with steps
// applied. Stages are immutable: every method returns a new Stage and leaves
// its receiver unchanged, so a Stage can be shared and branched freely. The
// zero Stage is an empty filesystem, like [Scratch].
//
// Mistakes found while building a Stage (a malformed reference, a relative
// mount target) do not panic and do not return errors from each method:
// they are carried in the Stage and reported by [Solve] or [Stage.Marshal],
// before any daemon is contacted.
type Stage struct {
	n *node // nil for the zero Stage, an empty filesystem
}

// node is one stage's recipe. A Stage is a recipe rather than an llb.State
// because llb resolves an image's configuration once per state and keeps the
// first answer: each solve, and each platform of a solve, needs states of its
// own, resolved on its builder. build makes them; marshalEnv memoises them
// per node, so a graph that shares stages stays a DAG.
type node struct {
	build    func(e *marshalEnv) llb.State
	config   imageConfig
	warnings []string
	errs     []error // mistakes found while building the stage, oldest first
}

// marshalEnv is one marshalling of a graph.
type marshalEnv struct {
	// ctx is the marshalling's context: reading an image's users through
	// the builder stops when it is done.
	ctx      context.Context
	resolver llb.ImageMetaResolver // nil: image configurations are not resolved
	platform ocispecs.Platform     // the platform the graph is marshalled for
	memo     map[*node]llb.State
	// regenerable lists, per cache id, the files in the cache that its
	// preset says the tool rebuilds on its own; persistence leaves them out.
	regenerable map[string][]string
	// dockerfiles holds the image configuration of each Dockerfile stage
	// converted in this marshalling.
	dockerfiles map[*dockerfileKey]*dockerfileResult
	// accounts holds the users and groups of the images read so far.
	accounts map[*node]*accounts
	// warnings are what the marshalling found for the report.
	warnings []string
}

func newMarshalEnv(ctx context.Context, r llb.ImageMetaResolver, p ocispecs.Platform) *marshalEnv {
	return &marshalEnv{ctx: ctx, resolver: r, platform: p, memo: map[*node]llb.State{}, regenerable: map[string][]string{},
		dockerfiles: map[*dockerfileKey]*dockerfileResult{}, accounts: map[*node]*accounts{}}
}

// warn adds msg to the marshalling's warnings, once.
func (e *marshalEnv) warn(msg string) {
	if !slices.Contains(e.warnings, msg) {
		e.warnings = append(e.warnings, msg)
	}
}

// noteCaches records the regenerable files of the cache mounts among ms.
func (e *marshalEnv) noteCaches(ms []mounts.Mount) {
	for _, m := range ms {
		cm, ok := m.(*mounts.CacheMount)
		if !ok {
			continue
		}
		for _, f := range cm.Regenerable() {
			if !slices.Contains(e.regenerable[cm.ID()], f) {
				e.regenerable[cm.ID()] = append(e.regenerable[cm.ID()], f)
			}
		}
	}
}

// state returns s's llb.State in e.
func (s Stage) state(e *marshalEnv) llb.State {
	if s.n == nil {
		return llb.Scratch()
	}
	if st, ok := e.memo[s.n]; ok {
		return st
	}
	st := s.n.build(e)
	e.memo[s.n] = st
	return st
}

// derive returns a Stage whose state is f of s's, with s's image
// configuration and warnings.
func (s Stage) derive(f func(e *marshalEnv, st llb.State) llb.State) Stage {
	n := &node{build: func(e *marshalEnv) llb.State { return f(e, s.state(e)) }}
	if s.n != nil {
		n.config = s.n.config
		n.warnings = s.n.warnings
		n.errs = s.n.errs
	}
	return Stage{n: n}
}

// From wraps any llb.State in a Stage, the way into Larder from raw llb.
// [Stage.State] is the way back.
func From(st llb.State) Stage {
	return Stage{n: &node{build: func(*marshalEnv) llb.State { return st }, config: imageConfig{rawLayers: true}}}
}

// source returns the Stage of a source that is one layer, made by
// createdBy, when it is the image's root.
func source(st llb.State, createdBy string) Stage {
	return Stage{n: &node{build: func(*marshalEnv) llb.State { return st },
		config: imageConfig{history: []historyEntry{{createdBy: createdBy, layer: true}}}}}
}

// State returns an llb.State of s for linux/amd64, the way out to raw llb.
// Image configurations in it are not resolved: steps after an [Image] see
// only the environment set with [Stage.Env], as with [Stage.Marshal].
// Presets name their caches for linux/amd64 unless a step sets another
// platform. Mistakes s carries surface when the returned state is
// marshalled. Each call returns a new state.
func (s Stage) State() llb.State {
	return s.state(newMarshalEnv(context.Background(), nil, defaultPlatform))
}

// marshalLocalID pins the unique id of local sources in Marshal, which llb
// otherwise makes random, so that a definition does not depend on the run.
const marshalLocalID = "larder"

// defaultPlatform is the platform State and Err marshal for.
var defaultPlatform = ocispecs.Platform{OS: "linux", Architecture: "amd64"}

// Scratch returns an empty filesystem.
func Scratch() Stage { return Stage{} }

// SourceOption configures a source: [Image], [Local], [Git] or [HTTP]. Each
// option documents which sources take it; giving it to another is an error
// reported by Solve.
type SourceOption interface {
	applySource(kind string, o *sourceOptions) error
}

type sourceOptionFunc func(kind string, o *sourceOptions) error

func (f sourceOptionFunc) applySource(kind string, o *sourceOptions) error { return f(kind, o) }

type sourceOptions struct {
	platform   *ocispecs.Platform
	include    []string
	exclude    []string
	keepGitDir bool
	checksum   digest.Digest
	filename   string
}

func only(name string, kinds ...string) func(kind string) error {
	return func(kind string) error {
		if !slices.Contains(kinds, kind) {
			return fmt.Errorf("%s does not apply to %s sources (it applies to %s)", name, kind, strings.Join(kinds, ", "))
		}
		return nil
	}
}

// Platform sets the platform an [Image] is pulled for, such as "linux/arm64".
// The default is the platform of the solve. It changes the cache key.
func Platform(p string) SourceOption {
	check := only("Platform", "image")
	return sourceOptionFunc(func(kind string, o *sourceOptions) error {
		if err := check(kind); err != nil {
			return err
		}
		pl, err := platform.Parse("Platform", p)
		if err != nil {
			return err
		}
		o.platform = &pl
		return nil
	})
}

// Include limits a [Local] directory to the paths matching these patterns
// (as in .dockerignore, without the negation). The default sends everything.
func Include(patterns ...string) SourceOption {
	check := only("Include", "local")
	return sourceOptionFunc(func(kind string, o *sourceOptions) error {
		o.include = append(o.include, patterns...)
		return errors.Join(check(kind), checkPatterns("Include", patterns))
	})
}

// Exclude leaves out of a [Local] directory the paths matching these
// patterns, with .dockerignore syntax. The default leaves out nothing.
func Exclude(patterns ...string) SourceOption {
	check := only("Exclude", "local")
	return sourceOptionFunc(func(kind string, o *sourceOptions) error {
		o.exclude = append(o.exclude, patterns...)
		return errors.Join(check(kind), checkPatterns("Exclude", patterns))
	})
}

// checkPatterns reports the patterns of the option fn that .dockerignore's
// matcher can't read.
func checkPatterns(fn string, patterns []string) error {
	var errs []error
	for _, p := range patterns {
		if _, err := patternmatcher.New([]string{p}); err != nil || p == "" {
			errs = append(errs, fmt.Errorf("%s(%q): not a pattern (want .dockerignore syntax, such as \"*.go\" or \"src/**\")", fn, p))
		}
	}
	return errors.Join(errs...)
}

// KeepGitDir keeps the .git directory of a [Git] checkout. The default
// removes it. It changes the cache key.
func KeepGitDir() SourceOption {
	check := only("KeepGitDir", "git")
	return sourceOptionFunc(func(kind string, o *sourceOptions) error {
		o.keepGitDir = true
		return check(kind)
	})
}

// Checksum makes an [HTTP] source fail unless its content has digest d
// ("sha256:…"). The default checks nothing.
func Checksum(d string) SourceOption {
	check := only("Checksum", "http")
	return sourceOptionFunc(func(kind string, o *sourceOptions) error {
		if err := check(kind); err != nil {
			return err
		}
		dg, err := digest.Parse(d)
		if err != nil {
			return fmt.Errorf("Checksum(%q): %w (want sha256:<64 hex digits>)", d, err)
		}
		o.checksum = dg
		return nil
	})
}

// Filename names the file an [HTTP] source writes. The default is the last
// element of the URL's path.
func Filename(name string) SourceOption {
	check := only("Filename", "http")
	return sourceOptionFunc(func(kind string, o *sourceOptions) error {
		if err := check(kind); err != nil {
			return err
		}
		if name == "" || strings.Contains(name, "/") {
			return fmt.Errorf("Filename(%q): want a plain file name", name)
		}
		o.filename = name
		return nil
	})
}

func applySources(kind string, opts []SourceOption) (sourceOptions, error) {
	var o sourceOptions
	var errs []error
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt.applySource(kind, &o); err != nil {
			errs = append(errs, err)
		}
	}
	return o, errors.Join(errs...)
}

// Image returns the root filesystem of the image ref, such as
// "debian:bookworm" or "registry.example.com/team/base@sha256:…". Its
// environment, working directory and user come from the image's
// configuration, resolved on the builder during [Solve]. It takes
// [Platform].
func Image(ref string, opts ...SourceOption) Stage {
	o, err := applySources("image", opts)
	if err != nil {
		return failed(fmt.Errorf("build: Image(%q): %w", ref, err))
	}
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return failed(fmt.Errorf("build: Image(%q): %w (want a reference such as debian:bookworm or host:port/repo:tag)", ref, err))
	}
	ref = reference.TagNameOnly(named).String()
	platform := o.platform
	s := Stage{n: &node{
		build: func(e *marshalEnv) llb.State {
			var iopts []llb.ImageOption
			if platform != nil {
				iopts = append(iopts, llb.Platform(*platform))
			}
			if e.resolver != nil {
				// Resolve the configuration, and pin the digest the
				// builder resolved, as the Dockerfile frontend does.
				iopts = append(iopts, llb.WithMetaResolver(e.resolver), llb.ResolveDigest(true))
			}
			return llb.Image(ref, iopts...)
		},
		config: imageConfig{base: ref, platform: platform, basePlatform: platform},
	}}
	s.n.config.root = s.n
	return s
}

// Local returns the directory that the client session sends under name;
// [Solve] takes the directory with [WithLocal]. It takes [Include] and
// [Exclude]. Its content, not its path on the client, makes the cache key.
func Local(name string, opts ...SourceOption) Stage {
	o, err := applySources("local", opts)
	if err != nil {
		return failed(fmt.Errorf("build: Local(%q): %w", name, err))
	}
	if err := checkLocalName(name); err != nil {
		return failed(fmt.Errorf("build: Local(%q): %w", name, err))
	}
	lopts := []llb.LocalOption{llb.SharedKeyHint(name)}
	if len(o.include) > 0 {
		lopts = append(lopts, llb.IncludePatterns(o.include))
	}
	if len(o.exclude) > 0 {
		lopts = append(lopts, llb.ExcludePatterns(o.exclude))
	}
	return source(llb.Local(name, lopts...), "LOCAL "+name)
}

func checkLocalName(name string) error {
	if name == "" {
		return errors.New("empty name (name the directory, such as \"src\")")
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("name may hold only letters, digits, '-', '_' and '.', not %q", r)
		}
	}
	return nil
}

// Git returns a checkout of ref (a branch, tag or commit; "" for the default
// branch) of the repository at remote, such as
// "https://github.com/moby/buildkit.git". It takes [KeepGitDir].
func Git(remote, ref string, opts ...SourceOption) Stage {
	o, err := applySources("git", opts)
	if err != nil {
		return failed(fmt.Errorf("build: Git(%q): %w", remote, err))
	}
	if remote == "" {
		return failed(errors.New("build: Git: empty remote (want a URL such as https://host/repo.git)"))
	}
	if !gitRemote(remote) {
		return failed(fmt.Errorf("build: Git(%q): not a git remote (want an https://, http://, ssh:// or git:// URL, or user@host:path)", remote))
	}
	var gopts []llb.GitOption
	if o.keepGitDir {
		gopts = append(gopts, llb.KeepGitDir())
	}
	return source(llb.Git(remote, ref, gopts...), "GIT "+redactURL(remote)+" "+ref)
}

// gitRemote reports whether remote is a URL or an scp-like address that
// git reads.
func gitRemote(remote string) bool {
	if u, err := neturl.Parse(remote); err == nil && u.Host != "" {
		switch u.Scheme {
		case "https", "http", "ssh", "git":
			return true
		}
		return false
	}
	// user@host:path, as git's scp-like syntax.
	at := strings.Index(remote, "@")
	colon := strings.Index(remote, ":")
	return at > 0 && colon > at+1 && colon < len(remote)-1 && !strings.ContainsAny(remote[:colon], "/ ")
}

// HTTP returns a directory holding the file downloaded from url. It takes
// [Checksum] and [Filename].
func HTTP(url string, opts ...SourceOption) Stage {
	o, err := applySources("http", opts)
	if err != nil {
		return failed(fmt.Errorf("build: HTTP(%q): %w", url, err))
	}
	if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
		return failed(fmt.Errorf("build: HTTP(%q): want an http:// or https:// URL", url))
	}
	if u, err := neturl.Parse(url); err != nil || u.Host == "" {
		return failed(fmt.Errorf("build: HTTP(%q): want an http:// or https:// URL with a host, such as https://example.com/tool.tgz", url))
	}
	var hopts []llb.HTTPOption
	if o.checksum != "" {
		hopts = append(hopts, llb.Checksum(o.checksum))
	}
	if o.filename != "" {
		hopts = append(hopts, llb.Filename(o.filename))
	}
	return source(llb.HTTP(url, hopts...), "ADD "+redactURL(url))
}

// failed returns a Stage that reports err when marshalled.
func failed(err error) Stage { return Scratch().withErr(err) }

// withErr returns s carrying err besides the mistakes it carries already.
// They are reported together when s, or any stage built on it, is
// marshalled.
func (s Stage) withErr(errs ...error) Stage {
	var all []error
	if s.n != nil {
		all = slices.Clip(s.n.errs)
	}
	for _, err := range errs {
		if err != nil && !slices.Contains(all, err) {
			all = append(all, err)
		}
	}
	joined := errors.Join(all...)
	s = s.derive(func(_ *marshalEnv, st llb.State) llb.State {
		return st.Async(func(context.Context, llb.State, *llb.Constraints) (llb.State, error) {
			return llb.State{}, joined
		})
	})
	s.n.errs = all
	return s
}

// Err returns the mistakes s carries, or nil. It contacts no builder, so it
// is cheap and safe to call before [Solve].
func (s Stage) Err() error {
	if err := s.mistakes(); err != nil {
		return err
	}
	_, err := s.Marshal(context.Background(), platforms.Format(defaultPlatform))
	return err
}

// mistakes returns the mistakes found while s was built, without
// marshalling: those of raw llb states and mounts surface in Marshal.
func (s Stage) mistakes() error {
	if s.n == nil {
		return nil
	}
	return errors.Join(s.n.errs...)
}

// Warnings returns what s's steps do that defeats a cache, such as pip's
// --no-cache-dir under the pip preset. [Solve] puts them in its report.
func (s Stage) Warnings() []string {
	if s.n == nil {
		return nil
	}
	return slices.Clone(s.n.warnings)
}

// With applies fns to s in order, so that steps a user packages as a
// function compose like the built-in ones.
func (s Stage) With(fns ...func(Stage) Stage) Stage {
	for _, fn := range fns {
		s = fn(s)
	}
	return s
}

// Env sets the environment variable key to value for the following steps and
// in the exported image. It changes the cache key of the following steps.
func (s Stage) Env(key, value string) Stage {
	if key == "" || strings.ContainsAny(key, "= \t\n") {
		return s.withErr(fmt.Errorf("build: Env(%q): want a variable name without '=' or spaces", key))
	}
	return s.derive(func(_ *marshalEnv, st llb.State) llb.State { return st.AddEnv(key, value) }).
		recorded(historyEntry{createdBy: "ENV " + key + "=" + value})
}

// Dir sets the working directory of the following steps and of the exported
// image. A relative dir is joined to the current one. It changes the cache
// key of the following steps.
func (s Stage) Dir(dir string) Stage {
	if dir == "" {
		return s.withErr(errors.New("build: Dir: empty path (give the working directory, such as \"/src\")"))
	}
	return s.derive(func(_ *marshalEnv, st llb.State) llb.State { return st.Dir(dir) }).
		recorded(historyEntry{createdBy: "WORKDIR " + dir})
}

// User sets the user (name, uid, or uid:gid) the following steps and the
// exported image run as. The default is the image's user, else root.
func (s Stage) User(user string) Stage {
	if user == "" {
		return s.withErr(errors.New("build: User: empty user (give a name, uid or uid:gid, such as \"app\" or \"1000:1000\")"))
	}
	s = s.derive(func(_ *marshalEnv, st llb.State) llb.State { return st.User(user) }).
		recorded(historyEntry{createdBy: "USER " + user})
	s.n.config.user = user
	return s
}

// Platform sets the platform of the following steps, such as "linux/arm64".
// The default is the platform of the solve.
func (s Stage) Platform(p string) Stage {
	pl, err := platform.Parse("Platform", p)
	if err != nil {
		return s.withErr(fmt.Errorf("build: %w", err))
	}
	s = s.derive(func(_ *marshalEnv, st llb.State) llb.State { return st.Platform(pl) })
	s.n.config.platform = &pl
	return s
}

// Marshal returns the LLB definition of s for platform p (such as
// "linux/amd64"), without contacting a builder: image configurations are not
// resolved, so steps do not see the environment an image sets. The same
// stage and platform give a byte-identical definition. It reports any
// mistake s carries.
func (s Stage) Marshal(ctx context.Context, p string) (*llb.Definition, error) {
	pl, err := platform.Parse("Marshal", p)
	if err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	return s.state(newMarshalEnv(ctx, nil, pl)).Marshal(ctx, llb.Platform(pl), llb.LocalUniqueID(marshalLocalID))
}

// redactURL returns u without the user information of a URL, which can
// hold a token, for the image's history.
func redactURL(u string) string {
	p, err := neturl.Parse(u)
	if err != nil || p.Host == "" || p.User == nil {
		return u
	}
	p.User = nil
	return p.String()
}
