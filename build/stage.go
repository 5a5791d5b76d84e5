package build

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
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
	st       llb.State
	config   imageConfig
	warnings []string
}

// imageConfig is what a Stage adds to the exported image's configuration
// beyond what the llb state carries (env, working dir, user, platform).
type imageConfig struct {
	base       string // the image the stage started from, "" for none
	user       string // set by User; "" keeps the base image's
	entrypoint []string
	cmd        []string
	labels     map[string]string
}

// From wraps any llb.State in a Stage, the way into Larder from raw llb.
// [Stage.State] is the way back.
func From(st llb.State) Stage { return Stage{st: st} }

// State returns the llb.State of s, the way out to raw llb. Errors carried
// by s surface when the returned state is marshalled.
func (s Stage) State() llb.State { return s.st }

// Scratch returns an empty filesystem.
func Scratch() Stage { return Stage{st: llb.Scratch()} }

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
		pl, err := platforms.Parse(p)
		if err != nil {
			return fmt.Errorf("Platform(%q): %v (want os/arch[/variant], such as linux/arm64)", p, err)
		}
		pl = platforms.Normalize(pl)
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
		return check(kind)
	})
}

// Exclude leaves out of a [Local] directory the paths matching these
// patterns, with .dockerignore syntax. The default leaves out nothing.
func Exclude(patterns ...string) SourceOption {
	check := only("Exclude", "local")
	return sourceOptionFunc(func(kind string, o *sourceOptions) error {
		o.exclude = append(o.exclude, patterns...)
		return check(kind)
	})
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
			return fmt.Errorf("Checksum(%q): %v (want sha256:<64 hex digits>)", d, err)
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
		return failed(fmt.Errorf("build: Image(%q): %v (want a reference such as debian:bookworm or host:port/repo:tag)", ref, err))
	}
	ref = reference.TagNameOnly(named).String()
	iopts := []llb.ImageOption{llb.WithMetaResolver(lazyResolver{})}
	if o.platform != nil {
		iopts = append(iopts, llb.Platform(*o.platform))
	}
	return Stage{st: llb.Image(ref, iopts...), config: imageConfig{base: ref}}
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
	return Stage{st: llb.Local(name, lopts...)}
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
	var gopts []llb.GitOption
	if o.keepGitDir {
		gopts = append(gopts, llb.KeepGitDir())
	}
	return Stage{st: llb.Git(remote, ref, gopts...)}
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
	var hopts []llb.HTTPOption
	if o.checksum != "" {
		hopts = append(hopts, llb.Checksum(o.checksum))
	}
	if o.filename != "" {
		hopts = append(hopts, llb.Filename(o.filename))
	}
	return Stage{st: llb.HTTP(url, hopts...)}
}

// failed returns a Stage that reports err when marshalled.
func failed(err error) Stage { return Scratch().withErr(err) }

// withErr returns s carrying err, reported when s or any stage built on it
// is marshalled.
func (s Stage) withErr(err error) Stage {
	s.st = s.st.Async(func(context.Context, llb.State, *llb.Constraints) (llb.State, error) {
		return llb.State{}, err
	})
	return s
}

// Err returns the first mistake s carries, or nil. It resolves nothing on a
// builder, so it is cheap and safe to call before [Solve].
func (s Stage) Err() error {
	_, err := s.st.Marshal(context.Background(), llb.LinuxAmd64)
	return err
}

// Warnings returns what s's steps do that defeats a cache, such as pip's
// --no-cache-dir under the pip preset. [Solve] puts them in its report.
func (s Stage) Warnings() []string { return slices.Clone(s.warnings) }

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
	s.st = s.st.AddEnv(key, value)
	return s
}

// Dir sets the working directory of the following steps and of the exported
// image. A relative dir is joined to the current one. It changes the cache
// key of the following steps.
func (s Stage) Dir(dir string) Stage {
	if dir == "" {
		return s.withErr(errors.New("build: Dir: empty path"))
	}
	s.st = s.st.Dir(dir)
	return s
}

// User sets the user (name, uid, or uid:gid) the following steps and the
// exported image run as. The default is the image's user, else root.
func (s Stage) User(user string) Stage {
	if user == "" {
		return s.withErr(errors.New("build: User: empty user"))
	}
	s.st = s.st.User(user)
	s.config.user = user
	return s
}

// Platform sets the platform of the following steps, such as "linux/arm64".
// The default is the platform of the solve.
func (s Stage) Platform(p string) Stage {
	pl, err := platforms.Parse(p)
	if err != nil {
		return s.withErr(fmt.Errorf("build: Platform(%q): %v (want os/arch[/variant], such as linux/arm64)", p, err))
	}
	s.st = s.st.Platform(platforms.Normalize(pl))
	return s
}

// Entrypoint sets the exported image's entrypoint. It does not change any
// step or cache key.
func (s Stage) Entrypoint(args ...string) Stage {
	s.config.entrypoint = slices.Clone(args)
	return s
}

// Cmd sets the exported image's default command. It does not change any step
// or cache key.
func (s Stage) Cmd(args ...string) Stage {
	s.config.cmd = slices.Clone(args)
	return s
}

// Label sets a label of the exported image. It does not change any step or
// cache key.
func (s Stage) Label(key, value string) Stage {
	labels := make(map[string]string, len(s.config.labels)+1)
	for k, v := range s.config.labels {
		labels[k] = v
	}
	labels[key] = value
	s.config.labels = labels
	return s
}

// Marshal returns the LLB definition of s for platform p (such as
// "linux/amd64"), without contacting a builder: image configurations are not
// resolved, so steps do not see the environment an image sets. It reports
// any mistake s carries.
func (s Stage) Marshal(ctx context.Context, p string) (*llb.Definition, error) {
	pl, err := platforms.Parse(p)
	if err != nil {
		return nil, fmt.Errorf("build: Marshal: platform %q: %v", p, err)
	}
	return s.st.Marshal(ctx, llb.Platform(platforms.Normalize(pl)))
}

// lazyResolver resolves image configurations with the resolver that Solve
// puts in the context, and resolves nothing when there is none.
type lazyResolver struct{}

type resolverKey struct{}

func withResolver(ctx context.Context, r llb.ImageMetaResolver) context.Context {
	return context.WithValue(ctx, resolverKey{}, r)
}

func (lazyResolver) ResolveImageConfig(ctx context.Context, ref string, opt sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	if r, ok := ctx.Value(resolverKey{}).(llb.ImageMetaResolver); ok {
		return r.ResolveImageConfig(ctx, ref, opt)
	}
	return ref, "", []byte("{}"), nil
}
