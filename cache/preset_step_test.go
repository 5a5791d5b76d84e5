package cache_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/larder-build/larder/cache"
	"github.com/larder-build/larder/mounts"
)

// forStep returns p as it applies to a step with env, run by user with
// uid:gid and home.
func forStep(p *cache.Preset, user string, uid, gid int, home string, env ...string) *cache.Preset {
	return p.ForStep(mounts.Step{Platform: amd64, User: user, UID: uid, GID: gid, Home: home, Env: env}).(*cache.Preset)
}

func targets(p *cache.Preset) []string {
	var out []string
	for _, c := range p.Caches() {
		out = append(out, c.Target)
	}
	return out
}

func TestUnitPresetsFollowTheStep(t *testing.T) {
	for _, tc := range []struct {
		name    string
		p       *cache.Preset
		user    string
		home    string
		env     []string
		targets []string
		setEnv  []string // variables the preset sets, among its Env
	}{
		{"cargo follows CARGO_HOME", cache.Cargo(), "", "/root", []string{"CARGO_HOME=/usr/local/cargo"},
			[]string{"/usr/local/cargo/registry", "/usr/local/cargo/git/db", "/root/.cache/cargo-target"}, []string{"CARGO_HOME=/usr/local/cargo"}},
		{"cargo follows CARGO_TARGET_DIR", cache.Cargo(), "", "/root", []string{"CARGO_TARGET_DIR=/app/target"},
			[]string{"/root/.cargo/registry", "/root/.cargo/git/db", "/app/target"}, []string{"CARGO_TARGET_DIR=/app/target"}},
		{"CargoHome wins over CARGO_HOME", cache.Cargo(cache.CargoHome("/opt/cargo")), "", "/root", []string{"CARGO_HOME=/usr/local/cargo"},
			[]string{"/opt/cargo/registry", "/opt/cargo/git/db", "/root/.cache/cargo-target"}, []string{"CARGO_HOME=/opt/cargo"}},
		{"npm follows the user's home", cache.Npm(), "1000:1000", "/home/app", nil,
			[]string{"/home/app/.npm"}, []string{"npm_config_cache=/home/app/.npm"}},
		{"Home wins over the user's home", cache.Npm(cache.Home("/srv")), "1000:1000", "/home/app", nil,
			[]string{"/srv/.npm"}, nil},
		{"npm follows npm_config_cache", cache.Npm(), "", "/root", []string{"npm_config_cache=/cache/npm"},
			[]string{"/cache/npm"}, nil},
		{"pip follows XDG_CACHE_HOME", cache.Pip(), "", "/root", []string{"XDG_CACHE_HOME=/xdg"},
			[]string{"/xdg/pip"}, []string{"PIP_CACHE_DIR=/xdg/pip"}},
		{"pip follows PIP_CACHE_DIR", cache.Pip(), "", "/root", []string{"PIP_CACHE_DIR=/pip"},
			[]string{"/pip"}, nil},
		{"go follows GOPATH", cache.Go(), "", "/root", []string{"GOPATH=/gopath:/other"},
			[]string{"/gopath/pkg/mod", "/root/.cache/go-build"}, nil},
		{"go follows GOMODCACHE and GOCACHE", cache.Go(), "", "/root", []string{"GOMODCACHE=/mod", "GOCACHE=/gocache"},
			[]string{"/mod", "/gocache"}, nil},
		{"a relative variable is the tool's", cache.Npm(), "", "/root", []string{"npm_config_cache=.npm"},
			[]string{"/root/.npm"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			uid := 0
			if tc.user != "" {
				uid = 1000
			}
			q := forStep(tc.p, tc.user, uid, uid, tc.home, tc.env...)
			if got := targets(q); !slices.Equal(got, tc.targets) {
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
		})
	}
}

func TestUnitPresetOwnedByTheStepsUser(t *testing.T) {
	q := forStep(cache.Npm(), "1000:1000", 1000, 1000, "/home/app")
	for _, m := range q.Mounts() {
		if s := m.String(); !strings.Contains(s, "uid=1000") || !strings.Contains(s, "gid=1000") {
			t.Errorf("mount %s, want it owned by 1000:1000", s)
		}
	}
	if q := forStep(cache.Npm(cache.Owner(5, 6)), "1000:1000", 1000, 1000, "/home/app"); !strings.Contains(q.Mounts()[0].String(), "uid=5") {
		t.Errorf("Owner does not win: %s", q.Mounts()[0])
	}
	if q := forStep(cache.Npm(), "", 0, 0, "/root"); strings.Contains(q.Mounts()[0].String(), "uid=") {
		t.Errorf("a root step's cache has an owner: %s", q.Mounts()[0])
	}
	// A user with no passwd entry: root's paths and owner, and notes.
	q = forStep(cache.Npm(), "ghost", -1, -1, "")
	if got := targets(q); !slices.Equal(got, []string{"/root/.npm"}) || len(q.Notes()) != 2 {
		t.Errorf("targets %q, notes %q", got, q.Notes())
	}
}

func TestUnitDockerfileIDs(t *testing.T) {
	p := cache.Apt(cache.DockerfileIDs(), cache.Project("ignored")).For(amd64)
	var ids []string
	for _, c := range p.Caches() {
		ids = append(ids, c.ID)
	}
	if want := []string{"//var/cache/apt", "//var/lib/apt"}; !slices.Equal(ids, want) {
		t.Errorf("ids %q, want %q", ids, want)
	}
}
