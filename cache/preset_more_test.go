package cache_test

import (
	"context"
	"errors"
	"fmt"
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

// Every new preset is a raw llb.RunOption and a mounts.StepOption; Home
// configures those with caches in the home directory, and the options of
// every preset configure them all.
var (
	_ llb.RunOption      = cache.Yarn()
	_ mounts.StepOption  = cache.Dnf()
	_ cache.CcacheOption = cache.Home("/home/app")
	_ cache.ApkOption    = cache.Project("app")
)

var linuxAmd64 = ocispecs.Platform{OS: "linux", Architecture: "amd64"}

type moreCache struct {
	target, id string
	sharing    mounts.SharingMode
}

// morePresets are the presets of preset_more.go with their defaults.
func morePresets() []*cache.Preset {
	return []*cache.Preset{cache.Yarn(), cache.YarnBerry(), cache.Pnpm(), cache.UV(), cache.Poetry(), cache.Bundler(),
		cache.Composer(), cache.Maven(), cache.Gradle(), cache.NuGet(), cache.Apk(), cache.Dnf(), cache.Ccache()}
}

func TestUnitMorePresetDefaults(t *testing.T) {
	L, S := mounts.Locked, mounts.Shared
	tests := []struct {
		preset *cache.Preset
		tool   string
		caches []moreCache
		env    []string
		files  []string
	}{
		{cache.Yarn(), "yarn", []moreCache{{"/usr/local/share/.cache/yarn", "larder/default/yarn/usr/local/share/.cache/yarn@linux/amd64", L}},
			[]string{"YARN_CACHE_FOLDER=/usr/local/share/.cache/yarn"}, nil},
		{cache.YarnBerry(), "yarnberry", []moreCache{{"/root/.yarn/berry", "larder/default/yarnberry/root/.yarn/berry@linux/amd64", S}},
			[]string{"YARN_ENABLE_GLOBAL_CACHE=false", "YARN_GLOBAL_FOLDER=/root/.yarn/berry"}, nil},
		{cache.Pnpm(), "pnpm", []moreCache{{"/root/.local/share/pnpm/store", "larder/default/pnpm/root/.local/share/pnpm/store@linux/amd64", S}},
			[]string{"npm_config_store_dir=/root/.local/share/pnpm/store", "pnpm_config_store_dir=/root/.local/share/pnpm/store"}, nil},
		{cache.UV(), "uv", []moreCache{{"/root/.cache/uv", "larder/default/uv/root/.cache/uv@linux/amd64", S}},
			[]string{"UV_CACHE_DIR=/root/.cache/uv", "UV_LINK_MODE=copy"}, nil},
		{cache.Poetry(), "poetry", []moreCache{
			{"/root/.cache/pypoetry/cache", "larder/default/poetry/root/.cache/pypoetry/cache@linux/amd64", L},
			{"/root/.cache/pypoetry/artifacts", "larder/default/poetry/root/.cache/pypoetry/artifacts@linux/amd64", L},
		}, []string{"POETRY_CACHE_DIR=/root/.cache/pypoetry"}, nil},
		{cache.Bundler(), "bundler", []moreCache{{"/root/.bundle/cache", "larder/default/bundler/root/.bundle/cache@linux/amd64", L}},
			[]string{"BUNDLE_GLOBAL_GEM_CACHE=true", "BUNDLE_USER_CACHE=/root/.bundle/cache"}, nil},
		{cache.Composer(), "composer", []moreCache{{"/root/.cache/composer", "larder/default/composer/root/.cache/composer@linux/amd64", L}},
			[]string{"COMPOSER_CACHE_DIR=/root/.cache/composer"}, nil},
		{cache.Maven(), "maven", []moreCache{{"/root/.m2/repository", "larder/default/maven/root/.m2/repository@linux/amd64", L}},
			nil, nil},
		{cache.Gradle(), "gradle", []moreCache{
			{"/root/.gradle/caches", "larder/default/gradle/root/.gradle/caches@linux/amd64", L},
			{"/root/.gradle/wrapper", "larder/default/gradle/root/.gradle/wrapper@linux/amd64", L},
		}, []string{"GRADLE_USER_HOME=/root/.gradle"}, nil},
		{cache.NuGet(), "nuget", []moreCache{{"/root/.nuget/packages", "larder/default/nuget/root/.nuget/packages@linux/amd64", L}},
			[]string{"NUGET_PACKAGES=/root/.nuget/packages"}, nil},
		{cache.Apk(), "apk", []moreCache{{"/etc/apk/cache", "larder/default/apk/etc/apk/cache@linux/amd64", L}}, nil, nil},
		{cache.Dnf(), "dnf", []moreCache{
			{"/var/cache/dnf", "larder/default/dnf/var/cache/dnf@linux/amd64", L},
			{"/var/cache/libdnf5", "larder/default/dnf/var/cache/libdnf5@linux/amd64", L},
		}, nil, []string{cache.DnfKeepCacheFile}},
		{cache.Ccache(), "ccache", []moreCache{{"/root/.cache/ccache", "larder/default/ccache/root/.cache/ccache@linux/amd64", S}},
			[]string{"CCACHE_DIR=/root/.cache/ccache"}, nil},
	}
	if len(tests) != len(morePresets()) {
		t.Fatalf("%d presets tested, %d made", len(tests), len(morePresets()))
	}
	for _, tt := range tests {
		t.Run(tt.tool, func(t *testing.T) {
			if err := tt.preset.Validate(); err != nil {
				t.Fatal(err)
			}
			if tt.preset.Tool() != tt.tool || tt.preset.Project() != cache.DefaultProject || tt.preset.Platform() != "" {
				t.Errorf("tool %q project %q platform %q", tt.preset.Tool(), tt.preset.Project(), tt.preset.Platform())
			}
			p := tt.preset.For(linuxAmd64)
			var got []moreCache
			var want []string
			for _, c := range p.Caches() {
				got = append(got, moreCache{c.Target, c.ID, c.Sharing})
			}
			for _, c := range tt.caches {
				want = append(want, c.target)
			}
			if !slices.Equal(got, tt.caches) {
				t.Errorf("caches\n got %v\nwant %v", got, tt.caches)
			}
			if env := p.Env(); len(env)+len(tt.env) > 0 && !slices.Equal(env, tt.env) {
				t.Errorf("env %q, want %q", env, tt.env)
			}
			if !slices.Equal(p.Targets(), append(want, tt.files...)) {
				t.Errorf("targets %q, want the caches then %q", p.Targets(), tt.files)
			}
			if err := mounts.Validate(p.Mounts()...); err != nil {
				t.Errorf("the preset's mounts do not validate: %v", err)
			}
		})
	}
}

// moreExec marshals one raw llb step with opts for linux/amd64 and
// returns its exec op.
func moreExec(t *testing.T, opts ...llb.RunOption) *pb.ExecOp {
	t.Helper()
	st := llb.Image("docker.io/library/alpine:3.20").Run(append([]llb.RunOption{llb.Shlex("true")}, opts...)...).Root()
	def, err := st.Marshal(context.Background(), llb.LinuxAmd64)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	var execs []*pb.ExecOp
	for _, dt := range def.Def {
		var op pb.Op
		if err := op.UnmarshalVT(dt); err != nil {
			t.Fatal(err)
		}
		if e := op.GetExec(); e != nil {
			execs = append(execs, e)
		}
	}
	if len(execs) != 1 {
		t.Fatalf("%d exec ops, want 1", len(execs))
	}
	return execs[0]
}

// Each preset as LLB: its caches are cache mounts with its ids and sharing
// modes, its variables are in the step's environment, and the dnf
// preset's file is a read-only bind of a single file.
func TestUnitMorePresetsAsLLB(t *testing.T) {
	sharing := map[mounts.SharingMode]pb.CacheSharingOpt{
		mounts.Shared: pb.CacheSharingOpt_SHARED, mounts.Locked: pb.CacheSharingOpt_LOCKED, mounts.Private: pb.CacheSharingOpt_PRIVATE,
	}
	for _, p := range morePresets() {
		t.Run(p.Tool(), func(t *testing.T) {
			e := moreExec(t, p.For(linuxAmd64))
			byDest := map[string]*pb.Mount{}
			for _, m := range e.Mounts {
				byDest[m.Dest] = m
			}
			for _, c := range p.For(linuxAmd64).Caches() {
				m := byDest[c.Target]
				if m == nil || m.MountType != pb.MountType_CACHE || m.CacheOpt.ID != c.ID || m.CacheOpt.Sharing != sharing[c.Sharing] {
					t.Errorf("mount at %s = %v, want cache %s %v", c.Target, m, c.ID, c.Sharing)
				}
			}
			for _, kv := range p.Env() {
				if !slices.Contains(e.Meta.Env, kv) {
					t.Errorf("step env %q lacks %s", e.Meta.Env, kv)
				}
			}
			for _, f := range p.Files() {
				m := byDest[f.Path]
				if m == nil || m.MountType != pb.MountType_BIND || !m.Readonly || m.Selector == "" {
					t.Errorf("file mount at %s = %v, want a read-only bind of one file", f.Path, m)
				}
			}
			if n := len(p.Caches()) + len(p.Files()) + 1; len(e.Mounts) != n {
				t.Errorf("%d mounts, want the root and %d", len(e.Mounts), n-1)
			}
		})
	}
	if f := cache.Dnf().Files(); len(f) != 1 || !strings.Contains(f[0].Content, "keepcache=True") || !strings.HasPrefix(f[0].Content, "[main]\n") {
		t.Errorf("dnf files %q, want a [main] drop-in with keepcache=True", f)
	}
}

func TestUnitMorePresetsFollowTheStep(t *testing.T) {
	step := func(p *cache.Preset, user string, uid int, home string, env ...string) *cache.Preset {
		return p.ForStep(mounts.Step{Platform: linuxAmd64, User: user, UID: uid, GID: uid, Home: home, Env: env}).(*cache.Preset)
	}
	for _, tc := range []struct {
		name    string
		p       *cache.Preset
		user    string
		home    string
		env     []string
		targets []string
		setEnv  []string
	}{
		{"yarn follows YARN_CACHE_FOLDER", cache.Yarn(), "", "/root", []string{"YARN_CACHE_FOLDER=/cache/yarn/"},
			[]string{"/cache/yarn"}, []string{"YARN_CACHE_FOLDER=/cache/yarn"}},
		{"yarn follows XDG_CACHE_HOME", cache.Yarn(), "", "/root", []string{"XDG_CACHE_HOME=/xdg"},
			[]string{"/xdg/yarn"}, []string{"YARN_CACHE_FOLDER=/xdg/yarn"}},
		{"yarn for a user is in the home", cache.Yarn(), "node", "/home/node", nil,
			[]string{"/home/node/.cache/yarn"}, []string{"YARN_CACHE_FOLDER=/home/node/.cache/yarn"}},
		{"yarn with Home is in the home", cache.Yarn(cache.Home("/root")), "", "/root", nil,
			[]string{"/root/.cache/yarn"}, nil},
		{"berry follows YARN_GLOBAL_FOLDER", cache.YarnBerry(), "", "/root", []string{"YARN_GLOBAL_FOLDER=/yarn"},
			[]string{"/yarn"}, []string{"YARN_GLOBAL_FOLDER=/yarn", "YARN_ENABLE_GLOBAL_CACHE=false"}},
		{"berry follows XDG_DATA_HOME", cache.YarnBerry(), "node", "/home/node", []string{"XDG_DATA_HOME=/data"},
			[]string{"/data/yarn/berry"}, nil},
		{"berry turns the global cache off", cache.YarnBerry(), "", "/root", []string{"YARN_ENABLE_GLOBAL_CACHE=true"},
			[]string{"/root/.yarn/berry"}, []string{"YARN_ENABLE_GLOBAL_CACHE=false"}},
		{"pnpm follows PNPM_HOME", cache.Pnpm(), "", "/root", []string{"PNPM_HOME=/pnpm"},
			[]string{"/pnpm/store"}, []string{"pnpm_config_store_dir=/pnpm/store", "npm_config_store_dir=/pnpm/store"}},
		{"pnpm store dir wins over PNPM_HOME", cache.Pnpm(), "", "/root", []string{"PNPM_HOME=/pnpm", "npm_config_store_dir=/store"},
			[]string{"/store"}, []string{"pnpm_config_store_dir=/store"}},
		{"pnpm 11's variable wins", cache.Pnpm(), "", "/root", []string{"npm_config_store_dir=/old", "pnpm_config_store_dir=/new"},
			[]string{"/new"}, nil},
		{"pnpm follows XDG_DATA_HOME", cache.Pnpm(), "", "/root", []string{"XDG_DATA_HOME=/data"},
			[]string{"/data/pnpm/store"}, nil},
		{"uv follows UV_CACHE_DIR", cache.UV(), "", "/root", []string{"UV_CACHE_DIR=/cache/uv"},
			[]string{"/cache/uv"}, []string{"UV_CACHE_DIR=/cache/uv", "UV_LINK_MODE=copy"}},
		{"uv's link mode is copy whatever the image says", cache.UV(), "", "/root", []string{"UV_LINK_MODE=symlink"},
			[]string{"/root/.cache/uv"}, []string{"UV_LINK_MODE=copy"}},
		{"poetry follows POETRY_CACHE_DIR", cache.Poetry(), "", "/root", []string{"POETRY_CACHE_DIR=/tmp/poetry"},
			[]string{"/tmp/poetry/cache", "/tmp/poetry/artifacts"}, []string{"POETRY_CACHE_DIR=/tmp/poetry"}},
		{"bundler follows BUNDLE_USER_HOME", cache.Bundler(), "", "/root", []string{"BUNDLE_USER_HOME=/bundle"},
			[]string{"/bundle/cache"}, []string{"BUNDLE_USER_CACHE=/bundle/cache"}},
		{"bundler follows BUNDLE_USER_CACHE", cache.Bundler(), "", "/root", []string{"BUNDLE_USER_HOME=/bundle", "BUNDLE_USER_CACHE=/gems"},
			[]string{"/gems"}, nil},
		{"composer follows COMPOSER_HOME", cache.Composer(), "", "/root", []string{"COMPOSER_HOME=/tmp"},
			[]string{"/tmp/cache"}, []string{"COMPOSER_CACHE_DIR=/tmp/cache"}},
		{"composer follows COMPOSER_CACHE_DIR", cache.Composer(), "", "/root", []string{"COMPOSER_HOME=/tmp", "COMPOSER_CACHE_DIR=/cc"},
			[]string{"/cc"}, nil},
		{"maven follows MAVEN_OPTS", cache.Maven(), "", "/root", []string{"MAVEN_OPTS=-Xmx1g -Dmaven.repo.local=/m2/repo"},
			[]string{"/m2/repo"}, nil},
		{"maven's MAVEN_ARGS wins", cache.Maven(), "", "/root", []string{"MAVEN_OPTS=-Dmaven.repo.local=/a", "MAVEN_ARGS=-B -D maven.repo.local=/b"},
			[]string{"/b"}, nil},
		{"maven leaves a relative repository to maven", cache.Maven(), "", "/root", []string{"MAVEN_OPTS=-Dmaven.repo.local=repo"},
			[]string{"/root/.m2/repository"}, nil},
		{"maven for a user", cache.Maven(), "1000:1000", "/home/app", nil,
			[]string{"/home/app/.m2/repository"}, nil},
		{"gradle follows GRADLE_USER_HOME", cache.Gradle(), "", "/root", []string{"GRADLE_USER_HOME=/home/gradle/.gradle"},
			[]string{"/home/gradle/.gradle/caches", "/home/gradle/.gradle/wrapper"}, []string{"GRADLE_USER_HOME=/home/gradle/.gradle"}},
		{"nuget follows NUGET_PACKAGES", cache.NuGet(), "", "/root", []string{"NUGET_PACKAGES=/nuget"},
			[]string{"/nuget"}, []string{"NUGET_PACKAGES=/nuget"}},
		{"nuget for a user", cache.NuGet(), "app", "/home/app", nil,
			[]string{"/home/app/.nuget/packages"}, []string{"NUGET_PACKAGES=/home/app/.nuget/packages"}},
		{"ccache follows CCACHE_DIR", cache.Ccache(), "", "/root", []string{"CCACHE_DIR=/ccache"},
			[]string{"/ccache"}, []string{"CCACHE_DIR=/ccache"}},
		{"ccache follows XDG_CACHE_HOME", cache.Ccache(), "", "/root", []string{"XDG_CACHE_HOME=/xdg"},
			[]string{"/xdg/ccache"}, nil},
		{"apk is the system's", cache.Apk(), "1000", "/home/app", []string{"XDG_CACHE_HOME=/xdg"},
			[]string{"/etc/apk/cache"}, nil},
		{"dnf is the system's", cache.Dnf(), "", "/root", []string{"XDG_CACHE_HOME=/xdg"},
			[]string{"/var/cache/dnf", "/var/cache/libdnf5"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			uid := 0
			if tc.user != "" {
				uid = 1000
			}
			q := step(tc.p, tc.user, uid, tc.home, tc.env...)
			var got []string
			for _, c := range q.Caches() {
				got = append(got, c.Target)
			}
			if !slices.Equal(got, tc.targets) {
				t.Errorf("targets %q, want %q", got, tc.targets)
			}
			for _, e := range tc.setEnv {
				if !slices.Contains(q.Env(), e) {
					t.Errorf("env %q, want %s", q.Env(), e)
				}
			}
			if err := q.Validate(); err != nil {
				t.Error(err)
			}
			if tc.user != "" {
				for _, m := range q.For(linuxAmd64).Mounts() {
					if _, isCache := m.(*mounts.CacheMount); isCache && !strings.Contains(m.String(), "uid=1000") {
						t.Errorf("mount %s, want it owned by the step's user", m)
					}
				}
			}
		})
	}
}

// Explicit options win over the step's variables for what they set, and
// Home only moves the default.
func TestUnitMorePresetOptions(t *testing.T) {
	forStep := func(p *cache.Preset, env ...string) *cache.Preset {
		return p.ForStep(mounts.Step{Platform: linuxAmd64, Home: "/root", Env: env}).(*cache.Preset)
	}
	ids := func(p *cache.Preset) []string {
		var out []string
		for _, c := range p.For(linuxAmd64).Caches() {
			out = append(out, c.Target+" "+c.ID+" "+c.Sharing.String())
		}
		return out
	}
	for _, tc := range []struct {
		name string
		p    *cache.Preset
		want []string
	}{
		{"project", cache.UV(cache.Project("shop")),
			[]string{"/root/.cache/uv larder/shop/uv/root/.cache/uv@linux/amd64 shared"}},
		{"sharing", cache.Gradle(cache.Sharing(mounts.Shared, "/root/.gradle/wrapper")),
			[]string{"/root/.gradle/caches larder/default/gradle/root/.gradle/caches@linux/amd64 locked",
				"/root/.gradle/wrapper larder/default/gradle/root/.gradle/wrapper@linux/amd64 shared"}},
		{"across platforms", cache.Pnpm(cache.AcrossPlatforms()),
			[]string{"/root/.local/share/pnpm/store larder/default/pnpm/root/.local/share/pnpm/store shared"}},
		{"dockerfile ids", cache.Apk(cache.DockerfileIDs()),
			[]string{"/etc/apk/cache //etc/apk/cache locked"}},
		{"home", cache.Composer(cache.Home("/home/app")),
			[]string{"/home/app/.cache/composer larder/default/composer/home/app/.cache/composer@linux/amd64 locked"}},
		{"the tool's variable wins over Home", forStep(cache.NuGet(cache.Home("/home/app")), "NUGET_PACKAGES=/nuget"),
			[]string{"/nuget larder/default/nuget/nuget@linux/amd64 locked"}},
		{"Home wins over the step's home", forStep(cache.Bundler(cache.Home("/srv"))),
			[]string{"/srv/.bundle/cache larder/default/bundler/srv/.bundle/cache@linux/amd64 locked"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.p.Validate(); err != nil {
				t.Fatal(err)
			}
			if got := ids(tc.p); !slices.Equal(got, tc.want) {
				t.Errorf("caches\n got %q\nwant %q", got, tc.want)
			}
		})
	}
	p := cache.Ccache(cache.Home("/home/app"), cache.Owner(1000, 1000)).For(linuxAmd64)
	if ms := p.Mounts(); len(ms) != 1 || !strings.Contains(ms[0].String(), "uid=1000,gid=1000") {
		t.Errorf("mounts %v, want the cache owned by 1000:1000", ms)
	}
}

func TestUnitMorePresetErrors(t *testing.T) {
	for _, tc := range []struct {
		name, option, value, says string
		p                         *cache.Preset
	}{
		{"relative home", "Home", "home/app", `did you mean "/home/app"`, cache.Yarn(cache.Home("home/app"))},
		{"sharing target", "Sharing", "/root/.cache/pip", "name one of /root/.cache/pypoetry/cache, /root/.cache/pypoetry/artifacts",
			cache.Poetry(cache.Sharing(mounts.Shared, "/root/.cache/pip"))},
		{"across target", "AcrossPlatforms", "/var/cache/apt", "name one of /var/cache/dnf, /var/cache/libdnf5",
			cache.Dnf(cache.AcrossPlatforms("/var/cache/apt"))},
		{"nil option", "", "", "option 1 is nil", cache.Maven(nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Validate()
			var ce *cache.Error
			if !errors.As(err, &ce) || ce.Option != tc.option || ce.Value != tc.value || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("Validate() = %v, want option %q value %q saying %q", err, tc.option, tc.value, tc.says)
			}
			if !strings.Contains(err.Error(), tc.p.Tool()+" preset") {
				t.Errorf("error %q does not name the %s preset", err, tc.p.Tool())
			}
		})
	}
}

