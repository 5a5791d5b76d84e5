package cache_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/cache"
	"github.com/larder-build/larder/mounts"
)

var (
	amd64 = ocispecs.Platform{OS: "linux", Architecture: "amd64"}
	arm64 = ocispecs.Platform{OS: "linux", Architecture: "arm64"}
)

// presetGraph is a marshalled definition: its exec ops and every op by
// digest.
type presetGraph struct {
	execs []*pb.ExecOp
	ops   map[string]*pb.Op
	def   *llb.Definition
}

func readGraph(t *testing.T, def *llb.Definition) presetGraph {
	t.Helper()
	g := presetGraph{ops: map[string]*pb.Op{}, def: def}
	for _, dt := range def.Def {
		var op pb.Op
		if err := op.UnmarshalVT(dt); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(dt)
		g.ops["sha256:"+hex.EncodeToString(sum[:])] = &op
		if e := op.GetExec(); e != nil {
			g.execs = append(g.execs, e)
		}
	}
	return g
}

// rawStep marshals one raw llb step with opts for linux/amd64.
func rawStep(t *testing.T, opts ...llb.RunOption) presetGraph {
	t.Helper()
	st := llb.Image("docker.io/library/debian:bookworm").Run(append([]llb.RunOption{llb.Shlex("true")}, opts...)...).Root()
	def, err := st.Marshal(context.Background(), llb.LinuxAmd64)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	g := readGraph(t, def)
	if len(g.execs) != 1 {
		t.Fatalf("%d exec ops, want 1", len(g.execs))
	}
	return g
}

// cacheIDs returns the cache ids of every exec op's cache mounts in def.
func cacheIDs(t *testing.T, def *llb.Definition) []string {
	t.Helper()
	var ids []string
	for _, e := range readGraph(t, def).execs {
		for _, m := range e.Mounts {
			if m.MountType == pb.MountType_CACHE {
				ids = append(ids, m.CacheOpt.ID)
			}
		}
	}
	return ids
}

type wantCache struct {
	target, id string
	sharing    mounts.SharingMode
}

