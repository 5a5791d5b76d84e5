package build

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerui"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	gwpb "github.com/moby/buildkit/frontend/gateway/pb"
	"github.com/moby/buildkit/solver/pb"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// DockerfileOption configures [Dockerfile]. Each option checks its own
// input.
type DockerfileOption func(*dockerfileOptions) error

type dockerfileOptions struct {
	name     string
	args     map[string]string
	target   string
	contexts map[string]Stage
}

// BuildArg sets the build argument name to value, as docker build's
// --build-arg does. It changes the cache key of the steps that use it.
func BuildArg(name, value string) DockerfileOption {
	return func(o *dockerfileOptions) error {
		if !argName.MatchString(name) {
			return fmt.Errorf("BuildArg(%q): want an ARG name of letters, digits and '_', such as \"VERSION\"", name)
		}
		o.args[name] = value
		return nil
	}
}

var argName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Target builds the Dockerfile's stage named stage (FROM … AS stage)
// instead of its last, as docker build's --target does.
func Target(stage string) DockerfileOption {
	return func(o *dockerfileOptions) error {
		if stage == "" {
			return errors.New(`Target(""): empty stage name (give the name of a FROM … AS stage, or leave the option out for the last)`)
		}
		o.target = stage
		return nil
	}
}

// BuildContext makes name, where the Dockerfile uses it in FROM, COPY
// --from or RUN --mount from=, the stage s, as docker buildx's
// --build-context does. The stage is part of the same graph.
func BuildContext(name string, s Stage) DockerfileOption {
	return func(o *dockerfileOptions) error {
		if name == "" || strings.ContainsAny(name, " \t\n:") {
			return fmt.Errorf("BuildContext(%q): want a context name, such as \"src\" or \"alpine\"", name)
		}
		if _, dup := o.contexts[name]; dup {
			return fmt.Errorf("BuildContext(%q): given twice (give each name once)", name)
		}
		o.contexts[name] = s
		return nil
	}
}

// DockerfileName sets the name the Dockerfile goes by in errors, warnings
// and step errors. The default is "Dockerfile".
func DockerfileName(name string) DockerfileOption {
	return func(o *dockerfileOptions) error {
		if name == "" {
			return errors.New(`DockerfileName(""): empty name (give one such as "build/Dockerfile")`)
		}
		o.name = name
		return nil
	}
}

// DockerfileError reports a Dockerfile that does not parse, with where.
type DockerfileError struct {
	// File is the Dockerfile's name, from [DockerfileName].
	File string
	// Line is the line at fault, 1 for the first; 0 when unknown.
	Line int
	// Err is the parser's error.
	Err error
}

