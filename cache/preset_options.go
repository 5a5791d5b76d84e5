package cache

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/larder-build/larder/mounts"
)

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
	// step is the step the preset is made for, by ForStep; nil before.
	step *mounts.Step
	// homeSet and ownerSet say that Home and Owner were given, which win
	// over what the step says.
	homeSet, ownerSet bool
	notes             []string
	dockerfileIDs     bool
	sharing           []targetedSharing
	across            [][]string // each AcrossPlatforms call's targets; empty: all
	errs              []error
}

// targetedSharing is what one Sharing option sets: mode for the caches at
// targets, or for all of them when targets is empty.
type targetedSharing struct {
	mode    mounts.SharingMode
	targets []string
}

// fail records an *Error about option and its value, with the reason
// prefixed by the preset's tool.
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

// PresetOption configures every preset: Project, Sharing, AcrossPlatforms,
// Owner and DockerfileIDs return one.
type PresetOption interface {
	AptOption
	PipOption
	NpmOption
	GoOption
	CargoOption
	YarnOption
	YarnBerryOption
	PnpmOption
	UVOption
	PoetryOption
	BundlerOption
	ComposerOption
	MavenOption
	GradleOption
	NuGetOption
	ApkOption
	DnfOption
	CcacheOption
}

// HomeOption configures the presets whose caches live in the user's home
// directory (all but Apt, Apk and Dnf): Home returns one.
type HomeOption interface {
	PipOption
	NpmOption
	GoOption
	CargoOption
	YarnOption
	YarnBerryOption
	PnpmOption
	UVOption
	PoetryOption
	BundlerOption
	ComposerOption
	MavenOption
	GradleOption
	NuGetOption
	CcacheOption
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
// defaults are Shared for the tools that lock their caches or keep them
// content-addressed (pip, npm, Go, Cargo's registry, Yarn Berry, pnpm, uv,
// ccache) and Locked for the others, which two processes cannot use at
// once. BuildKit leaves sharing modes out of the step's cache key. A
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
// write to a cache owned by root. The default is the uid and gid of the
// user the step runs as (see the package documentation), root (0:0) for a
// root step or without a builder.
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
		c.ownerSet = true
	})
}

// DockerfileIDs names the preset's caches as a Dockerfile's RUN
// --mount=type=cache,target=<target> names its cache when it gives no id:
// "/" and the target, such as "//var/cache/apt", with no project, tool or
// platform. A Larder step with the preset and a Dockerfile's RUN that mounts
// the same target then share that cache on a builder (build.Dockerfile's
// steps too). The cache is shared by every project and platform on the
// builder, as a Dockerfile's is; Project and AcrossPlatforms no longer
// change the ids. Like every id, it is not part of the step's cache key.
func DockerfileIDs() PresetOption {
	return presetOption(func(c *presetConfig) { c.dockerfileIDs = true })
}

// Home sets the home directory of the user the step runs as, under which
// pip, npm, Go and Cargo keep their caches by default: <home>/.cache/pip,
// <home>/.npm, <home>/.cache/go-build, and <home>/.cargo and
// <home>/.cache/cargo-target. The default is the home of the user the step
// runs as ($HOME, else the user's passwd entry in the base image), /root
// for root or when it can't be told. It moves the caches and the variables that point at
// them, so it changes the step's cache key. dir must be an absolute path.
func Home(dir string) HomeOption {
	return homeOption(func(c *presetConfig) {
		if p, ok := c.absPath("Home", dir, "/home/app"); ok {
			c.home = p
			c.homeSet = true
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
		c.fail(option, dir, "path is not valid UTF-8 or contains a NUL byte; give an absolute path of valid UTF-8 without NUL bytes, such as %q", example)
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
	return makePreset(tool, opts, layout, nil)
}

// makePreset is newPreset for the step s, nil for none: the step's user,
// home and environment place the caches where the options do not.
func makePreset[O interface{ applyPreset(*presetConfig) }](tool string, opts []O, layout func(*presetConfig, *Preset), s *mounts.Step) *Preset {
	c := &presetConfig{tool: tool, project: DefaultProject, home: "/root", step: s}
	for i, o := range opts {
		if any(o) == nil {
			c.fail("", "", "option %d is nil; leave it out", i+1)
			continue
		}
		o.applyPreset(c)
	}
	c.followStep()
	p := &Preset{tool: tool, project: c.project, home: c.home, owner: c.owner, dockerfileIDs: c.dockerfileIDs}
	p.remake = func(s mounts.Step) *Preset { return makePreset(tool, opts, layout, &s) }
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
	p.notes = c.notes
	return p
}

// followStep takes the home and owner of the step's user, where Home and
// Owner were not given.
func (c *presetConfig) followStep() {
	s := c.step
	if s == nil {
		return
	}
	root := s.User == "" || s.User == "root" || s.User == "0" || s.User == "0:0"
	if !c.homeSet {
		switch {
		case s.Home != "" && path.IsAbs(s.Home):
			c.home = path.Clean(s.Home)
		case !root:
			c.notes = append(c.notes, fmt.Sprintf("%s preset: the step runs as %q, whose home Larder could not tell (no $HOME, and no passwd entry in the base image): the caches are under /root; give Home", c.tool, s.User))
		}
	}
	if !c.ownerSet && !root {
		if s.UID >= 0 && s.GID >= 0 {
			c.owner = &[2]int{s.UID, s.GID}
		} else {
			c.notes = append(c.notes, fmt.Sprintf("%s preset: the step runs as %q, whose uid and gid Larder could not tell (no passwd or group entry in the base image): the caches are owned by root; give Owner", c.tool, s.User))
		}
	}
}

// getenv returns the step's variable name, "" when there is no step or it
// does not set it. Layouts read the variables that move a tool's caches.
func (c *presetConfig) getenv(name string) string {
	if c.step == nil {
		return ""
	}
	v := c.step.Getenv(name)
	if !path.IsAbs(v) {
		return "" // unset, or relative: the tool's to resolve, not a mount target
	}
	return path.Clean(v)
}

// cacheHome is $XDG_CACHE_HOME of the step, else <home>/.cache.
func (c *presetConfig) cacheHome() string {
	if v := c.getenv("XDG_CACHE_HOME"); v != "" {
		return v
	}
	return path.Join(c.home, ".cache")
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

// addCache adds a cache directory at target to p; layouts call it.
func (p *Preset) addCache(target string, sharing mounts.SharingMode, regenerable ...string) {
	p.caches = append(p.caches, presetCache{target: target, sharing: sharing, regenerable: regenerable})
}

// setEnv sets an environment variable of p; layouts call it.
func (p *Preset) setEnv(name, value string) {
	p.env = append(p.env, envVar{name, value})
}
