package remote_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/cache"
	"github.com/larder-build/larder/internal/testenv"
	"github.com/larder-build/larder/mounts"
	"github.com/larder-build/larder/remote"
)

// twoPlatformFleet starts a fresh linux/amd64 daemon and a fresh
// linux/arm64 one and makes a fleet of them.
func twoPlatformFleet(ctx context.Context, t *testing.T, env *testenv.Env) *remote.Fleet {
	t.Helper()
	amd, err := env.NewBuilder(ctx, remote.WorkerPlatforms("linux/amd64"), remote.StartDialOptions(remote.WithName("amd64")))
	if err != nil {
		t.Fatal(err)
	}
	arm, err := env.Arm64(ctx)
	if err != nil {
		testenv.Unavailable(t, err)
	}
	t.Cleanup(func() { amd.Close(); arm.Close() })
	fleet, err := remote.NewFleet(ctx, remote.FromBuilder(amd), remote.FromBuilder(arm))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fleet.Close() })
	return fleet
}

// A two-platform build on a fleet pushes one index and exports registry
// cache and cache mounts per platform; the same build on a fleet of two
// fresh daemons importing them takes every step of both platforms from
// cache and restores each platform's own cache mount.
func TestFleetCacheExportImportPerPlatform(t *testing.T) {
	env := testenv.Get(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	n := time.Now().UnixNano()
	g := build.Image(busybox(t, env)).
		Run(fmt.Sprintf("uname -m >> /c/arch; cp /c/arch /arch # %d", n), mounts.Cache("/c", mounts.ID(fmt.Sprint("fleet-", n)))).
		Run("echo second > /second")
	cacheRef := fmt.Sprintf("%s/test/fleet-cache:%d", env.Registry, n)
	store := cache.RegistryStore(fmt.Sprintf("%s/test/fleet-mounts-%d", env.Registry, n))
	image := fmt.Sprintf("%s/test/fleet-image:%d", env.Registry, n)
	both := build.Platforms("linux/amd64", "linux/arm64")

	first, err := build.Solve(ctx, twoPlatformFleet(ctx, t, env), g, both, build.Key("fleet-project"),
		build.Push(image), build.CacheTo(cache.Registry(cacheRef, cache.ModeMax)), build.PersistCacheMounts(store))
	if err != nil {
		t.Fatal(err)
	}
	// Each platform's cache went to its own ref.
	for _, suffix := range []string{"-linux-amd64", "-linux-arm64"} {
		r, _ := name.ParseReference(cacheRef + suffix)
		if _, err := ggcrremote.Head(r); err != nil {
			t.Errorf("no cache at %s%s: %v", cacheRef, suffix, err)
		}
	}
	// One index with both platforms.
	r, _ := name.ParseReference(image)
	idx, err := ggcrremote.Index(r)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	if len(im.Manifests) != 2 || im.Manifests[0].Platform.Architecture != "amd64" || im.Manifests[1].Platform.Architecture != "arm64" {
		t.Fatalf("index manifests %+v", im.Manifests)
	}
	if len(first.Report.CacheMounts) != 2 || first.Report.CacheMounts[0].Artifact == first.Report.CacheMounts[1].Artifact {
		t.Fatalf("each platform should save its own cache mount:\n%s", first.Report)
	}

	second, err := build.Solve(ctx, twoPlatformFleet(ctx, t, env), g, both, build.Key("fleet-project"),
		build.CacheFrom(cache.Registry(cacheRef)), build.PersistCacheMounts(store))
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range second.Platforms {
		if pr.Report.RanSteps() != 0 || pr.Report.CachedSteps() != 2 {
			t.Errorf("%s on fresh daemons with the cache imported:\n%s", pr.Platform, pr.Report)
		}
		if want := map[string]string{"linux/amd64": "amd64", "linux/arm64": "arm64"}[pr.Platform]; pr.Builder != want {
			t.Errorf("%s built on %s, want %s", pr.Platform, pr.Builder, want)
		}
		// Every step came from cache: no cache mount is needed.
		if ms := pr.Report.CacheMounts; len(ms) != 1 || ms[0].Restored {
			t.Errorf("%s restored a cache mount no running step needs: %+v", pr.Platform, ms)
		}
	}

	// A step that reads the cache runs on fresh daemons: each platform
	// restores its own cache mount.
	reader := build.Image(busybox(t, env)).
		Run(fmt.Sprintf("cp /c/arch /arch # read %d", n), mounts.Cache("/c", mounts.ID(fmt.Sprint("fleet-", n))))
	dir := t.TempDir()
	third, err := build.Solve(ctx, twoPlatformFleet(ctx, t, env), reader, both, build.Key("fleet-project"),
		build.PersistCacheMounts(store), build.LocalDir(dir))
	if err != nil {
		// What each platform's persistence did says why a cache was empty.
		if third != nil {
			for _, pr := range third.Platforms {
				if pr.Report != nil {
					t.Logf("%s: cache mounts %+v", pr.Platform, pr.Report.CacheMounts)
				}
			}
		}
		t.Fatal(err)
	}
	for _, pr := range third.Platforms {
		if ms := pr.Report.CacheMounts; len(ms) != 1 || !ms[0].Restored {
			t.Errorf("%s did not restore its cache mount: %+v", pr.Platform, ms)
		}
	}
	for plat, want := range map[string]string{"linux_amd64": "x86_64\n", "linux_arm64": "aarch64\n"} {
		if b, err := os.ReadFile(filepath.Join(dir, plat, "arch")); err != nil || string(b) != want {
			t.Errorf("%s restored %q (%v), want its own %q", plat, b, err, want)
		}
	}
}