func TestPresetDefaults(t *testing.T) {
	tests := []struct {
		preset  *cache.Preset
		tool    string
		caches  []wantCache
		env     []string
		targets []string
	}{
		{cache.Apt(), "apt", []wantCache{
			{"/var/cache/apt", "larder/default/apt/var/cache/apt@linux/amd64", mounts.Locked},
			{"/var/lib/apt", "larder/default/apt/var/lib/apt@linux/amd64", mounts.Locked},
		}, []string{}, []string{"/var/cache/apt", "/var/lib/apt", "/etc/apt/apt.conf.d/docker-clean", cache.AptKeepCacheFile, cache.AptUnsafeIOFile}},
		{cache.Pip(), "pip", []wantCache{
			{"/root/.cache/pip", "larder/default/pip/root/.cache/pip@linux/amd64", mounts.Shared},
		}, []string{"PIP_CACHE_DIR=/root/.cache/pip"}, []string{"/root/.cache/pip"}},
		{cache.Npm(), "npm", []wantCache{
			{"/root/.npm", "larder/default/npm/root/.npm@linux/amd64", mounts.Shared},
		}, []string{"npm_config_cache=/root/.npm"}, []string{"/root/.npm"}},
		{cache.Go(), "go", []wantCache{
			{"/go/pkg/mod", "larder/default/go/go/pkg/mod@linux/amd64", mounts.Shared},
			{"/root/.cache/go-build", "larder/default/go/root/.cache/go-build@linux/amd64", mounts.Shared},
		}, []string{"GOCACHE=/root/.cache/go-build", "GOMODCACHE=/go/pkg/mod"}, []string{"/go/pkg/mod", "/root/.cache/go-build"}},
		{cache.Cargo(), "cargo", []wantCache{
			{"/root/.cargo/registry", "larder/default/cargo/root/.cargo/registry@linux/amd64", mounts.Shared},
			{"/root/.cargo/git/db", "larder/default/cargo/root/.cargo/git/db@linux/amd64", mounts.Shared},
			{"/root/.cache/cargo-target", "larder/default/cargo/root/.cache/cargo-target@linux/amd64", mounts.Locked},
		}, []string{"CARGO_HOME=/root/.cargo", "CARGO_TARGET_DIR=/root/.cache/cargo-target"},
			[]string{"/root/.cargo/registry", "/root/.cargo/git/db", "/root/.cache/cargo-target"}},
	}
	for _, tt := range tests {
		t.Run(tt.tool, func(t *testing.T) {
			if err := tt.preset.Validate(); err != nil {
				t.Fatal(err)
			}
			if tt.preset.Tool() != tt.tool || tt.preset.Project() != cache.DefaultProject || tt.preset.Platform() != "" {
				t.Errorf("tool %q project %q platform %q", tt.preset.Tool(), tt.preset.Project(), tt.preset.Platform())
			}
			p := tt.preset.For(amd64)
			if p.Platform() != "linux/amd64" {
				t.Errorf("For(amd64).Platform() = %q", p.Platform())
			}
			var got []wantCache
			for _, c := range p.Caches() {
				got = append(got, wantCache{c.Target, c.ID, c.Sharing})
			}
			if !slices.Equal(got, tt.caches) {
				t.Errorf("caches\n got %v\nwant %v", got, tt.caches)
			}
			// Without a platform the ids have no platform part.
			for i, c := range tt.preset.Caches() {
				if want := strings.TrimSuffix(tt.caches[i].id, "@linux/amd64"); c.ID != want {
					t.Errorf("unbound id %q, want %q", c.ID, want)
				}
			}
			if env := p.Env(); !slices.Equal(env, tt.env) && !(len(env) == 0 && len(tt.env) == 0) {
				t.Errorf("env %q, want %q", env, tt.env)
			}
			if !slices.Equal(p.Targets(), tt.targets) {
				t.Errorf("targets %q, want %q", p.Targets(), tt.targets)
			}
			if err := mounts.Validate(p.Mounts()...); err != nil {
				t.Errorf("the preset's mounts do not validate: %v", err)
			}
		})
	}
}

