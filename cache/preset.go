package cache

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/moby/buildkit/client/llb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/larder-build/larder/cache/internal/shell"
	"github.com/larder-build/larder/mounts"
)

// Preset is the cache setup of one package manager for a build step: its
// cache directories, the environment that points the tool at them, and the
// files it shows the step (the apt and dnf presets' configuration). Apt,
// Pip, Npm, Go, Cargo, Yarn, YarnBerry, Pnpm, UV, Poetry, Bundler, Composer,
// Maven, Gradle, NuGet, Apk, Dnf and Ccache make one. Presets are immutable values, safe for concurrent
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
// package, which calls ForStep; see SetRunOption for raw llb.
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
	warn     func(*Preset, []shell.Command) []string
	errs     []error
	// remake makes the preset again, with the same options, for a step.
	remake func(mounts.Step) *Preset
	// notes say what the preset could not tell about its step.
	notes []string
	// dockerfileIDs names the caches as a Dockerfile's are named.
	dockerfileIDs bool
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
	// missing, such as apt's pkgcache.bin. Mounts gives them to the cache
	// mounts with mounts.Regenerable, and build.PersistCacheMounts leaves
	// them out of what it saves when the preset is an option of a build
	// step (Run or RunArgs); on raw llb it cannot tell them.
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

var _ mounts.StepOption = (*Preset)(nil)

// Tool returns the package manager the preset is for, the lower-case name
// of its constructor, such as "apt", "cargo" or "yarnberry"; "" for the
// zero Preset.
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
// "linux/arm64", or "" when it has none: a preset from a constructor such
// as Apt has none until For or ForStep gives it one.
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

// ForStep is For with the platform of the step s, as a mounts.StepOption:
// the build package calls it for each step that takes the preset, and adds
// the result to the step instead of p. The result is a *Preset.
func (p *Preset) ForStep(s mounts.Step) mounts.StepOption {
	if p == nil || p.remake == nil {
		return p.For(s.Platform)
	}
	return p.remake(s).For(s.Platform)
}

// Notes returns what the preset could not tell about the step it was made
// for by ForStep, such as the home of a user with no passwd entry, and
// what it did instead; the build package puts them in the solve's report.
// Each call returns a new slice.
func (p *Preset) Notes() []string {
	if p == nil {
		return nil
	}
	return slices.Clone(p.notes)
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
	if p.dockerfileIDs {
		return "/" + c.target
	}
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
		if len(c.regenerable) > 0 {
			opts = append(opts, mounts.Regenerable(c.regenerable...))
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
		return &Error{Reason: "preset is nil or zero; make one with a preset constructor such as Apt or Pip"}
	}
	errs := slices.Clone(p.errs)
	if p.platform != nil && (p.platform.OS == "" || p.platform.Architecture == "") {
		errs = append(errs, &Error{Option: "For", Value: platformString(*p.platform),
			Reason: fmt.Sprintf("the %s preset was given a platform without an OS or an architecture; give one such as linux/amd64", p.tool)})
	}
	return joinErrs(errs)
}

// SetRunOption adds the preset's mounts and environment to a step. When
// the preset is not usable it adds nothing and makes the step fail to
// marshal with the error Validate returns.
//
// A preset that For or ForStep did not give a platform takes the one
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
