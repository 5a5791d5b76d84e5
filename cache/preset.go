package cache

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/moby/buildkit/client/llb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/larder-build/larder/mounts"
)

// Preset is the cache setup of one package manager for a build step: its
// cache directories, the environment that points the tool at them, and the
// files it shows the step (the apt preset's configuration). Apt, Pip, Npm,
// Go and Cargo make one. Presets are immutable values, safe for concurrent
// use; For returns a new Preset and leaves its receiver unchanged.
//
// A Preset is an llb.RunOption: the build package's Run takes it like a
// mount, and so does a raw llb.State.Run.
//
// Everything a preset adds to a step is part of the step's definition. Of
// that, the mount targets, the owner of the caches (Owner), the files and
// the environment variables are part of the step's cache key: changing them
// runs the step again. The cache ids and sharing modes are not: BuildKit
// leaves them out of a step's cache key, so Project, Sharing,
// AcrossPlatforms and the platform part of the ids decide which cache a step
// uses when it runs, not whether it runs. (The platform of the step is part
// of its key in its own right.) The contents of the caches never are.
//
// Each cache's id is
//
//	larder/<project>/<tool>/<target without its leading slash>@<os>/<arch>[/<variant>]
//
// for example "larder/default/apt/var/cache/apt@linux/amd64", so that two
// projects, two tools or two platforms never share a cache. AcrossPlatforms
// leaves the "@<platform>" part out for caches whose contents do not depend
// on the platform. A Preset learns the platform of its step from the build
// package, which calls ForPlatform; see SetRunOption for raw llb.
//
// The zero Preset and a nil *Preset are not usable: Validate reports them.
type Preset struct {
	tool     string
	project  string
	platform *ocispecs.Platform // bound by For; nil: see SetRunOption
	home     string
	caches   []presetCache
	owner    *[2]int
	env      []envVar // sorted by name
	files    []File
	warn     func(*Preset, []shellCommand) []string
	errs     []error
}

// presetCache is a cache directory of a Preset before its id is made.
type presetCache struct {
	target         string
	sharing        mounts.SharingMode
	acrossPlatform bool
	regenerable    []string
}

type envVar struct{ name, value string }

// CacheDir describes one cache directory a Preset mounts, as plain data.
type CacheDir struct {
	// Target is the absolute path where the cache appears in the step.
	Target string
	// ID is the cache's id on the builder: steps and builds that mount the
	// same id share the cache.
	ID string
	// Sharing says how steps that run at the same time use the cache.
	Sharing mounts.SharingMode
	// Regenerable lists files in the cache, relative to Target, that the
	// tool rebuilds on its own from the rest of the cache when they are
	// missing, such as apt's pkgcache.bin. build.PersistCacheMounts leaves
	// them out of the artifacts it saves when the preset is an option of a
	// build step (Run or RunArgs); on raw llb it cannot tell them.
	Regenerable []string
}

// File is a read-only file a Preset shows a step, mounted over Path. It is
// never part of the step's result: the image keeps whatever file it has at
// Path, or none.
type File struct {
	// Path is the absolute path of the file in the step.
	Path string
	// Content is what the step reads at Path.
	Content string
}

var (
	_ llb.RunOption = (*Preset)(nil)
	// build.Stage.Run looks for these methods on its options.
	_ interface {
		Validate() error
		Targets() []string
		Warnings(args []string) []string
		ForPlatform(p ocispecs.Platform) llb.RunOption
	} = (*Preset)(nil)
)

// Tool returns the package manager the preset is for: "apt", "pip", "npm",
// "go" or "cargo"; "" for the zero Preset.
func (p *Preset) Tool() string {
	if p == nil {
		return ""
	}
	return p.tool
}

// Project returns the namespace of the preset's cache ids, set with Project;
// DefaultProject when none was given.
func (p *Preset) Project() string {
	if p == nil {
		return ""
	}
	return p.project
}