func TestPresetOptions(t *testing.T) {
	ids := func(p *cache.Preset) []string {
		var out []string
		for _, c := range p.For(arm64).Caches() {
			out = append(out, c.Target+" "+c.ID+" "+c.Sharing.String())
		}
		return out
	}
	tests := []struct {
		name string
		p    *cache.Preset
		want []string
		env  []string
	}{
		{"project", cache.Pip(cache.Project("shop")),
			[]string{"/root/.cache/pip larder/shop/pip/root/.cache/pip@linux/arm64 shared"}, nil},
		{"home", cache.Npm(cache.Home("/home/app/")),
			[]string{"/home/app/.npm larder/default/npm/home/app/.npm@linux/arm64 shared"}, []string{"npm_config_cache=/home/app/.npm"}},
		{"sharing all", cache.Go(cache.Sharing(mounts.Private)),
			[]string{"/go/pkg/mod larder/default/go/go/pkg/mod@linux/arm64 private", "/root/.cache/go-build larder/default/go/root/.cache/go-build@linux/arm64 private"}, nil},
		{"sharing one, later wins", cache.Go(cache.Sharing(mounts.Private), cache.Sharing(mounts.Locked, "/root/.cache/go-build/")),
			[]string{"/go/pkg/mod larder/default/go/go/pkg/mod@linux/arm64 private", "/root/.cache/go-build larder/default/go/root/.cache/go-build@linux/arm64 locked"}, nil},
		{"across platforms one", cache.Go(cache.AcrossPlatforms("/go/pkg/mod")),
			[]string{"/go/pkg/mod larder/default/go/go/pkg/mod shared", "/root/.cache/go-build larder/default/go/root/.cache/go-build@linux/arm64 shared"}, nil},
		{"across platforms all", cache.Apt(cache.AcrossPlatforms()),
			[]string{"/var/cache/apt larder/default/apt/var/cache/apt locked", "/var/lib/apt larder/default/apt/var/lib/apt locked"}, nil},
		{"gopath", cache.Go(cache.GoPath("/home/app/go"), cache.Home("/home/app")),
			[]string{"/home/app/go/pkg/mod larder/default/go/home/app/go/pkg/mod@linux/arm64 shared", "/home/app/.cache/go-build larder/default/go/home/app/.cache/go-build@linux/arm64 shared"},
			[]string{"GOCACHE=/home/app/.cache/go-build", "GOMODCACHE=/home/app/go/pkg/mod"}},
		{"cargo home and target", cache.Cargo(cache.CargoHome("/usr/local/cargo"), cache.TargetDir("/src/target")),
			[]string{"/usr/local/cargo/registry larder/default/cargo/usr/local/cargo/registry@linux/arm64 shared",
				"/usr/local/cargo/git/db larder/default/cargo/usr/local/cargo/git/db@linux/arm64 shared",
				"/src/target larder/default/cargo/src/target@linux/arm64 locked"},
			[]string{"CARGO_HOME=/usr/local/cargo", "CARGO_TARGET_DIR=/src/target"}},
		{"cargo home from Home", cache.Cargo(cache.Home("/home/app")),
			[]string{"/home/app/.cargo/registry larder/default/cargo/home/app/.cargo/registry@linux/arm64 shared",
				"/home/app/.cargo/git/db larder/default/cargo/home/app/.cargo/git/db@linux/arm64 shared",
				"/home/app/.cache/cargo-target larder/default/cargo/home/app/.cache/cargo-target@linux/arm64 locked"},
			[]string{"CARGO_HOME=/home/app/.cargo", "CARGO_TARGET_DIR=/home/app/.cache/cargo-target"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.p.Validate(); err != nil {
				t.Fatal(err)
			}
			if got := ids(tt.p); !slices.Equal(got, tt.want) {
				t.Errorf("caches\n got %q\nwant %q", got, tt.want)
			}
			if tt.env != nil && !slices.Equal(tt.p.Env(), tt.env) {
				t.Errorf("env %q, want %q", tt.p.Env(), tt.env)
			}
		})
	}
}

func TestPresetOwner(t *testing.T) {
	p := cache.Pip(cache.Home("/home/app"), cache.Owner(1000, 1001)).For(amd64)
	ms := p.Mounts()
	if len(ms) != 1 || !strings.Contains(ms[0].String(), "uid=1000,gid=1001") {
		t.Fatalf("mounts %v, want the cache owned by 1000:1001", ms)
	}
	g := rawStep(t, p)
	for _, m := range g.execs[0].Mounts {
		if m.Dest == "/home/app/.cache/pip" && m.Input < 0 {
			t.Error("an owned cache mount has no source to set its owner from")
		}
	}
}