// The build package gives the presets their step: a stage's variable
// moves the cache, and the stage reports what defeats it.
func TestUnitMorePresetsInBuildStages(t *testing.T) {
	s := build.Image("node:22").Env("YARN_CACHE_FOLDER", "/cache/yarn").Run("yarn install --frozen-lockfile", cache.Yarn())
	def, err := s.Marshal(context.Background(), "linux/amd64")
	if err != nil {
		t.Fatal(err)
	}
	var cached []string
	for _, dt := range def.Def {
		var op pb.Op
		if err := op.UnmarshalVT(dt); err != nil {
			t.Fatal(err)
		}
		if e := op.GetExec(); e != nil {
			for _, m := range e.Mounts {
				if m.MountType == pb.MountType_CACHE {
					cached = append(cached, m.Dest+" "+m.CacheOpt.ID)
				}
			}
		}
	}
	if want := []string{"/cache/yarn larder/default/yarn/cache/yarn@linux/amd64"}; !slices.Equal(cached, want) {
		t.Errorf("cache mounts %q, want %q", cached, want)
	}
	s = build.Image("alpine:3.20").Run("apk add --no-cache gcc", cache.Apk())
	if w := s.Warnings(); len(w) != 1 || !strings.Contains(w[0], "--no-cache keeps apk away") {
		t.Errorf("warnings %q, want one about --no-cache", w)
	}
}

