package cache_test

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/cache"
	"github.com/larder-build/larder/internal/testenv"
)

var moreTools struct {
	once  sync.Once
	stage build.Stage
	err   error
}

// moreToolStage is the tool stage with ccache, gcc and yarn from Debian and
// pnpm from the npm registry, solved once per test binary.
func moreToolStage(t *testing.T) (*testenv.Env, build.Stage) {
	t.Helper()
	env, tools := toolStage(t)
	moreTools.once.Do(func() {
		moreTools.stage = tools.
			Run("apt-get update && apt-get install -y --no-install-recommends ccache gcc libc6-dev yarnpkg",
				cache.Apt(cache.Project("larder-test-tools"))).
			Run("npm install -g --no-audit --no-fund pnpm@9.15.0", append(hostTrust(t), cache.Npm(cache.Project("larder-test-tools")))...)
		_, moreTools.err = build.Solve(presetCtx(t), env.Builder, moreTools.stage)
	})
	if moreTools.err != nil {
		t.Fatalf("installing the tools: %v", moreTools.err)
	}
	return env, moreTools.stage
}

// packageJSON is a project that depends on deps ("name": "version", …).
func packageJSON(deps string) string {
	return `{"name": "app", "version": "1.0.0", "private": true, "dependencies": {` + deps + `}}`
}

// yarnTarballs returns the package tarballs yarn's verbose output says it
// requested: `verbose 0.4 Performing "GET" request to "https://registry.npmjs.org/ms/-/ms-2.1.3.tgz".`
func yarnTarballs(lines []string) []string {
	var out []string
	re := regexp.MustCompile(`Performing "GET" request to "[^"]*/-/([^"/]+\.tgz)"`)
	for _, l := range lines {
		if m := re.FindStringSubmatch(l); m != nil {
			out = append(out, m[1])
		}
	}
	slices.Sort(out)
	return out
}

func TestYarnPresetDownloadsOnlyNewPackages(t *testing.T) {
	env, tools := moreToolStage(t)
	yarn := cache.Yarn(cache.Project("yarn-" + presetNonce()))
	install := func(deps string) build.Stage {
		return tools.Run("mkdir -p /app && cd /app && printf '%s' '"+packageJSON(deps)+"' > package.json && "+
			"yarnpkg install --verbose --non-interactive --registry https://registry.npmjs.org/ # "+yarn.Project(), append(hostTrust(t), yarn)...)
	}
	_, lines1 := presetSolve(t, env, install(`"is-number": "7.0.0"`))
	_, lines2 := presetSolve(t, env, install(`"is-number": "7.0.0", "ms": "2.1.3"`))
	got1, got2 := yarnTarballs(lines1), yarnTarballs(lines2)
	t.Logf("build 1 fetched %v; build 2 fetched %v", got1, got2)
	if !slices.Equal(got1, []string{"is-number-7.0.0.tgz"}) {
		t.Fatalf("build 1 fetched %v, want is-number; yarn printed:\n%s", got1, strings.Join(lines1, "\n"))
	}
	if !slices.Equal(got2, []string{"ms-2.1.3.tgz"}) {
		t.Errorf("build 2 fetched %v, want only ms; yarn printed:\n%s", got2, strings.Join(lines2, "\n"))
	}
}

// pnpmProgress returns what pnpm's last progress line says it downloaded
// and reused: "Progress: resolved 2, reused 1, downloaded 1, added 2, done".
func pnpmProgress(t *testing.T, lines []string) (downloaded, reused int) {
	t.Helper()
	re := regexp.MustCompile(`reused (\d+), downloaded (\d+)`)
	found := false
	for _, l := range lines {
		if m := re.FindStringSubmatch(l); m != nil {
			reused, _ = strconv.Atoi(m[1])
			downloaded, _ = strconv.Atoi(m[2])
			found = true
		}
	}
	if !found {
		t.Fatalf("no progress line in pnpm's output:\n%s", strings.Join(lines, "\n"))
	}
	return downloaded, reused
}

func TestPnpmPresetDownloadsOnlyNewPackages(t *testing.T) {
	env, tools := moreToolStage(t)
	pnpm := cache.Pnpm(cache.Project("pnpm-" + presetNonce()))
	install := func(deps string) build.Stage {
		return tools.Run("mkdir -p /app && cd /app && printf '%s' '"+packageJSON(deps)+"' > package.json && "+
			"pnpm install --reporter=append-only --config.registry=https://registry.npmjs.org/ # "+pnpm.Project(), append(hostTrust(t), pnpm)...)
	}
	_, lines1 := presetSolve(t, env, install(`"is-number": "7.0.0"`))
	_, lines2 := presetSolve(t, env, install(`"is-number": "7.0.0", "ms": "2.1.3"`))
	d1, r1 := pnpmProgress(t, lines1)
	d2, r2 := pnpmProgress(t, lines2)
	t.Logf("build 1: downloaded %d, reused %d; build 2: downloaded %d, reused %d", d1, r1, d2, r2)
	if d1 != 1 || d2 != 1 || r2 != 1 {
		t.Errorf("build 1 downloaded %d; build 2 downloaded %d and reused %d, want 1, 1 and 1; pnpm printed:\n%s", d1, d2, r2, strings.Join(lines2, "\n"))
	}
}

// ccacheStats returns ccache's counters from `ccache --print-stats`
// ("direct_cache_hit\t1").
func ccacheStats(lines []string) map[string]int {
	out := map[string]int{}
	for _, l := range lines {
		if f := strings.Fields(l); len(f) == 2 {
			if n, err := strconv.Atoi(f[1]); err == nil {
				out[f[0]] = n
			}
		}
	}
	return out
}

func TestCcachePresetCompilesOnlyWhatChanged(t *testing.T) {
	env, tools := moreToolStage(t)
	cc := cache.Ccache(cache.Project("ccache-" + presetNonce()))
	compile := func(b string) build.Stage {
		return tools.Run("mkdir -p /src && cd /src && echo 'int a(void) { return 1; }' > a.c && echo '"+b+"' > b.c && "+
			"ccache -z >/dev/null && ccache gcc -c a.c && ccache gcc -c b.c && ccache --print-stats | grep -E '^(direct_cache_hit|preprocessed_cache_hit|cache_miss)\t' # "+cc.Project(), cc)
	}
	_, lines1 := presetSolve(t, env, compile("int b(void) { return 2; }"))
	_, lines2 := presetSolve(t, env, compile("int b(void) { return 3; }"))
	s1, s2 := ccacheStats(lines1), ccacheStats(lines2)
	t.Logf("build 1: %v; build 2: %v", s1, s2)
	if s1["cache_miss"] != 2 {
		t.Errorf("build 1 missed %d, want both files", s1["cache_miss"])
	}
	if s2["cache_miss"] != 1 || s2["direct_cache_hit"]+s2["preprocessed_cache_hit"] != 1 {
		t.Errorf("build 2: %v, want a.c from the cache and b.c compiled", s2)
	}
}