func TestPresetErrors(t *testing.T) {
	tests := []struct {
		name   string
		p      *cache.Preset
		option string
		value  string
		says   string
	}{
		{"relative home", cache.Pip(cache.Home("home/app")), "Home", "home/app", `did you mean "/home/app"`},
		{"empty home", cache.Npm(cache.Home("")), "Home", "", "path is empty"},
		{"NUL", cache.Go(cache.GoPath("/go\x00")), "GoPath", "/go\x00", "NUL"},
		{"project slash", cache.Apt(cache.Project("team/app")), "Project", "team/app", "letters, digits"},
		{"empty project", cache.Apt(cache.Project("")), "Project", "", "letters, digits"},
		{"project dot first", cache.Apt(cache.Project(".x")), "Project", ".x", "starting with a letter or digit"},
		{"sharing mode", cache.Npm(cache.Sharing(mounts.SharingMode(7))), "Sharing", "SharingMode(7)", "unknown sharing mode"},
		{"sharing target", cache.Npm(cache.Sharing(mounts.Locked, "/root/.cache/pip")), "Sharing", "/root/.cache/pip", "not one of the preset's caches; name one of /root/.npm"},
		{"across target", cache.Go(cache.AcrossPlatforms("go/pkg/mod")), "AcrossPlatforms", "go/pkg/mod", "not one of the preset's caches"},
		{"owner", cache.Apt(cache.Owner(-1, 0)), "Owner", "-1:0", "0 to 4294967295"},
		{"cargo target on registry", cache.Cargo(cache.TargetDir("/root/.cargo/registry")), "", "/root/.cargo/registry", "two of its mounts"},
		{"nil option", cache.Pip(nil), "", "", "option 1 is nil"},
		{"platform", cache.Pip().For(ocispecs.Platform{OS: "linux"}), "For", "linux/", "without an OS or an architecture"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			var ce *cache.Error
			if !errors.As(err, &ce) {
				t.Fatalf("Validate() = %v (%T), want a *cache.Error", err, err)
			}
			if ce.Option != tt.option || ce.Value != tt.value || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("error %q (option %q value %q), want option %q value %q saying %q", err, ce.Option, ce.Value, tt.option, tt.value, tt.says)
			}
			if !strings.Contains(err.Error(), tt.p.Tool()+" preset") {
				t.Errorf("error %q does not name the %s preset", err, tt.p.Tool())
			}
			// An unusable preset adds nothing and fails the step's marshalling.
			st := llb.Image("debian").Run(llb.Shlex("true"), tt.p).Root()
			if _, merr := st.Marshal(context.Background(), llb.LinuxAmd64); merr == nil || !strings.Contains(merr.Error(), tt.says) {
				t.Errorf("Marshal with the preset = %v, want its error", merr)
			}
		})
	}
	var nilPreset *cache.Preset
	for _, p := range []*cache.Preset{nilPreset, {}} {
		if err := p.Validate(); err == nil {
			t.Error("a nil or zero preset validates")
		}
		if p.Caches() != nil && len(p.Caches()) != 0 || p.Tool() != "" {
			t.Error("a nil or zero preset has caches or a tool")
		}
		if w := p.Warnings([]string{"pip", "install", "--no-cache-dir"}); len(w) != 0 {
			t.Errorf("warnings from a zero preset: %q", w)
		}
	}
	// Every problem is reported, not only the first.
	err := cache.Cargo(cache.Home("a"), cache.CargoHome("b"), cache.Project("?")).Validate()
	for _, want := range []string{"Home", "CargoHome", "Project"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("joined error %q lacks %s", err, want)
		}
	}
}

func TestPresetIsImmutable(t *testing.T) {
	p := cache.Go(cache.Project("x"))
	q := p.For(arm64)
	if p.Platform() != "" || q.Platform() != "linux/arm64" {
		t.Errorf("For changed its receiver: %q, %q", p.Platform(), q.Platform())
	}
	r := q.For(amd64)
	if q.Platform() != "linux/arm64" || r.Platform() != "linux/amd64" {
		t.Errorf("For on a bound preset: %q, %q", q.Platform(), r.Platform())
	}
	c := q.Caches()
	c[0].ID = "changed"
	e := q.Env()
	e[0] = "changed"
	ts := q.Targets()
	ts[0] = "changed"
	if q.Caches()[0].ID == "changed" || q.Env()[0] == "changed" || q.Targets()[0] == "changed" {
		t.Error("changing a returned slice changed the preset")
	}
	f := cache.Apt().Files()
	f[1].Content = "changed"
	if cache.Apt().Files()[1].Content == "changed" {
		t.Error("changing Files changed the preset")
	}
	// Options given to a constructor are not kept by reference.
	targets := []string{"/go/pkg/mod"}
	opt := cache.AcrossPlatforms(targets...)
	targets[0] = "/root/.cache/go-build"
	if got := cache.Go(opt).For(amd64).Caches(); strings.Contains(got[0].ID, "@") || !strings.Contains(got[1].ID, "@") {
		t.Errorf("the option saw its caller's later change: %v", got)
	}
}

