package build_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/cache"
	"github.com/larder-build/larder/internal/testenv"
)

// downloads returns what apt and go downloaded, from their output: apt's
// package lines ("Get:3 http://… bookworm/main amd64 curl amd64 7.88.1-10
// [315 kB]") and go's module zips ("# get https://proxy.golang.org/…/@v/v1.6.0.zip").
func downloads(lines []string) (apt, modules []string) {
	for _, line := range lines {
		line = strings.TrimSpace(line)
		f := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "Get:") && len(f) >= 9:
			apt = append(apt, f[4])
		case strings.HasPrefix(line, "# get https://") && strings.HasSuffix(line, ".zip"):
			modules = append(modules, strings.TrimPrefix(line, "# get "))
		}
	}
	return apt, modules
}

// The scenario persistence is for: daemon A (fresh) installs gcc with the
// apt preset and fetches a module with the go preset, and saves the caches
// to the registry; daemon B (another fresh state dir) restores them, then
// installs gcc and curl and fetches one more module. apt downloads only
// curl's packages and go only the added module, as on a persistent builder.
func TestPersistAptAndGoCachesAcrossFreshDaemons(t *testing.T) {
	env, _ := setup(t)
	ctx := context.Background()
	debian, err := env.Debian(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := nonce()
	ca, err := testenv.HostCA()
	if err != nil {
		t.Fatal(err)
	}
	graph := func(aptPkgs, modules string) build.Stage {
		return build.Image(debian).
			Run("apt-get update && apt-get install -y --no-install-recommends golang-go "+aptPkgs+" # "+n, cache.Apt()).
			Run("mkdir -p /src && cd /src && go mod init example.com/m && go get -x "+modules, append(ca, cache.Go())...)
	}
	mountStore := cache.RegistryStore(env.Registry + "/test/presets-" + n)
	store := build.PersistCacheMounts(mountStore, build.Namespace("presets-"+n))

	var logA, logB testenv.LogLines
	first, err := build.Solve(ctxT(t), freshBuilder(t, env), graph("gcc", "github.com/google/uuid@v1.6.0"), store, build.OnEvent(logA.Record))
	if err != nil {
		t.Fatal(err)
	}
	var a, b struct{ apt, modules []string }
	a.apt, a.modules = downloads(logA.Lines())
	if !slices.Contains(a.apt, "gcc-12") || len(a.modules) != 1 {
		t.Fatalf("the first build should download gcc and one module: apt %v, go %v", a.apt, a.modules)
	}
	for _, m := range first.Report.CacheMounts {
		if !m.Exported {
			t.Errorf("cache %s was not saved: %+v", m.ID, m)
		}
		if m.Target == "/var/cache/apt" {
			checkAptArtifact(t, mountStore, "presets-"+n, m)
		}
	}

	second, err := build.Solve(ctxT(t), freshBuilder(t, env),
		graph("gcc curl", "github.com/google/uuid@v1.6.0 github.com/pkg/errors@v0.9.1"), store, build.OnEvent(logB.Record))
	if err != nil {
		t.Fatal(err)
	}
	b.apt, b.modules = downloads(logB.Lines())
	t.Logf("build 1 downloaded %d packages and %v; build 2, after restoring, %v and %v", len(a.apt), a.modules, b.apt, b.modules)
	t.Log("\n" + second.Report.String())
	for _, pkg := range []string{"gcc-12", "cpp-12", "golang-1.19-go", "binutils"} {
		if slices.Contains(b.apt, pkg) {
			t.Errorf("after restoring, apt downloaded %s again: %v", pkg, b.apt)
		}
	}
	if !slices.Contains(b.apt, "curl") {
		t.Errorf("apt did not download curl: %v", b.apt)
	}
	if len(b.modules) != 1 || !strings.Contains(b.modules[0], "github.com/pkg/errors") {
		t.Errorf("after restoring, go downloaded %v, want only github.com/pkg/errors", b.modules)
	}
	restored := 0
	for _, m := range second.Report.CacheMounts {
		if m.Restored {
			restored++
		}
	}
	if restored != len(second.Report.CacheMounts) || restored != 4 {
		t.Errorf("restored %d of %d caches, want the 4 of apt and go", restored, len(second.Report.CacheMounts))
	}
}

// checkAptArtifact checks that the saved /var/cache/apt holds the
// downloaded packages but not apt's binary caches, which apt rebuilds from
// the package lists (the preset marks them Regenerable).
func checkAptArtifact(t *testing.T, s cache.MountStore, ns string, m build.MountReport) {
	t.Helper()
	names := artifactFiles(t, s, cache.MountKey(ns, m.ID, "linux/amd64"))
	if !slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "archives/gcc-12_") }) {
		t.Errorf("the saved apt cache lacks gcc's package: %v", names)
	}
	for _, bin := range []string{"pkgcache.bin", "srcpkgcache.bin"} {
		if slices.Contains(names, bin) {
			t.Errorf("the saved apt cache holds %s, which apt rebuilds on its own", bin)
		}
	}
	t.Logf("saved apt cache: %d entries, %d bytes", len(names), m.ExportedBytes)
}