// Platform returns the platform the preset names its caches for, such as
// "linux/arm64", or "" when it has none: a preset from Apt, Pip, Npm, Go or
// Cargo has none until For or ForPlatform gives it one.
func (p *Preset) Platform() string {
	if p == nil || p.platform == nil {
		return ""
	}
	return platformString(*p.platform)
}

// For returns a copy of p that names its caches for the platform pl, as
// build steps for pl use it; a copy of a preset that has a platform takes
// pl instead. For an unusable pl (no OS or architecture) the copy's
// Validate reports the problem. The platform is part of each cache id,
// except for the caches AcrossPlatforms names; like the ids, it is not part
// of the step's cache key.
func (p *Preset) For(pl ocispecs.Platform) *Preset {
	if p == nil {
		return nil
	}
	q := *p
	n := normalizePlatform(pl)
	q.platform = &n
	return &q
}

// ForPlatform is For as an llb.RunOption: the build package calls it with
// the platform of each step that takes the preset, and adds the result to
// the step instead of p. The result is a *Preset.
func (p *Preset) ForPlatform(pl ocispecs.Platform) llb.RunOption {
	return p.For(pl)
}

// Caches returns the preset's cache directories, in the order they are
// mounted, with their ids for the preset's platform (none when Platform is
// ""). Each call returns a new slice.
func (p *Preset) Caches() []CacheDir {
	if p == nil {
		return nil
	}
	out := make([]CacheDir, 0, len(p.caches))
	for _, c := range p.caches {
		out = append(out, CacheDir{Target: c.target, ID: p.cacheID(c), Sharing: c.sharing, Regenerable: slices.Clone(c.regenerable)})
	}
	return out
}

// cacheID is the id of c for p's project, tool and platform.
func (p *Preset) cacheID(c presetCache) string {
	id := "larder/" + p.project + "/" + p.tool + c.target
	if p.platform != nil && !c.acrossPlatform {
		id += "@" + platformString(*p.platform)
	}
	return id
}

// Env returns the environment variables the preset sets for its step, as
// "NAME=value", sorted by name. They are set for that step only, not in the
// image, and they are part of the step's cache key. Each call returns a new
// slice.
func (p *Preset) Env() []string {
	if p == nil {
		return nil
	}
	out := make([]string, 0, len(p.env))
	for _, e := range p.env {
		out = append(out, e.name+"="+e.value)
	}
	return out
}

// Files returns the read-only files the preset mounts into its step. Only
// the apt preset has any. Each call returns a new slice.
func (p *Preset) Files() []File {
	if p == nil {
		return nil
	}
	return slices.Clone(p.files)
}

// Targets returns the paths of every mount the preset adds to a step:
// its cache directories, then its files. A step may mount each path once,
// so another mount or preset on one of them is an error in the build
// package.
func (p *Preset) Targets() []string {
	if p == nil {
		return nil
	}
	out := make([]string, 0, len(p.caches)+len(p.files))
	for _, c := range p.caches {
		out = append(out, c.target)
	}
	for _, f := range p.files {
		out = append(out, f.Path)
	}
	return out
}

// Mounts returns the mounts the preset adds to a step, as the mounts
// package makes them: a *mounts.CacheMount for each cache directory, with
// the ids Caches reports, then a read-only bind mount for each file. They
// are what SetRunOption adds (after the platform is settled), so their
// String shows the preset as RUN --mount flags. Each call returns new
// values.
func (p *Preset) Mounts() []mounts.Mount {
	if p == nil {
		return nil
	}
	out := make([]mounts.Mount, 0, len(p.caches)+len(p.files))
	for _, c := range p.caches {
		opts := []mounts.CacheOption{mounts.ID(p.cacheID(c)), mounts.Sharing(c.sharing)}
		if p.owner != nil {
			opts = append(opts, mounts.Owner(p.owner[0], p.owner[1]))
		}
		out = append(out, mounts.Cache(c.target, opts...))
	}
	if len(p.files) > 0 {
		src := mounts.Named("larder-"+p.tool+"-files", mounts.FromState(filesState(p.files)))
		for _, f := range p.files {
			out = append(out, mounts.Bind(f.Path, src, mounts.SourcePath(fileSource(f.Path))))
		}
	}
	return out
}