func TestPresetPlatformNormalized(t *testing.T) {
	for _, tt := range []struct {
		in   ocispecs.Platform
		want string
	}{
		{ocispecs.Platform{OS: "Linux", Architecture: "aarch64"}, "linux/arm64"},
		{ocispecs.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, "linux/arm64"},
		{ocispecs.Platform{OS: "linux", Architecture: "x86_64"}, "linux/amd64"},
		{ocispecs.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, "linux/arm/v7"},
		{ocispecs.Platform{OS: "linux", Architecture: "riscv64"}, "linux/riscv64"},
	} {
		p := cache.Npm().For(tt.in)
		if p.Platform() != tt.want || !strings.HasSuffix(p.Caches()[0].ID, "@"+tt.want) {
			t.Errorf("For(%v): platform %q id %q, want %q", tt.in, p.Platform(), p.Caches()[0].ID, tt.want)
		}
	}
}

// The exec op a preset makes on raw llb: cache mounts, read-only file
// mounts, environment.
func TestPresetOnRawLLB(t *testing.T) {
	g := rawStep(t, cache.Apt(), cache.Pip())
	e := g.execs[0]
	byDest := map[string]*pb.Mount{}
	for _, m := range e.Mounts {
		byDest[m.Dest] = m
	}
	for _, c := range []struct {
		dest, id string
		sharing  pb.CacheSharingOpt
	}{
		{"/var/cache/apt", "larder/default/apt/var/cache/apt", pb.CacheSharingOpt_LOCKED},
		{"/var/lib/apt", "larder/default/apt/var/lib/apt", pb.CacheSharingOpt_LOCKED},
		{"/root/.cache/pip", "larder/default/pip/root/.cache/pip", pb.CacheSharingOpt_SHARED},
	} {
		m := byDest[c.dest]
		if m == nil || m.MountType != pb.MountType_CACHE || m.CacheOpt.ID != c.id || m.CacheOpt.Sharing != c.sharing {
			t.Errorf("mount at %s = %v, want cache %s %v", c.dest, m, c.id, c.sharing)
		}
	}
	// The apt files: read-only binds of single files from one file op of
	// scratch, with the preset's content.
	for _, f := range cache.Apt().Files() {
		m := byDest[f.Path]
		if m == nil || m.MountType != pb.MountType_BIND || !m.Readonly || m.Selector == "" {
			t.Fatalf("mount at %s = %v, want a read-only bind of one file", f.Path, m)
		}
		src := g.ops[string(sourceDigest(t, g, m.Input))]
		var content []byte
		for _, a := range src.GetFile().GetActions() {
			if mk := a.GetMkfile(); mk != nil && mk.Path == m.Selector {
				content = mk.Data
			}
		}
		if string(content) != f.Content {
			t.Errorf("%s mounts %q, want %q", f.Path, content, f.Content)
		}
	}
	if !slices.Contains(e.Meta.Env, "PIP_CACHE_DIR=/root/.cache/pip") {
		t.Errorf("env %q lacks PIP_CACHE_DIR", e.Meta.Env)
	}
	// Deterministic.
	again := rawStep(t, cache.Apt(), cache.Pip())
	if !slices.EqualFunc(g.def.Def, again.def.Def, bytes.Equal) {
		t.Error("two marshallings of the same presets differ")
	}
}

// sourceDigest returns the digest of the op that the exec's input i is.
func sourceDigest(t *testing.T, g presetGraph, i int64) string {
	t.Helper()
	for _, op := range g.ops {
		if op.GetExec() != nil {
			return string(op.Inputs[i].Digest)
		}
	}
	t.Fatal("no exec op")
	return ""
}

// On raw llb a preset takes the platform given to Run before it.
func TestPresetRawPlatformFromConstraints(t *testing.T) {
	g := rawStep(t, llb.LinuxArm64, cache.Npm())
	if id := g.execs[0].Mounts[1].CacheOpt.ID; id != "larder/default/npm/root/.npm@linux/arm64" {
		t.Errorf("id %q, want the arm64 cache", id)
	}
	g = rawStep(t, cache.Npm().ForStep(mounts.Step{Platform: amd64}))
	if id := g.execs[0].Mounts[1].CacheOpt.ID; id != "larder/default/npm/root/.npm@linux/amd64" {
		t.Errorf("id %q, want the amd64 cache", id)
	}
	// A bound preset keeps its platform.
	g = rawStep(t, llb.LinuxArm64, cache.Npm().For(amd64))
	if id := g.execs[0].Mounts[1].CacheOpt.ID; id != "larder/default/npm/root/.npm@linux/amd64" {
		t.Errorf("id %q, want the amd64 cache of the bound preset", id)
	}
}

