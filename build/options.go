package build

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/containerd/platforms"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/larder-build/larder/cache"
	"github.com/larder-build/larder/internal/platform"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/sshforward/sshprovider"
	"github.com/moby/buildkit/util/progress/progressui"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

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
	keychain    authn.Keychain    // nil: authn.DefaultKeychain
	mask        *masker           // the secrets' values, made once the options are applied
	outputs     map[string]string // absolute path: the option that writes there
	warnings    []string          // what the session checks found, for the report
	imageOutput bool
	image       imageOptions // annotations, epoch, and what multi-platform tarballs need
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
			return fmt.Errorf("WithLocal(%q, %q): %w (give an existing directory, such as \"./src\")", name, dir, err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("WithLocal(%q, %q): not a directory (give the directory to send, such as \"./src\")", name, dir)
		}
		if o.locals == nil {
			o.locals = map[string]string{}
		}
		if _, dup := o.locals[name]; dup {
			return fmt.Errorf("WithLocal(%q): given twice (give each local name once)", name)
		}
		o.locals[name] = dir
		return nil
	}
}

// WithSecret makes value available to secret mounts with this id. The value
// travels through the client session only: it is never part of the
// definition, a layer or a cache export.
//
// A step can still print it. Everywhere Larder shows a solve's output, the
// value is replaced by "***": in every Progress mode (plain, tty and the
// rawjson stream), in OnEvent's data, in a StepError's Output and message,
// and in the Report's step errors. So is each line of a value of several
// lines, and a value split across two chunks of output. Values (and lines)
// shorter than 4 bytes are not masked, or ordinary output would be. The
// builder's own logs, and what a step writes into the image or a cache,
// are not Larder's to mask.
func WithSecret(id string, value []byte) SolveOption {
	return func(o *solveOptions) error {
		if id == "" {
			return errors.New("WithSecret: empty id (give the id the step's secret mount uses, such as \"npmrc\")")
		}
		if o.secrets == nil {
			o.secrets = map[string][]byte{}
		}
		if _, dup := o.secrets[id]; dup {
			return fmt.Errorf("WithSecret(%q): given twice (give each secret id once)", id)
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
			return fmt.Errorf("WithSecretFile(%q): %w (give a file you can read, or the value with WithSecret)", id, err)
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
			return fmt.Errorf("WithSecretEnv(%q): environment variable %s is not set (set it, or give the value with WithSecret)", id, name)
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
			return fmt.Errorf("WithSSH(%q): no path given and SSH_AUTH_SOCK is not set (give an agent socket or a key file path)", id)
		}
		o.ssh = append(o.ssh, sshprovider.AgentConfig{ID: id, Paths: paths})
		return nil
	}
}

// CacheFrom imports layer cache from each backend before the solve.
func CacheFrom(backends ...cache.Backend) SolveOption {
	return func(o *solveOptions) error {
		for _, b := range backends {
			if b == nil {
				return errors.New("CacheFrom: nil backend (pass one such as cache.Registry(\"host/repo:buildcache\"))")
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
				return errors.New("CacheTo: nil backend (pass one such as cache.Registry(\"host/repo:buildcache\", cache.ModeMax))")
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
			return errors.New("Platforms: no platform (give at least one, such as \"linux/amd64\")")
		}
		for _, p := range ps {
			pl, err := platform.Parse("Platforms", p)
			if err != nil {
				return err
			}
			if slices.ContainsFunc(o.platforms, func(q ocispecs.Platform) bool { return platforms.Format(q) == platforms.Format(pl) }) {
				return fmt.Errorf("Platforms: %s given twice (give each platform once)", platforms.Format(pl))
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
			return errors.New("Progress: nil writer (pass os.Stderr, or leave the option out)")
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
			return errors.New("OnEvent: nil func (pass a func(build.Event), or leave the option out)")
		}
		o.onEvent = append(o.onEvent, fn)
		return nil
	}
}

// WithKeychain sets where every registry credential of the solve comes
// from: the ones the builder asks the client session for (pulling base
// images, pushing, registry cache) and the ones Larder uses itself (pushing
// a multi-platform index, reading and writing persisted cache mounts). The
// default is authn.DefaultKeychain, which reads the Docker configuration
// ($DOCKER_CONFIG, else ~/.docker/config.json) and its credential helpers.
// Combine keychains with authn.NewMultiKeychain. Credentials never change
// a cache key.
func WithKeychain(k authn.Keychain) SolveOption {
	return func(o *solveOptions) error {
		if k == nil {
			return errors.New("WithKeychain: nil keychain (leave the option out for the Docker configuration, or pass authn.DefaultKeychain)")
		}
		o.keychain = k
		return nil
	}
}

// WithoutRegistryAuth offers no registry credentials at all: not to the
// builder, and not to Larder's own registry calls (the index of a
// multi-platform push, persisted cache mounts), whatever [WithKeychain]
// says. Registries are then used anonymously. The default offers the
// keychain's credentials.
func WithoutRegistryAuth() SolveOption {
	return func(o *solveOptions) error {
		o.noAuth = true
		return nil
	}
}

// auth returns the keychain of the solve: anonymous for every registry
// with WithoutRegistryAuth.
func (o *solveOptions) auth() authn.Keychain {
	switch {
	case o.noAuth:
		return anonymous{}
	case o.keychain != nil:
		return o.keychain
	}
	return authn.DefaultKeychain
}

// anonymous is a keychain without credentials.
type anonymous struct{}

func (anonymous) Resolve(authn.Resource) (authn.Authenticator, error) { return authn.Anonymous, nil }