// filesState is a scratch filesystem holding each file at the path
// fileSource gives it.
func filesState(files []File) llb.State {
	var fa *llb.FileAction
	for _, f := range files {
		if fa == nil {
			fa = llb.Mkfile(fileSource(f.Path), 0o644, []byte(f.Content))
		} else {
			fa = fa.Mkfile(fileSource(f.Path), 0o644, []byte(f.Content))
		}
	}
	return llb.Scratch().File(fa, llb.WithCustomName("[larder] preset files"))
}

// fileSource is where a preset file lives in filesState: its path with
// slashes made into dashes, so that every file sits at the root.
func fileSource(p string) string {
	return "/" + strings.ReplaceAll(strings.TrimPrefix(p, "/"), "/", "-")
}

// Validate returns nil when the preset is usable, and otherwise every
// problem with it (a bad option value, an option naming a path that is not
// one of the preset's caches, two caches on one path), each an *Error whose
// Option names the option at fault.
func (p *Preset) Validate() error {
	if p == nil || p.tool == "" {
		return &Error{Reason: "preset is nil or zero; make one with Apt, Pip, Npm, Go or Cargo"}
	}
	errs := slices.Clone(p.errs)
	if p.platform != nil && (p.platform.OS == "" || p.platform.Architecture == "") {
		errs = append(errs, &Error{Option: "ForPlatform", Value: platformString(*p.platform),
			Reason: fmt.Sprintf("the %s preset was given a platform without an OS or an architecture; give one such as linux/amd64", p.tool)})
	}
	return joinErrs(errs)
}

// SetRunOption adds the preset's mounts and environment to a step. When
// the preset is not usable it adds nothing and makes the step fail to
// marshal with the error Validate returns.
//
// A preset that For or ForPlatform did not give a platform takes the one
// the step's constraints hold at this point, which llb.Platform (or
// llb.LinuxArm64 and the like) given to Run before the preset sets. When
// there is none, the ids have no platform part, and every platform the graph
// is marshalled for shares the caches: llb settles a step's platform only
// when the graph is marshalled, after its options are applied. The build
// package always gives presets the platform of their step.
func (p *Preset) SetRunOption(ei *llb.ExecInfo) {
	if err := p.Validate(); err != nil {
		ei.State = ei.State.Async(func(ctx context.Context, _ llb.State, _ *llb.Constraints) (llb.State, error) {
			return llb.State{}, err
		})
		return
	}
	q := p
	if q.platform == nil && ei.Constraints.Platform != nil {
		q = p.For(*ei.Constraints.Platform)
	}
	for _, m := range q.Mounts() {
		m.SetRunOption(ei)
	}
	for _, e := range q.env {
		ei.State = ei.State.AddEnv(e.name, e.value)
	}
}

// Warnings returns what the command args does that defeats the preset's
// caches, one message each: pip's --no-cache-dir under the pip preset,
// emptying /var/lib/apt/lists under the apt preset, `npm cache clean`,
// `go clean -modcache`, `cargo clean`, deleting a cache directory with rm,
// or pointing the tool at another cache with an environment variable. args
// is the step's argv; a shell's -c script (["/bin/sh", "-c", "…"]) is read
// command by command, through &&, ;, pipes and nested sh -c. Warnings reads
// commands as written and does not expand variables other than the preset's
// own and HOME; it never changes the step.
func (p *Preset) Warnings(args []string) []string {
	if p == nil || p.tool == "" || len(args) == 0 {
		return nil
	}
	vars := map[string]string{"HOME": p.home}
	for _, e := range p.env {
		vars[e.name] = e.value
	}
	cmds := commandsOf(args, vars)
	var out []string
	add := func(msg string) {
		if !slices.Contains(out, msg) {
			out = append(out, msg)
		}
	}
	for _, msg := range p.rmWarnings(cmds) {
		add(msg)
	}
	for _, msg := range p.envWarnings(cmds) {
		add(msg)
	}
	if p.warn != nil {
		for _, msg := range p.warn(p, cmds) {
			add(msg)
		}
	}
	return out
}