// The build package gives a preset the platform of its step: the same
// graph marshalled for two platforms uses two sets of caches.
func TestPresetPlatformsInBuildGraphs(t *testing.T) {
	s := build.Image("debian:bookworm").
		Run("apt-get update && apt-get install -y gcc", cache.Apt(cache.Project("shop"))).
		Run("go build ./...", cache.Go(cache.Project("shop"), cache.AcrossPlatforms("/go/pkg/mod")))
	got := map[string][]string{}
	for _, pl := range []string{"linux/amd64", "linux/arm64"} {
		def, err := s.Marshal(context.Background(), pl)
		if err != nil {
			t.Fatal(err)
		}
		ids := cacheIDs(t, def)
		slices.Sort(ids)
		got[pl] = ids
	}
	want := map[string][]string{
		"linux/amd64": {
			"larder/shop/apt/var/cache/apt@linux/amd64", "larder/shop/apt/var/lib/apt@linux/amd64",
			"larder/shop/go/go/pkg/mod", "larder/shop/go/root/.cache/go-build@linux/amd64",
		},
		"linux/arm64": {
			"larder/shop/apt/var/cache/apt@linux/arm64", "larder/shop/apt/var/lib/apt@linux/arm64",
			"larder/shop/go/go/pkg/mod", "larder/shop/go/root/.cache/go-build@linux/arm64",
		},
	}
	for pl := range want {
		if !slices.Equal(got[pl], want[pl]) {
			t.Errorf("%s: ids\n got %q\nwant %q", pl, got[pl], want[pl])
		}
	}
	// A step's own platform wins over the solve's.
	def, err := build.Image("debian:bookworm").Platform("linux/arm/v7").Run("pip install x", cache.Pip()).Marshal(context.Background(), "linux/amd64")
	if err != nil {
		t.Fatal(err)
	}
	if ids := cacheIDs(t, def); len(ids) != 1 || ids[0] != "larder/default/pip/root/.cache/pip@linux/arm/v7" {
		t.Errorf("ids %q, want the step's linux/arm/v7", ids)
	}
}

// The build package takes presets like mounts: it validates them, rejects
// a second mount on one of their targets, and reports their warnings.
func TestPresetInBuildStages(t *testing.T) {
	s := build.Image("debian:bookworm").Run("apt-get install -y gcc", cache.Apt(), mounts.Cache("/var/cache/apt"))
	if err := s.Err(); err == nil || !strings.Contains(err.Error(), "/var/cache/apt") {
		t.Errorf("a cache mount on the apt preset's target: %v, want an error", err)
	}
	s = build.Image("debian:bookworm").Run("true", cache.Pip(cache.Home("relative")))
	var ce *cache.Error
	if err := s.Err(); !errors.As(err, &ce) || ce.Option != "Home" {
		t.Errorf("an invalid preset in a stage: %v, want its *cache.Error", err)
	}
	s = build.Image("debian:bookworm").Run("pip install --no-cache-dir flask", cache.Pip())
	if w := s.Warnings(); len(w) != 1 || !strings.Contains(w[0], "--no-cache-dir") {
		t.Errorf("warnings %q, want one about --no-cache-dir", w)
	}
	// The preset follows the stage's own PIP_CACHE_DIR: its cache is there.
	s = build.Image("debian:bookworm").Env("PIP_CACHE_DIR", "/elsewhere").Run("pip install flask", cache.Pip()).Run("true")
	def, err := s.Marshal(context.Background(), "linux/amd64")
	if err != nil {
		t.Fatal(err)
	}
	var cached []string
	for _, e := range readGraph(t, def).execs {
		if !slices.Contains(e.Meta.Env, "PIP_CACHE_DIR=/elsewhere") {
			t.Errorf("env %q, want the stage's PIP_CACHE_DIR", e.Meta.Env)
		}
		for _, m := range e.Mounts {
			if m.MountType == pb.MountType_CACHE {
				cached = append(cached, m.Dest)
			}
		}
	}
	if !slices.Equal(cached, []string{"/elsewhere"}) {
		t.Errorf("cache mounts at %q, want the pip step's at /elsewhere", cached)
	}
}

