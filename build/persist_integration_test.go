package build_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/cache"
	"github.com/larder-build/larder/internal/testenv"
	"github.com/larder-build/larder/mounts"
)

// persistGraph writes into a cache mount with an owner and mode, then, with
// readCmd, reads what the cache holds.
func persistGraph(bb, id, cmd string) build.Stage {
	m := mounts.Cache("/c", mounts.ID(id), mounts.Sharing(mounts.Locked), mounts.Owner(1000, 1000), mounts.Mode(0o750))
	return build.Image(bb).Run(cmd, m)
}

func onlyMount(t *testing.T, res *build.Result) build.MountReport {
	t.Helper()
	if len(res.Report.CacheMounts) != 1 {
		t.Fatalf("report has %d cache mounts, want 1:\n%s", len(res.Report.CacheMounts), res.Report)
	}
	return res.Report.CacheMounts[0]
}

func TestPersistCacheMountsAcrossFreshDaemons(t *testing.T) {
	for _, kind := range []string{"registry", "dir"} {
		t.Run(kind, func(t *testing.T) {
			env, bb := setup(t)
			n := nonce()
			store := cache.DirStore(t.TempDir())
			if kind == "registry" {
				store = cache.RegistryStore(env.Registry + "/test/caches-" + n)
			}
			id := "persist-" + n
			write := persistGraph(bb, id, "echo kept > /c/file; mkdir -p /c/sub && echo deep > /c/sub/f; chown 1000:1000 /c/file # "+n)
			res, err := build.Solve(ctxT(t), freshBuilder(t, env), write, build.PersistCacheMounts(store))
			if err != nil {
				t.Fatal(err)
			}
			m := onlyMount(t, res)
			if m.Restored || !m.Exported || m.ExportedBytes == 0 || m.ID != id {
				t.Fatalf("first build on a fresh daemon: %+v", m)
			}

			reader := persistGraph(bb, id, "cat /c/file /c/sub/f > /seen; stat -c '%u:%g %a' /c /c/file > /owners # "+n)
			dir := t.TempDir()
			res, err = build.Solve(ctxT(t), freshBuilder(t, env), reader, build.PersistCacheMounts(store), build.LocalDir(dir))
			if err != nil {
				t.Fatal(err)
			}
			m = onlyMount(t, res)
			if !m.Restored || m.RestoredBytes == 0 {
				t.Fatalf("second build on another fresh daemon restored nothing: %+v", m)
			}
			if got := testenv.ReadFile(t, dir, "seen"); got != "kept\ndeep\n" {
				t.Errorf("the restored cache holds %q, want the first build's files", got)
			}
			if got := testenv.ReadFile(t, dir, "owners"); got != "1000:1000 750\n1000:1000 644\n" {
				t.Errorf("owners and modes after restoring: %q", got)
			}
			// Reading changed nothing: the save uploads nothing.
			if m.Exported || m.ExportedBytes != 0 || !strings.Contains(strings.Join(m.Notes, ";"), "unchanged") {
				t.Errorf("an unchanged cache was saved: %+v", m)
			}
		})
	}
}

// Persistence runs in solves of its own: the graph the builder solves is
// the same with and without it.
func TestPersistDoesNotChangeTheGraph(t *testing.T) {
	env, bb := setup(t)
	n := nonce()
	g := persistGraph(bb, "graph-"+n, "echo x >> /c/log # "+n).Run("echo after")
	without, err := build.Solve(ctxT(t), env.Builder, g)
	if err != nil {
		t.Fatal(err)
	}
	with, err := build.Solve(ctxT(t), env.Builder, g, build.PersistCacheMounts(cache.RegistryStore(env.Registry+"/test/graph-"+n)))
	if err != nil {
		t.Fatal(err)
	}
	if without.Platforms[0].Graph == "" || without.Platforms[0].Graph != with.Platforms[0].Graph {
		t.Fatalf("graph digest %s without persistence, %s with", without.Platforms[0].Graph, with.Platforms[0].Graph)
	}
	if with.Report.RanSteps() != 0 {
		t.Errorf("the graph's steps should all be cached from the first solve:\n%s", with.Report)
	}
}