// rmWarnings reports rm commands that delete a cache directory or what is
// in it.
func (p *Preset) rmWarnings(cmds []shellCommand) []string {
	var out []string
	for _, c := range cmds {
		if c.name() != "rm" {
			continue
		}
		recursive := false
		var operands []string
		flags := true
		for _, a := range c.args[1:] {
			switch {
			case flags && a == "--":
				flags = false
			case flags && strings.HasPrefix(a, "--"):
				if a == "--recursive" {
					recursive = true
				}
			case flags && strings.HasPrefix(a, "-") && len(a) > 1:
				if strings.ContainsAny(a[1:], "rR") {
					recursive = true
				}
			default:
				operands = append(operands, a)
			}
		}
		for _, op := range operands {
			dir, ok := globDir(op)
			if !ok {
				continue
			}
			for _, cd := range p.caches {
				inside := within(dir, cd.target) && (dir != cd.target || recursive || dir != path.Clean(op))
				if inside || (recursive && within(cd.target, dir) && dir != cd.target) {
					out = append(out, fmt.Sprintf("%s preset: %q deletes what the cache at %s holds; the cache is not part of the image, so this saves no space and the next build downloads it again: leave it out",
						p.tool, c.text(), cd.target))
					break
				}
			}
		}
	}
	return out
}

// envWarnings reports commands that point the tool at another cache than
// the preset's, through one of the variables the preset sets.
func (p *Preset) envWarnings(cmds []shellCommand) []string {
	var out []string
	for _, c := range cmds {
		for _, a := range c.assigns {
			for _, e := range p.env {
				if a.name == e.name && path.Clean(a.value) != e.value {
					out = append(out, fmt.Sprintf("%s preset: %s=%s points %s away from the preset's cache at %s, so the cache saves nothing: leave it out",
						p.tool, a.name, a.value, p.tool, e.value))
				}
			}
		}
	}
	return out
}

