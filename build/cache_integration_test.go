package build_test

import (
	"testing"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/cache"
	"github.com/larder-build/larder/internal/testenv"
	"github.com/larder-build/larder/remote"
)

// cacheGraph has a side stage that only a mode=max export keeps: its steps
// are not layers of the final image. first changes the first step, so that
// the copy from the side stage must run again and needs the side stage.
func cacheGraph(bb, n, first string) build.Stage {
	side := build.Image(bb).Run("echo side " + n + " > /side")
	return build.Image(bb).
		Run("echo "+first+" "+n+" > /one").
		Copy(side, "/side", "/side").
		Run("cat /one /side > /both")
}

// sideStageCached solves g on a fresh daemon importing from, and reports
// whether the side stage's step came from cache.
func sideStageCached(t *testing.T, env *testenv.Env, g build.Stage, from build.SolveOption) bool {
	t.Helper()
	res, err := build.Solve(ctxT(t), freshBuilder(t, env), g, from)
	if err != nil {
		t.Fatal(err)
	}
	s, ok := res.Report.Find("echo side")
	if !ok {
		t.Fatalf("no side step in the report:\n%s", res.Report)
	}
	return s.Cached
}

// freshBuilder starts a daemon with an empty state directory.
func freshBuilder(t *testing.T, env *testenv.Env) *remote.Builder {
	t.Helper()
	b, err := env.NewBuilder(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// exportThenImport solves the graph on one fresh daemon with export, then
// on another with import, and checks that every step of the second came
// from cache.
func exportThenImport(t *testing.T, env *testenv.Env, g build.Stage, export, imports []build.SolveOption) {
	t.Helper()
	first, err := build.Solve(ctxT(t), freshBuilder(t, env), g, export...)
	if err != nil {
		t.Fatal(err)
	}
	if first.Report.RanSteps() == 0 {
		t.Fatalf("the first solve on a fresh daemon ran nothing:\n%s", first.Report)
	}
	second, err := build.Solve(ctxT(t), freshBuilder(t, env), g, imports...)
	if err != nil {
		t.Fatal(err)
	}
	if second.Report.RanSteps() != 0 || second.Report.CachedSteps() != first.Report.RanSteps() {
		t.Fatalf("with the cache imported, every step should come from cache:\nfirst: %s\nsecond: %s", first.Report, second.Report)
	}
}

func TestRegistryCacheModeMaxOnFreshDaemons(t *testing.T) {
	env, bb := setup(t)
	ref := env.Registry + "/test/cache:max-" + nonce()
	n := nonce()
	from := build.CacheFrom(cache.Registry(ref))
	exportThenImport(t, env, cacheGraph(bb, n, "one"),
		[]build.SolveOption{build.CacheTo(cache.Registry(ref, cache.ModeMax))},
		[]build.SolveOption{from})
	if !sideStageCached(t, env, cacheGraph(bb, n, "changed"), from) {
		t.Error("with mode=max, the side stage should come from the imported cache")
	}
}

func TestLocalCacheOnFreshDaemons(t *testing.T) {
	env, bb := setup(t)
	dir := t.TempDir()
	exportThenImport(t, env, cacheGraph(bb, nonce(), "one"),
		[]build.SolveOption{build.CacheTo(cache.Local(dir, cache.ModeMax))},
		[]build.SolveOption{build.CacheFrom(cache.Local(dir))})
}

func TestInlineCacheThroughPushedImage(t *testing.T) {
	env, bb := setup(t)
	n := nonce()
	// Inline cache is mode=min: only the final image's layers, so a graph
	// without a side stage.
	g := build.Image(bb).Run("echo one " + n + " > /one").Run("echo two > /two")
	ref := env.Registry + "/test/inline:" + n
	exportThenImport(t, env, g,
		[]build.SolveOption{build.Push(ref), build.CacheTo(cache.Inline())},
		[]build.SolveOption{build.CacheFrom(cache.Registry(ref))})
}

// Mode min does not keep the side stage: when a change upstream of the copy
// needs it, a fresh daemon importing the cache runs it again. This is what
// makes the mode=max test meaningful.
func TestRegistryCacheModeMinLeavesSideStage(t *testing.T) {
	env, bb := setup(t)
	ref := env.Registry + "/test/cache:min-" + nonce()
	n := nonce()
	if _, err := build.Solve(ctxT(t), freshBuilder(t, env), cacheGraph(bb, n, "one"), build.CacheTo(cache.Registry(ref, cache.ModeMin))); err != nil {
		t.Fatal(err)
	}
	if sideStageCached(t, env, cacheGraph(bb, n, "changed"), build.CacheFrom(cache.Registry(ref))) {
		t.Error("with mode=min, the side stage should run again")
	}
}