// A second save of a cache that did not change uploads nothing: the
// artifact in the registry stays the same manifest.
func TestPersistSecondSaveUploadsNothing(t *testing.T) {
	env, bb := setup(t)
	n := nonce()
	store := cache.RegistryStore(env.Registry + "/test/again-" + n)
	g := persistGraph(bb, "again-"+n, "echo once > /c/f # "+n)
	b := freshBuilder(t, env)
	first, err := build.Solve(ctxT(t), b, g, build.PersistCacheMounts(store))
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(onlyMount(t, first).Artifact)
	before, err := ggcrremote.Head(ref)
	if err != nil {
		t.Fatal(err)
	}
	second, err := build.Solve(ctxT(t), b, g, build.PersistCacheMounts(store))
	if err != nil {
		t.Fatal(err)
	}
	if m := onlyMount(t, second); m.Exported || m.ExportedBytes != 0 {
		t.Errorf("second save: %+v", m)
	}
	after, _ := ggcrremote.Head(ref)
	if after.Digest != before.Digest {
		t.Errorf("the artifact changed from %s to %s", before.Digest, after.Digest)
	}
}

// A garbage artifact never fails the build unless strict.
func TestPersistGarbageArtifact(t *testing.T) {
	env, bb := setup(t)
	n := nonce()
	store := cache.RegistryStore(env.Registry + "/test/garbage-" + n)
	id := "garbage-" + n
	ref, _ := name.ParseReference(store.Ref(store.Key("default", id, "linux/amd64")))
	junk, _ := random.Image(512, 1)
	if err := ggcrremote.Write(ref, junk); err != nil {
		t.Fatal(err)
	}
	g := persistGraph(bb, id, "ls -A /c > /listing # "+n)
	dir := t.TempDir()
	res, err := build.Solve(ctxT(t), freshBuilder(t, env), g, build.PersistCacheMounts(store), build.LocalDir(dir))
	if err != nil {
		t.Fatalf("a garbage artifact failed the build: %v", err)
	}
	m := onlyMount(t, res)
	if m.Restored || !strings.Contains(strings.Join(m.Notes, ";"), "not a cache mount artifact") {
		t.Errorf("report does not say why nothing was restored: %+v", m)
	}
	if got := testenv.ReadFile(t, dir, "listing"); got != "" {
		t.Errorf("the cache should start empty, holds %q", got)
	}
	// The build saved a good artifact over the garbage; put garbage back.
	if err := ggcrremote.Write(ref, junk); err != nil {
		t.Fatal(err)
	}
	_, err = build.Solve(ctxT(t), freshBuilder(t, env), g, build.PersistCacheMounts(store, build.Strict()))
	if err == nil || !strings.Contains(err.Error(), "not a cache mount artifact") || !strings.Contains(err.Error(), id) {
		t.Fatalf("strict mode with a garbage artifact gave %v", err)
	}
}

// A corrupt tarball (right label, wrong content) fails the restore step's
// checksum; the build goes on with an empty cache.
func TestPersistCorruptDirArtifact(t *testing.T) {
	env, bb := setup(t)
	n := nonce()
	store := cache.DirStore(t.TempDir())
	id := "corrupt-" + n
	g := persistGraph(bb, id, "echo x > /c/f # "+n)
	if _, err := build.Solve(ctxT(t), freshBuilder(t, env), g, build.PersistCacheMounts(store)); err != nil {
		t.Fatal(err)
	}
	art := store.Dir(store.Key("default", id, "linux/amd64"))
	if err := os.WriteFile(filepath.Join(art, "cache.tar"), []byte("not a tarball"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := build.Solve(ctxT(t), freshBuilder(t, env), g, build.PersistCacheMounts(store))
	if err != nil {
		t.Fatalf("a corrupt artifact failed the build: %v", err)
	}
	if m := onlyMount(t, res); m.Restored || !strings.Contains(strings.Join(m.Notes, ";"), "checksum") {
		t.Errorf("report: %+v", m)
	}
}