// within reports whether the clean absolute path p is dir or inside it.
func within(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

// globDir returns the directory an rm operand names, up to its first
// element with a wildcard, and false for a relative operand, which depends
// on the working directory.
func globDir(op string) (string, bool) {
	if !path.IsAbs(op) {
		return "", false
	}
	elems := strings.Split(path.Clean(op), "/")
	for i, e := range elems {
		if strings.ContainsAny(e, "*?[") {
			return path.Clean("/" + strings.Join(elems[:i], "/")), true
		}
	}
	return path.Clean(op), true
}

// DefaultProject is the project a preset's cache ids are namespaced by when
// Project is not given.
const DefaultProject = "default"

// presetConfig is what the options set, before a preset is made from it.
type presetConfig struct {
	tool      string
	project   string
	home      string
	cargoHome string
	targetDir string
	goPath    string
	owner     *[2]int
	sharing   []targetedSharing
	across    [][]string // each AcrossPlatforms call's targets; empty: all
	errs      []error
}

type targetedSharing struct {
	mode    mounts.SharingMode
	targets []string
}

func (c *presetConfig) fail(option, value, format string, args ...any) {
	c.errs = append(c.errs, &Error{Option: option, Value: value,
		Reason: fmt.Sprintf("%s preset: ", c.tool) + fmt.Sprintf(format, args...)})
}

// AptOption configures Apt: a PresetOption.
type AptOption interface {
	applyPreset(*presetConfig)
	aptOption()
}

// PipOption configures Pip: a PresetOption or Home.
type PipOption interface {
	applyPreset(*presetConfig)
	pipOption()
}

// NpmOption configures Npm: a PresetOption or Home.
type NpmOption interface {
	applyPreset(*presetConfig)
	npmOption()
}

// GoOption configures Go: a PresetOption, Home or GoPath.
type GoOption interface {
	applyPreset(*presetConfig)
	goOption()
}

// CargoOption configures Cargo: a PresetOption, Home, CargoHome or TargetDir.
type CargoOption interface {
	applyPreset(*presetConfig)
	cargoOption()
}

// PresetOption configures every preset: Project, Sharing, AcrossPlatforms
// and Owner return one.
type PresetOption interface {
	AptOption
	PipOption
	NpmOption
	GoOption
	CargoOption
}

// HomeOption configures the presets whose caches live in the user's home
// directory, Pip, Npm, Go and Cargo: Home returns one.
type HomeOption interface {
	PipOption
	NpmOption
	GoOption
	CargoOption
}

// presetOption applies to every preset.
type presetOption func(*presetConfig)

func (o presetOption) applyPreset(c *presetConfig) { o(c) }
func (presetOption) aptOption()                    {}
func (presetOption) pipOption()                    {}
func (presetOption) npmOption()                    {}
func (presetOption) goOption()                     {}
func (presetOption) cargoOption()                  {}

// homeOption applies to the presets with caches in the home directory.
type homeOption func(*presetConfig)

func (o homeOption) applyPreset(c *presetConfig) { o(c) }
func (homeOption) pipOption()                    {}
func (homeOption) npmOption()                    {}
func (homeOption) goOption()                     {}
func (homeOption) cargoOption()                  {}

type goOnlyOption func(*presetConfig)

func (o goOnlyOption) applyPreset(c *presetConfig) { o(c) }
func (goOnlyOption) goOption()                     {}

type cargoOnlyOption func(*presetConfig)

func (o cargoOnlyOption) applyPreset(c *presetConfig) { o(c) }
func (cargoOnlyOption) cargoOption()                  {}

// Project namespaces the preset's cache ids by name, so that projects
// building on one builder keep their caches apart; presets with the same
// project, tool and platform share their caches. The default is
// DefaultProject, "default". The project is part of every cache id, which
// BuildKit leaves out of the step's cache key: a step that ran for one
// project comes from cache for another. A name must be 1 to 128 letters,
// digits, dots, dashes and underscores, starting with a letter or digit.
func Project(name string) PresetOption {
	return presetOption(func(c *presetConfig) {
		if !validProject(name) {
			c.fail("Project", name, "project name must be 1 to 128 letters, digits, '.', '-' and '_', starting with a letter or digit (it becomes part of the cache ids), such as %q", "team-app")
			return
		}
		c.project = name
	})
}

func validProject(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case i > 0 && (r == '.' || r == '-' || r == '_'):
		default:
			return false
		}
	}
	return true
}

// Sharing sets how steps that run at the same time use the preset's caches
// at the given targets, or all of its caches when no target is given. The
// defaults are Locked for apt's caches and Cargo's target directory, which
// their tools do not let two processes use at once, and Shared for the
// others. BuildKit leaves sharing modes out of the step's cache key. A
// target that is not one of the preset's caches (see Caches) is an error;
// when Sharing is given more than once, later ones win for the caches they
// name.
func Sharing(mode mounts.SharingMode, targets ...string) PresetOption {
	targets = slices.Clone(targets)
	return presetOption(func(c *presetConfig) {
		if _, err := mounts.ParseSharing(mode.String()); err != nil {
			c.fail("Sharing", mode.String(), "unknown sharing mode; use mounts.Shared, mounts.Private or mounts.Locked")
			return
		}
		c.sharing = append(c.sharing, targetedSharing{mode: mode, targets: targets})
	})
}