func TestUnitMorePresetWarnings(t *testing.T) {
	sh := func(script string) []string { return []string{"/bin/sh", "-c", script} }
	tests := []struct {
		name string
		p    *cache.Preset
		args []string
		want []string // substrings, one per warning
	}{
		{"yarn cache clean", cache.Yarn(), sh("yarn install --frozen-lockfile && yarn cache clean"),
			[]string{`"yarn cache clean" empties the cache at /usr/local/share/.cache/yarn`}},
		{"yarn cache-folder", cache.Yarn(), sh("yarn --cache-folder /tmp/y install"), []string{"--cache-folder /tmp/y points yarn away"}},
		{"yarn cache-folder same", cache.Yarn(), sh(`yarn install --cache-folder="$YARN_CACHE_FOLDER"`), nil},
		{"yarn rm cache", cache.Yarn(), sh("rm -rf /usr/local/share/.cache/yarn/*"), []string{"deletes what the cache at /usr/local/share/.cache/yarn holds"}},
		{"yarn install", cache.Yarn(), sh("yarn install --cache-folder /usr/local/share/.cache/yarn --mutex network"), nil},

		{"berry clean mirror", cache.YarnBerry(), sh("yarn install --immutable && yarn cache clean --mirror"),
			[]string{"empties the mirror at /root/.yarn/berry/cache"}},
		{"berry clean local cache", cache.YarnBerry(), sh("yarn cache clean"), nil},
		{"berry mirror off", cache.YarnBerry(), sh("YARN_ENABLE_MIRROR=false yarn install"), []string{"YARN_ENABLE_MIRROR=false keeps yarn from its mirror"}},

		{"pnpm store prune", cache.Pnpm(), sh("pnpm install --frozen-lockfile; pnpm store prune"),
			[]string{`"pnpm store prune" deletes the packages other builds use from the store at /root/.local/share/pnpm/store`}},
		{"pnpm store-dir", cache.Pnpm(), sh("pnpm install --store-dir=/tmp/s"), []string{"--store-dir /tmp/s points pnpm away"}},
		{"pnpm store path", cache.Pnpm(), sh("pnpm store path && pnpm fetch"), nil},

		{"uv cache clean", cache.UV(), sh("uv sync --locked && uv cache clean"), []string{`"uv cache clean" empties the cache at /root/.cache/uv`}},
		{"uv prune ci", cache.UV(), sh("uv cache prune --ci"), []string{"empties the cache"}},
		{"uv prune", cache.UV(), sh("uv cache prune"), nil},
		{"uv no-cache", cache.UV(), sh("uv pip install --system --no-cache flask"), []string{"--no-cache keeps uv away"}},
		{"uv -n", cache.UV(), sh("uv -n sync"), []string{"--no-cache keeps uv away"}},
		{"uv run's command", cache.UV(), sh("uv run --with pytest-xdist pytest -n 4 --no-cache"), nil},
		{"uvx's command", cache.UV(), sh("uvx ruff check --no-cache"), nil},
		{"uvx no-cache", cache.UV(), sh("uvx --no-cache ruff check"), []string{"--no-cache keeps uv away"}},
		{"UV_NO_CACHE", cache.UV(), sh("UV_NO_CACHE=1 uv sync"), []string{"UV_NO_CACHE=1 keeps uv away"}},
		{"uv symlink", cache.UV(), sh("uv sync --link-mode symlink"), []string{"--link-mode symlink links the installed packages"}},
		{"uv cache-dir", cache.UV(), sh("uv sync --cache-dir /tmp/uv"), []string{"--cache-dir /tmp/uv points uv away"}},

		{"poetry cache clear", cache.Poetry(), sh("poetry install --no-root && poetry cache clear --all pypi -n"),
			[]string{"empties the caches at /root/.cache/pypoetry/cache and /root/.cache/pypoetry/artifacts"}},
		{"poetry clear one", cache.Poetry(), sh("poetry cache clear pypi:requests:2.31.0"), nil},
		{"poetry no-cache", cache.Poetry(), sh("poetry install --no-cache"), []string{"--no-cache keeps poetry away"}},
		{"poetry run", cache.Poetry(), sh("poetry run tool --no-cache"), nil},
		{"poetry venv", cache.Poetry(), sh("rm -rf /root/.cache/pypoetry/virtualenvs"), nil},

		{"bundler no-cache", cache.Bundler(), sh("bundle install --no-cache"), nil},
		{"bundler user cache", cache.Bundler(), sh("BUNDLE_USER_CACHE=/tmp/b bundle install"), []string{"BUNDLE_USER_CACHE=/tmp/b points bundler away"}},
		{"bundler rm", cache.Bundler(), sh("bundle install && rm -rf ~/.bundle/cache"), []string{"deletes what the cache at /root/.bundle/cache holds"}},

		{"composer clear-cache", cache.Composer(), sh("composer install --no-dev && composer clear-cache"),
			[]string{`"composer clear-cache" empties the cache at /root/.cache/composer`}},
		{"composer cc phar", cache.Composer(), sh("php -d memory_limit=-1 composer.phar cc"), []string{"empties the cache"}},
		{"composer no-cache", cache.Composer(), sh("composer install --no-cache"), []string{"--no-cache keeps composer away"}},
		{"composer script argument", cache.Composer(), sh("composer run-script build -- --no-cache"), nil},
		{"composer dev-null", cache.Composer(), sh("COMPOSER_CACHE_DIR=/dev/null composer install"), []string{"COMPOSER_CACHE_DIR=/dev/null points composer away"}},

		{"maven purge", cache.Maven(), sh("mvn -B dependency:purge-local-repository package"),
			[]string{"deletes the project's dependencies from the repository at /root/.m2/repository"}},
		{"maven purge full name", cache.Maven(), sh("./mvnw org.apache.maven.plugins:maven-dependency-plugin:3.6.1:purge-local-repository"), []string{"deletes the project's dependencies"}},
		{"maven repo local", cache.Maven(), sh("mvn -Dmaven.repo.local=/tmp/m2 package"), []string{"-Dmaven.repo.local=/tmp/m2 points maven away"}},
		{"maven repo local same", cache.Maven(), sh("mvn -D maven.repo.local=/root/.m2/repository/ package"), nil},
		{"maven opts", cache.Maven(), sh("MAVEN_OPTS='-Xmx1g -Dmaven.repo.local=.m2' mvn package"), []string{"in MAVEN_OPTS points maven away"}},
		{"maven package", cache.Maven(), sh("mvn -B -q package -DskipTests"), nil},

		{"gradle no build cache", cache.Gradle(), sh("./gradlew build --no-build-cache"),
			[]string{"--no-build-cache turns off Gradle's build cache, which the preset keeps in /root/.gradle/caches/build-cache-1"}},
		{"gradle user home", cache.Gradle(), sh("gradle -g /tmp/g build"), []string{"-g /tmp/g points gradle away from the preset's caches at /root/.gradle/caches and /root/.gradle/wrapper"}},
		{"gradle build", cache.Gradle(), sh("gradle build --build-cache --no-daemon"), nil},

		{"nuget clear all", cache.NuGet(), sh("dotnet restore && dotnet nuget locals all --clear"),
			[]string{`empties the global packages folder at /root/.nuget/packages`}},
		{"nuget clear global", cache.NuGet(), sh("dotnet nuget locals --clear global-packages"), []string{"empties the global packages folder"}},
		{"nuget clear http", cache.NuGet(), sh("dotnet nuget locals http-cache --clear"), nil},
		{"nuget.exe", cache.NuGet(), sh("nuget locals all -Clear"), []string{"empties the global packages folder"}},
		{"nuget packages", cache.NuGet(), sh("dotnet restore --packages /src/packages"), []string{"--packages /src/packages points NuGet away"}},
		{"nuget restore no-cache", cache.NuGet(), sh("dotnet restore --no-cache"), nil},

		{"apk no-cache", cache.Apk(), sh("apk add --no-cache gcc musl-dev"), []string{"--no-cache keeps apk away from the cache at /etc/apk/cache"}},
		{"apk no-cache first", cache.Apk(), sh("apk --no-cache add -t .build-deps gcc"), []string{"--no-cache keeps apk away"}},
		{"apk cache clean", cache.Apk(), sh("apk add gcc && apk cache clean"), []string{`"apk cache clean" deletes the packages other builds use from the cache at /etc/apk/cache`}},
		{"apk add", cache.Apk(), sh("apk update && apk add -t .deps gcc && rm -rf /var/cache/apk/*"), nil},

		{"dnf clean", cache.Dnf(), sh("dnf -y install gcc && dnf clean all"),
			[]string{`"dnf clean all" empties the caches at /var/cache/dnf and /var/cache/libdnf5`}},
		{"yum clean", cache.Dnf(), sh("yum install -y gcc; yum clean all"), []string{"empties the caches"}},
		{"dnf keepcache off", cache.Dnf(), sh("dnf install -y --setopt=keepcache=0 gcc"), []string{"--setopt=keepcache=0 deletes the downloaded packages"}},
		{"dnf keepcache on", cache.Dnf(), sh("dnf install -y --setopt keepcache=1 --setopt=install_weak_deps=False gcc"), nil},
		{"dnf rm cache", cache.Dnf(), sh("rm -rf /var/cache/dnf/*"), []string{"deletes what the cache at /var/cache/dnf holds"}},
		{"dnf install clean is a package", cache.Dnf(), sh("dnf install -y clean"), nil},

		{"ccache clear", cache.Ccache(), sh("make && ccache -C"), []string{`"ccache -C" empties the cache at /root/.cache/ccache`}},
		{"ccache clear long", cache.Ccache(), sh("ccache -M 5G --clear"), []string{"empties the cache"}},
		{"ccache compiler option", cache.Ccache(), sh("ccache gcc -E -C x.c"), nil},
		{"ccache disable", cache.Ccache(), sh("CCACHE_DISABLE=1 make"), []string{"CCACHE_DISABLE=1 turns ccache off"}},
		{"ccache disable off", cache.Ccache(), sh("CCACHE_DISABLE=0 make"), nil},
		{"ccache recache", cache.Ccache(), sh("export CCACHE_RECACHE=1; make"), []string{"CCACHE_RECACHE=1 makes ccache compile everything again"}},
		{"ccache config disable", cache.Ccache(), sh("ccache -o disable=true"), []string{"turns ccache off in the configuration of the cache"}},
		{"ccache stats", cache.Ccache(), sh("ccache -z && make CC='ccache gcc' && ccache -s"), nil},
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

// Variables the presets set that are not paths: each has a warning of its
// own, whatever the preset's other warnings say of the same assignment.
func TestUnitMorePresetSettingWarnings(t *testing.T) {
	for _, tc := range []struct {
		p      *cache.Preset
		script string
		says   string
	}{
		{cache.YarnBerry(), "YARN_ENABLE_GLOBAL_CACHE=true yarn install", "makes a Plug'n'Play install load its packages from /root/.yarn/berry"},
		{cache.UV(), "export UV_LINK_MODE=symlink\nuv sync", "UV_LINK_MODE=symlink links the installed packages to the cache at /root/.cache/uv"},
		{cache.Bundler(), "BUNDLE_GLOBAL_GEM_CACHE=false bundle install", "keeps the gems Bundler downloads out of the cache at /root/.bundle/cache"},
	} {
		got := tc.p.Warnings([]string{"/bin/sh", "-c", tc.script})
		if !slices.ContainsFunc(got, func(w string) bool { return strings.Contains(w, tc.says) }) {
			t.Errorf("%s: Warnings(%q) = %q, want one saying %q", tc.p.Tool(), tc.script, got, tc.says)
		}
	}
	// What a preset sets itself is no warning.
	for _, p := range morePresets() {
		script := strings.Join(p.Env(), " ") + " true"
		if w := p.Warnings([]string{"/bin/sh", "-c", script}); len(w) != 0 {
			t.Errorf("%s: its own variables %q warn: %q", p.Tool(), script, w)
		}
	}
}

// Every warning names a cache target, so that build.Dockerfile can tell
// the RUN lines that mount it.
func TestUnitMorePresetWarningsNameATarget(t *testing.T) {
	scripts := []string{"yarn cache clean --all", "pnpm store prune", "uv cache clean", "uv sync --no-cache --link-mode=symlink",
		"UV_NO_CACHE=1 YARN_ENABLE_MIRROR=0 YARN_ENABLE_GLOBAL_CACHE=1 CCACHE_DISABLE=1 CCACHE_RECACHE=1 BUNDLE_GLOBAL_GEM_CACHE=0 true",
		"poetry cache clear --all . --no-cache", "composer cc --no-cache", "mvn -Dmaven.repo.local=/x dependency:purge-local-repository",
		"gradle --no-build-cache -g /x", "dotnet nuget locals all -c", "dotnet restore --packages /x", "apk --no-cache --cache-dir /x cache purge",
		"dnf clean all --setopt=keepcache=0", "ccache -C -o disable=true", "yarn --cache-folder /x", "pnpm i --store-dir /x"}
	for _, p := range morePresets() {
		// Preset.Warnings reads every variable a preset sets as a path; of
		// those that are settings, such as YARN_ENABLE_GLOBAL_CACHE=false,
		// the preset's own warning names the cache.
		var settings []string
		for _, kv := range p.Env() {
			if name, v, _ := strings.Cut(kv, "="); !strings.HasPrefix(v, "/") {
				settings = append(settings, p.Tool()+" preset: "+name+"=")
			}
		}
		for _, s := range scripts {
			for _, w := range p.Warnings([]string{"/bin/sh", "-c", s}) {
				if slices.ContainsFunc(settings, func(prefix string) bool { return strings.HasPrefix(w, prefix) && strings.Contains(w, " points ") }) {
					continue
				}
				if !slices.ContainsFunc(p.Targets(), func(t string) bool { return strings.Contains(w, t) }) {
					t.Errorf("%s: warning %q names none of %q", p.Tool(), w, p.Targets())
				}
			}
		}
	}
}

func FuzzMorePresetWarnings(f *testing.F) {
	for _, s := range []string{"yarn cache clean --mirror", "uv run -n", "ccache -o", "mvn -D", "dnf --setopt", "php composer.phar",
		"dotnet nuget locals", "poetry run", "apk cache", "gradle -g", "uvx", "uv tool run"} {
		f.Add(s)
	}
	presets := morePresets()
	f.Fuzz(func(t *testing.T, s string) {
		for _, p := range presets {
			p.Warnings([]string{"/bin/sh", "-c", s})
			p.Warnings(strings.Fields(s))
		}
	})
}

func ExampleYarnBerry() {
	// The project's own cache stays in the image; the mirror is the cache.
	berry := cache.YarnBerry()
	fmt.Println(berry.Env())
	for _, c := range berry.For(linuxAmd64).Caches() {
		fmt.Println(c.Target, c.Sharing, c.ID)
	}
	// Output:
	// [YARN_ENABLE_GLOBAL_CACHE=false YARN_GLOBAL_FOLDER=/root/.yarn/berry]
	// /root/.yarn/berry shared larder/default/yarnberry/root/.yarn/berry@linux/amd64
}