// Error names the file and line, then the parser's message.
func (e *DockerfileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("build: %s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("build: %s: %v", e.File, e.Err)
}

// Unwrap returns the parser's error.
func (e *DockerfileError) Unwrap() error { return e.Err }

// dockerfileKey names a Dockerfile stage's image configuration in a
// marshalEnv, where the conversion leaves it.
type dockerfileKey struct{}

// dockerfileResult is what converting a Dockerfile left: the image
// configuration it sets, and the state its configuration was made from.
type dockerfileResult struct {
	image *dockerspec.DockerOCIImage
	state llb.State
}

// Dockerfile returns the stage an existing Dockerfile builds from the build
// context ctxStage (what COPY and ADD read; a [Local] stage, most often).
// BuildKit's own converter (frontend/dockerfile/dockerfile2llb) turns it
// into a graph on the client, each time the stage is marshalled: its FROM
// images are resolved through the builder for the platform the solve
// builds, and the Dockerfile's # syntax= directive is not followed. The
// options set build arguments ([BuildArg]), the stage to build ([Target])
// and named contexts ([BuildContext]); the Dockerfile's secrets and SSH
// mounts are served by the solve's WithSecret and WithSSH.
//
// The result is a Stage like any other: steps can follow it, persisted
// cache mounts keep its RUN --mount=type=cache mounts, and the report names
// each of its steps as the Dockerfile frontend does ("[stage-1 2/3] RUN
// …"). The exported image's configuration is the one the Dockerfile sets
// (CMD, ENTRYPOINT, ENV, USER, WORKDIR, LABEL, EXPOSE, VOLUME, HEALTHCHECK,
// STOPSIGNAL, and its history), under what later steps and settings add. A
// RUN that fails is a [*StepError] naming the Dockerfile's line. A
// Dockerfile that does not parse is a [*DockerfileError], reported before
// any builder is contacted, as are RUN lines that defeat a package
// manager's cache mount (see cache.Preset's Warnings), which go to the
// report's warnings.
func Dockerfile(dockerfile []byte, ctxStage Stage, opts ...DockerfileOption) Stage {
	o := dockerfileOptions{name: "Dockerfile", args: map[string]string{}, contexts: map[string]Stage{}}
	var errs []error
	for i, opt := range opts {
		if opt == nil {
			errs = append(errs, fmt.Errorf("option %d is nil (leave it out)", i+1))
			continue
		}
		if err := opt(&o); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return failed(fmt.Errorf("build: Dockerfile: %w", err))
	}
	checks, err := checkDockerfile(dockerfile, o)
	if err != nil {
		return failed(err)
	}
	dt := bytes.Clone(dockerfile)
	key := &dockerfileKey{}
	n := &node{
		build: func(e *marshalEnv) llb.State {
			return llb.Scratch().Async(func(ctx context.Context, _ llb.State, c *llb.Constraints) (llb.State, error) {
				for id, files := range checks.regenerable {
					e.regenerable[id] = files
				}
				return convertDockerfile(ctx, e, key, dt, ctxStage, o)
			})
		},
		config:   imageConfig{dockerfile: key},
		warnings: checks.warnings,
	}
	var carried []error
	for _, s := range append([]Stage{ctxStage}, mapValues(o.contexts)...) {
		if s.n != nil {
			carried = append(carried, s.n.errs...)
			n.warnings = append(n.warnings, s.n.warnings...)
		}
	}
	st := Stage{n: n}
	if len(carried) > 0 {
		st = st.withErr(carried...)
	}
	return st
}

func mapValues[K comparable, V any](m map[K]V) []V {
	var out []V
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// convertDockerfile converts dt for the marshalling e, and keeps the image
// configuration it sets under key.
func convertDockerfile(ctx context.Context, e *marshalEnv, key *dockerfileKey, dt []byte, ctxStage Stage, o dockerfileOptions) (llb.State, error) {
	c := &dockerfileClient{inputs: map[string]llb.State{"context": ctxStage.state(e)}, opts: map[string]string{}}
	if gc, ok := e.resolver.(gateway.Client); ok {
		c.Client = gc
	}
	for name, s := range o.contexts {
		c.inputs[name] = s.state(e)
		c.opts["context:"+name] = "input:" + name
	}
	bc, err := dockerui.NewClient(c)
	if err != nil {
		return llb.State{}, err
	}
	p := e.platform
	bc.Config.BuildArgs = o.args
	bc.Config.Target = o.target
	bc.Config.TargetPlatforms = []ocispecs.Platform{p}
	if c.Client == nil {
		// BUILDPLATFORM is the builder's worker's; without a builder, the
		// platform the stage is marshalled for.
		bc.Config.BuildPlatforms = []ocispecs.Platform{p}
	}
	var resolver llb.ImageMetaResolver = offlineResolver{}
	if e.resolver != nil {
		resolver = e.resolver
	}
	res, err := dockerfile2llb.Dockerfile2LLB(ctx, dt, dockerfile2llb.ConvertOpt{
		Config:         bc.Config,
		Client:         bc,
		SourceMap:      llb.NewSourceMap(nil, o.name, "Dockerfile", dt),
		TargetPlatform: &p,
		MetaResolver:   resolver,
	})
	if err != nil {
		return llb.State{}, dockerfileError(o.name, err)
	}
	e.dockerfiles[key] = &dockerfileResult{image: res.Image, state: res.State}
	return res.State, nil
}

// dockerfileClient is the gateway client the Dockerfile converter sees: the
// session's, when there is one, with the build context and the named
// contexts as the frontend's inputs.
type dockerfileClient struct {
	gateway.Client // nil when marshalling without a builder
	inputs         map[string]llb.State
	opts           map[string]string
}

func (c *dockerfileClient) BuildOpts() gateway.BuildOpts {
	var bo gateway.BuildOpts
	if c.Client != nil {
		bo = c.Client.BuildOpts()
	} else {
		bo.LLBCaps = pb.Caps.CapSet(pb.Caps.All())
		bo.Caps = gwpb.Caps.CapSet(gwpb.Caps.All())
	}
	bo.Opts = c.opts
	return bo
}

func (c *dockerfileClient) Inputs(context.Context) (map[string]llb.State, error) {
	return c.inputs, nil
}

// offlineResolver answers the converter when a stage is marshalled without
// a builder: an image's configuration is not resolved, as for Image.
type offlineResolver struct{}

func (offlineResolver) ResolveImageConfig(_ context.Context, ref string, opt sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	img := ocispecs.Image{Platform: ocispecs.Platform{OS: "linux", Architecture: "amd64"}}
	if opt.ImageOpt != nil && opt.ImageOpt.Platform != nil {
		img.Platform = *opt.ImageOpt.Platform
	}
	b, err := json.Marshal(img)
	return ref, "", b, err
}

// dockerfileError returns err with the Dockerfile's name and line, when the
// parser says where.
func dockerfileError(file string, err error) error {
	var le *parser.LocationError
	if errors.As(err, &le) && len(le.Locations) > 0 && len(le.Locations[0]) > 0 {
		return &DockerfileError{File: file, Line: le.Locations[0][0].Start.Line, Err: err}
	}
	return &DockerfileError{File: file, Err: err}
}

// checkDockerfile parses dt as BuildKit's converter does, and reads its RUN
// lines' cache mounts.
func checkDockerfile(dt []byte, o dockerfileOptions) (dockerfileChecks, error) {
	if len(bytes.TrimSpace(dt)) == 0 {
		return dockerfileChecks{}, &DockerfileError{File: o.name, Err: errors.New("the Dockerfile is empty (give its content, such as os.ReadFile(\"Dockerfile\"))")}
	}
	ast, err := parser.Parse(bytes.NewReader(dt))
	if err != nil {
		return dockerfileChecks{}, dockerfileError(o.name, err)
	}
	stages, _, err := instructions.Parse(ast.AST, nil)
	if err != nil {
		return dockerfileChecks{}, dockerfileError(o.name, err)
	}
	if len(stages) == 0 {
		return dockerfileChecks{}, &DockerfileError{File: o.name, Err: errors.New("no FROM: a Dockerfile starts its first stage with FROM")}
	}
	if o.target != "" && !slices.ContainsFunc(stages, func(s instructions.Stage) bool { return strings.EqualFold(s.Name, o.target) }) {
		var names []string
		for _, s := range stages {
			if s.Name != "" {
				names = append(names, s.Name)
			}
		}
		return dockerfileChecks{}, &DockerfileError{File: o.name, Err: fmt.Errorf("Target(%q): no stage of that name (the stages are %s)", o.target, strings.Join(names, ", "))}
	}
	var c dockerfileChecks
	for _, s := range stages {
		for _, cmd := range s.Commands {
			run, ok := cmd.(*instructions.RunCommand)
			if !ok {
				continue
			}
			line := 0
			if loc := run.Location(); len(loc) > 0 {
				line = loc[0].Start.Line
			}
			caches := runCaches(run)
			for _, w := range runWarnings(run, caches) {
				c.warnings = append(c.warnings, fmt.Sprintf("%s:%d: %s", o.name, line, w))
			}
			for id, files := range regenerable(caches) {
				if c.regenerable == nil {
					c.regenerable = map[string][]string{}
				}
				c.regenerable[id] = files
			}
		}
	}
	return c, nil
}

// dockerfileChecks is what Larder reads from a Dockerfile's RUN lines.
type dockerfileChecks struct {
	// warnings are what the lines do that defeats a cache mount.
	warnings []string
	// regenerable lists, per cache id, the files persistence leaves out.
	regenerable map[string][]string
}