// AcrossPlatforms leaves the platform out of the ids of the preset's caches
// at the given targets, or of all its caches when no target is given, so
// that builds for every platform share them. The default keeps platforms
// apart. Share only caches whose contents do not depend on the platform,
// such as Go's module cache (/go/pkg/mod) or npm's: Cargo's target
// directory, for example, would be rebuilt by each platform in turn. It
// changes the cache ids, which are not part of the step's cache key. A
// target that is not one of the preset's caches is an error.
func AcrossPlatforms(targets ...string) PresetOption {
	targets = slices.Clone(targets)
	return presetOption(func(c *presetConfig) {
		c.across = append(c.across, targets)
	})
}

// Owner makes the preset's cache directories owned by uid:gid when they are
// first made, for steps that run as a user other than root, who could not
// write to a cache owned by root; give Home too. The default is root (0:0).
// The owner is part of the step's cache key, and BuildKit keeps a cache
// made with an owner apart from one made without, even under the same id.
// Ids must be 0 to 4294967295.
func Owner(uid, gid int) PresetOption {
	return presetOption(func(c *presetConfig) {
		if uid < 0 || gid < 0 || int64(uid) > 1<<32-1 || int64(gid) > 1<<32-1 {
			c.fail("Owner", fmt.Sprintf("%d:%d", uid, gid), "uid and gid must be 0 to 4294967295")
			return
		}
		c.owner = &[2]int{uid, gid}
	})
}

// Home sets the home directory of the user the step runs as, under which
// pip, npm, Go and Cargo keep their caches by default: <home>/.cache/pip,
// <home>/.npm, <home>/.cache/go-build, and <home>/.cargo and
// <home>/.cache/cargo-target. The default is /root. For a user other than
// root give Owner too. It moves the caches and the variables that point at
// them, so it changes the step's cache key. dir must be an absolute path.
func Home(dir string) HomeOption {
	return homeOption(func(c *presetConfig) {
		if p, ok := c.absPath("Home", dir, "/home/app"); ok {
			c.home = p
		}
	})
}

// GoPath sets GOPATH's directory for the Go preset, whose module cache is
// <dir>/pkg/mod. The default is /go, as in the official golang images. It
// moves the module cache and GOMODCACHE, so it changes the step's cache key.
// dir must be an absolute path. The preset sets GOMODCACHE, not GOPATH.
func GoPath(dir string) GoOption {
	return goOnlyOption(func(c *presetConfig) {
		if p, ok := c.absPath("GoPath", dir, "/go"); ok {
			c.goPath = p
		}
	})
}

// CargoHome sets CARGO_HOME for the Cargo preset, under which the registry
// and git caches live. The default is <home>/.cargo, Cargo's own default;
// give CargoHome("/usr/local/cargo") to keep the official rust images'.
// It moves the caches and changes CARGO_HOME, so it changes the step's cache
// key. dir must be an absolute path.
func CargoHome(dir string) CargoOption {
	return cargoOnlyOption(func(c *presetConfig) {
		if p, ok := c.absPath("CargoHome", dir, "/usr/local/cargo"); ok {
			c.cargoHome = p
		}
	})
}

// TargetDir sets the Cargo preset's target directory, a locked cache that
// CARGO_TARGET_DIR points at, so that a rebuild compiles only what changed.
// The default is <home>/.cache/cargo-target. Like every cache it is not part
// of the step's result: copy what the image needs out of it in the same
// step, such as cp "$CARGO_TARGET_DIR/release/app" /usr/local/bin/. It
// moves the cache and changes CARGO_TARGET_DIR, so it changes the step's
// cache key. dir must be an absolute path.
func TargetDir(dir string) CargoOption {
	return cargoOnlyOption(func(c *presetConfig) {
		if p, ok := c.absPath("TargetDir", dir, "/src/target"); ok {
			c.targetDir = p
		}
	})
}

// absPath checks that dir is a usable absolute path and returns it cleaned.
func (c *presetConfig) absPath(option, dir, example string) (string, bool) {
	switch {
	case dir == "":
		c.fail(option, dir, "path is empty; give an absolute path such as %q", example)
	case !utf8.ValidString(dir) || strings.ContainsRune(dir, 0):
		c.fail(option, dir, "path is not valid UTF-8 or contains a NUL byte")
	case !path.IsAbs(dir):
		c.fail(option, dir, "path must be absolute (did you mean %q?)", path.Clean("/"+dir))
	default:
		return path.Clean(dir), true
	}
	return "", false
}