func TestPresetWarnings(t *testing.T) {
	sh := func(script string) []string { return []string{"/bin/sh", "-c", script} }
	tests := []struct {
		name string
		p    *cache.Preset
		args []string
		want []string // substrings, one per warning
	}{
		{"pip no-cache-dir", cache.Pip(), sh("pip install --no-cache-dir flask"), []string{"--no-cache-dir turns pip's cache off"}},
		{"pip3 after &&", cache.Pip(), sh("apt-get update && pip3 install -r req.txt --no-cache-dir"), []string{"--no-cache-dir"}},
		{"python -m pip", cache.Pip(), sh("python3 -m pip install --no-cache-dir x"), []string{"--no-cache-dir"}},
		{"argv without shell", cache.Pip(), []string{"pip", "install", "--no-cache-dir", "x"}, []string{"--no-cache-dir"}},
		{"PIP_NO_CACHE_DIR prefix", cache.Pip(), sh("PIP_NO_CACHE_DIR=1 pip install x"), []string{"PIP_NO_CACHE_DIR"}},
		{"PIP_NO_CACHE_DIR export", cache.Pip(), sh("export PIP_NO_CACHE_DIR=off\npip install x"), []string{"PIP_NO_CACHE_DIR"}},
		{"pip cache purge", cache.Pip(), sh("pip install x; pip cache purge"), []string{`"pip cache purge" empties`}},
		{"pip cache dir elsewhere", cache.Pip(), sh("pip install --cache-dir=/tmp/pc x"), []string{"--cache-dir /tmp/pc"}},
		{"PIP_CACHE_DIR elsewhere", cache.Pip(), sh("PIP_CACHE_DIR=/tmp/pc pip install x"), []string{"PIP_CACHE_DIR=/tmp/pc points pip away"}},
		{"PIP_CACHE_DIR same", cache.Pip(), sh("PIP_CACHE_DIR=/root/.cache/pip/ pip install x"), nil},
		{"nested sh -c", cache.Pip(), sh(`sudo -E sh -ec "pip install --no-cache-dir x"`), []string{"--no-cache-dir"}},
		{"env wrapper", cache.Pip(), sh("env -u FOO PIP_NO_CACHE_DIR=1 nice -n 5 pip install x"), []string{"PIP_NO_CACHE_DIR"}},
		{"echo is not pip", cache.Pip(), sh("echo pip install --no-cache-dir x"), nil},
		{"quoted is one word", cache.Pip(), sh("pip install 'x --no-cache-dir'"), nil},
		{"comment", cache.Pip(), sh("pip install x # --no-cache-dir"), nil},
		{"heredoc body", cache.Pip(), sh("cat > /req.txt <<'EOF'\npip install --no-cache-dir\nEOF\npip install -r /req.txt"), nil},
		{"other preset", cache.Npm(), sh("pip install --no-cache-dir x"), nil},
		{"rm cache contents", cache.Pip(), sh("pip install x && rm -rf ~/.cache/pip/*"), []string{"deletes what the cache at /root/.cache/pip holds"}},
		{"rm via variable", cache.Pip(), sh(`pip install x && rm -rf "$PIP_CACHE_DIR"`), []string{"deletes what the cache at /root/.cache/pip holds"}},
		{"rm parent", cache.Pip(), sh("rm -rf /root/.cache"), []string{"deletes what the cache"}},
		{"rm parent not recursive", cache.Pip(), sh("rm -f /root/.cache"), nil},
		{"rm unrelated", cache.Pip(), sh("rm -rf /tmp/* /root/.cache-other ./root/.cache/pip"), nil},

		{"apt lists", cache.Apt(), sh("apt-get update && apt-get install -y gcc && rm -rf /var/lib/apt/lists/*"), []string{`"rm -rf /var/lib/apt/lists/*" deletes what the cache at /var/lib/apt holds`}},
		{"apt lists variants", cache.Apt(), sh("rm -r -f /var/lib/apt/lists; rm -fr /var/lib/apt/lists/ ;rm -rf -- /var/cache/apt/archives/*.deb"), []string{"rm -r -f /var/lib/apt/lists", "rm -fr /var/lib/apt/lists", "/var/cache/apt/archives/*.deb"}},
		{"apt lists RunArgs", cache.Apt(), []string{"rm", "-rf", "/var/lib/apt/lists"}, []string{"deletes what the cache at /var/lib/apt holds"}},
		{"apt-get clean", cache.Apt(), sh("apt-get install -y gcc && apt-get clean"), []string{`"apt-get clean" empties`}},
		{"apt clean with options", cache.Apt(), sh("apt -o Debug::X=1 -q clean"), []string{"empties the cache at /var/cache/apt"}},
		{"apt-get install clean is a package", cache.Apt(), sh("apt-get install -y clean"), nil},
		{"rm docker-clean", cache.Apt(), sh("rm -f /etc/apt/apt.conf.d/docker-clean; apt-get update"), []string{"rm cannot remove a mount point"}},
		{"apt clean under pip", cache.Pip(), sh("apt-get clean && rm -rf /var/lib/apt/lists/*"), nil},
		{"redirect target is not an argument", cache.Apt(), sh("apt-get update > /var/lib/apt/lists/log 2>&1"), nil},

		{"npm cache clean", cache.Npm(), sh("npm ci && npm cache clean --force"), []string{`"npm cache clean --force" empties the cache at /root/.npm`}},
		{"npm --cache", cache.Npm(), sh("npm ci --cache /tmp/npm"), []string{"--cache /tmp/npm points npm away"}},
		{"npm_config_cache", cache.Npm(), sh("npm_config_cache=/tmp/n npm ci"), []string{"npm_config_cache=/tmp/n"}},
		{"npm install", cache.Npm(), sh("npm ci --loglevel=http"), nil},

		{"go clean -modcache", cache.Go(), sh("go build ./... && go clean -modcache"), []string{"empties the module cache at /go/pkg/mod"}},
		{"go clean -cache", cache.Go(), sh("go clean --cache"), []string{"empties the build cache at /root/.cache/go-build"}},
		{"go clean -testcache", cache.Go(), sh("go clean -testcache"), nil},
		{"GOCACHE elsewhere", cache.Go(), sh("GOCACHE=/tmp/gc go build"), []string{"GOCACHE=/tmp/gc"}},

		{"cargo clean", cache.Cargo(), sh("cargo build --release; cargo clean"), []string{`"cargo clean" empties the target directory /root/.cache/cargo-target`}},
		{"cargo clean toolchain", cache.Cargo(), sh("cargo +nightly clean --release"), []string{"empties the target directory"}},
		{"cargo clean one package", cache.Cargo(), sh("cargo clean -p app && cargo clean --package=app"), nil},
		{"cargo target-dir", cache.Cargo(), sh("cargo build --target-dir /tmp/t"), []string{"--target-dir /tmp/t builds outside"}},
		{"CARGO_TARGET_DIR", cache.Cargo(cache.TargetDir("/src/target")), sh("CARGO_TARGET_DIR=/src/target cargo build"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.p.Warnings(tt.args)
			if len(got) != len(tt.want) {
				t.Fatalf("Warnings(%q) = %q, want %d", tt.args, got, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("warning %d = %q, want it to say %q", i, got[i], w)
				}
				if !strings.HasPrefix(got[i], tt.p.Tool()+" preset: ") {
					t.Errorf("warning %q does not name the preset", got[i])
				}
			}
		})
	}
}