// newPreset applies opts to a preset for tool, then lets layout place its
// caches, environment and files from the settled options.
func newPreset[O interface{ applyPreset(*presetConfig) }](tool string, opts []O, layout func(*presetConfig, *Preset)) *Preset {
	c := &presetConfig{tool: tool, project: DefaultProject, home: "/root"}
	for i, o := range opts {
		if any(o) == nil {
			c.fail("", "", "option %d is nil", i+1)
			continue
		}
		o.applyPreset(c)
	}
	p := &Preset{tool: tool, project: c.project, home: c.home, owner: c.owner}
	layout(c, p)
	seen := map[string]bool{}
	for _, t := range p.Targets() {
		if seen[t] {
			c.fail("", t, "two of its mounts would be at %s; give the options paths that differ", t)
		}
		seen[t] = true
	}
	for _, s := range c.sharing {
		for _, i := range p.cacheIndexes(c, "Sharing", s.targets) {
			p.caches[i].sharing = s.mode
		}
	}
	for _, targets := range c.across {
		for _, i := range p.cacheIndexes(c, "AcrossPlatforms", targets) {
			p.caches[i].acrossPlatform = true
		}
	}
	slices.SortFunc(p.env, func(a, b envVar) int { return strings.Compare(a.name, b.name) })
	p.errs = c.errs
	return p
}

// cacheIndexes returns the indexes of p's caches at targets, all of them
// when targets is empty, reporting the targets that are not caches of p.
func (p *Preset) cacheIndexes(c *presetConfig, option string, targets []string) []int {
	var out []int
	if len(targets) == 0 {
		for i := range p.caches {
			out = append(out, i)
		}
		return out
	}
	for _, t := range targets {
		i := slices.IndexFunc(p.caches, func(pc presetCache) bool { return path.IsAbs(t) && pc.target == path.Clean(t) })
		if i < 0 {
			var have []string
			for _, pc := range p.caches {
				have = append(have, pc.target)
			}
			c.fail(option, t, "%q is not one of the preset's caches; name one of %s, or none for all of them", t, strings.Join(have, ", "))
			continue
		}
		out = append(out, i)
	}
	return out
}

func (p *Preset) addCache(target string, sharing mounts.SharingMode, regenerable ...string) {
	p.caches = append(p.caches, presetCache{target: target, sharing: sharing, regenerable: regenerable})
}

func (p *Preset) setEnv(name, value string) {
	p.env = append(p.env, envVar{name, value})
}

// platformString writes pl as os/arch[/variant].
func platformString(pl ocispecs.Platform) string {
	s := pl.OS + "/" + pl.Architecture
	if pl.Variant != "" {
		s += "/" + pl.Variant
	}
	return s
}

// normalizePlatform lowercases pl and spells its architecture as OCI
// does, so that "linux/aarch64" and "linux/arm64/v8" name the same caches
// as "linux/arm64".
func normalizePlatform(pl ocispecs.Platform) ocispecs.Platform {
	n := ocispecs.Platform{
		OS:           strings.ToLower(pl.OS),
		Architecture: strings.ToLower(pl.Architecture),
		Variant:      strings.ToLower(pl.Variant),
	}
	switch n.Architecture {
	case "aarch64":
		n.Architecture = "arm64"
	case "x86_64", "x86-64":
		n.Architecture = "amd64"
	case "armhf":
		n.Architecture, n.Variant = "arm", "v7"
	case "armel":
		n.Architecture, n.Variant = "arm", "v6"
	}
	if n.Architecture == "arm64" && n.Variant == "v8" || n.Architecture == "amd64" && n.Variant == "v1" {
		n.Variant = ""
	}
	return n
}
