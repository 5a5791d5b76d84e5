package build_test

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/cache"
	"github.com/larder-build/larder/internal/persist"
	"github.com/larder-build/larder/internal/testenv"
	"github.com/larder-build/larder/mounts"
)

// persistGraph runs cmd with a cache mount that has an owner and mode.
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

// stores returns a store of each kind the tests reach: a registry and a
// directory, and an S3 bucket when the environment has one.
func stores(t *testing.T, env *testenv.Env, n string) map[string]cache.MountStore {
	t.Helper()
	m := map[string]cache.MountStore{
		"registry": cache.RegistryStore(env.Registry + "/test/caches-" + n),
		"dir":      cache.DirStore(t.TempDir()),
	}
	if s3, ok := s3Store(t, env, n); ok {
		m["s3"] = s3
	}
	return m
}

// artifactFiles returns the names of the files in the artifact of key,
// layer by layer, as the store holds it.
func artifactFiles(t *testing.T, s cache.MountStore, key string) []string {
	t.Helper()
	ctx := context.Background()
	a, err := persist.Read(ctx, s, key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	a, _, err = persist.Fetch(ctx, s, a, dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range a.Layers {
		f, err := os.Open(filepath.Join(dir, persist.LayerFile(l)))
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(zr)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			names = append(names, h.Name)
		}
		f.Close()
	}
	return names
}

func TestPersistCacheMountsAcrossFreshDaemons(t *testing.T) {
	env, bb := setup(t)
	n := nonce()
	for kind, store := range stores(t, env, n) {
		t.Run(kind, func(t *testing.T) {
			id := "persist-" + kind + "-" + n
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

// A graph whose cache-mounting steps all come from cache restores and
// saves nothing: on the same builder, and on a fresh one that imports the
// registry layer cache.
func TestPersistRestoresNothingForCachedSteps(t *testing.T) {
	env, bb := setup(t)
	n := nonce()
	store := cache.RegistryStore(env.Registry + "/test/cached-" + n)
	key := cache.MountKey("default", "cached-"+n, "linux/amd64")
	layer := cache.Registry(env.Registry + "/test/layers-" + n + ":cache")
	g := persistGraph(bb, "cached-"+n, "echo once > /c/f # "+n).Run("echo after > /after")
	b := freshBuilder(t, env)
	if _, err := build.Solve(ctxT(t), b, g, build.PersistCacheMounts(store), build.CacheTo(layer)); err != nil {
		t.Fatal(err)
	}
	before, err := store.Heads(context.Background(), key)
	if err != nil || len(before) != 1 {
		t.Fatalf("heads after the first save: %v, %v", before, err)
	}
	for name, b := range map[string]build.Builder{"same builder": b, "fresh builder with layer cache": freshBuilder(t, env)} {
		res, err := build.Solve(ctxT(t), b, g, build.PersistCacheMounts(store), build.CacheFrom(layer))
		if err != nil {
			t.Fatal(err)
		}
		m := onlyMount(t, res)
		if m.Restored || m.Exported || m.RestoredBytes != 0 || !strings.Contains(strings.Join(m.Notes, ";"), "came from cache") {
			t.Errorf("%s: %+v", name, m)
		}
		if res.Report.RanSteps() != 0 {
			t.Errorf("%s: steps ran:\n%s", name, res.Report)
		}
	}
	after, _ := store.Heads(context.Background(), key)
	if !slices.Equal(before, after) {
		t.Errorf("the stored heads changed from %v to %v", before, after)
	}
}

// A second save of a cache that did not change uploads nothing.
func TestPersistUnchangedCacheUploadsNothing(t *testing.T) {
	env, bb := setup(t)
	n := nonce()
	store := cache.DirStore(t.TempDir())
	key := cache.MountKey("default", "again-"+n, "linux/amd64")
	if _, err := build.Solve(ctxT(t), freshBuilder(t, env), persistGraph(bb, "again-"+n, "echo once > /c/f # "+n), build.PersistCacheMounts(store)); err != nil {
		t.Fatal(err)
	}
	before, _ := store.Heads(context.Background(), key)
	res, err := build.Solve(ctxT(t), freshBuilder(t, env), persistGraph(bb, "again-"+n, "cat /c/f # "+n), build.PersistCacheMounts(store))
	if err != nil {
		t.Fatal(err)
	}
	if m := onlyMount(t, res); !m.Restored || m.Exported || m.ExportedBytes != 0 {
		t.Errorf("second save: %+v", m)
	}
	after, _ := store.Heads(context.Background(), key)
	if !slices.Equal(before, after) {
		t.Errorf("the heads changed from %v to %v", before, after)
	}
}

// A step whose root filesystem is scratch and one static binary, with no
// shell or tools for anything else, gets its cache persisted: restoring and
// saving need nothing from the step's image.
func TestPersistScratchStep(t *testing.T) {
	env, bb := setup(t)
	n := nonce()
	store := cache.DirStore(t.TempDir())
	static := build.Scratch().Copy(build.Image(bb), "/bin/busybox", "/busybox")
	cacheMount := mounts.Cache("/c", mounts.ID("scratch-"+n))
	write := static.RunArgs([]string{"/busybox", "sh", "-c", "echo " + n + " > /c/f"}, cacheMount)
	res, err := build.Solve(ctxT(t), freshBuilder(t, env), write, build.PersistCacheMounts(store, build.Strict()))
	if err != nil {
		t.Fatal(err)
	}
	if m := onlyMount(t, res); !m.Exported {
		t.Fatalf("the scratch step's cache was not saved: %+v", m)
	}
	read := static.RunArgs([]string{"/busybox", "sh", "-c", "read line < /c/f; echo \"$line\" > /seen"}, cacheMount)
	dir := t.TempDir()
	res, err = build.Solve(ctxT(t), freshBuilder(t, env), read, build.PersistCacheMounts(store, build.Strict()), build.LocalDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	if m := onlyMount(t, res); !m.Restored {
		t.Errorf("not restored: %+v", m)
	}
	if got := testenv.ReadFile(t, dir, "seen"); got != n+"\n" {
		t.Errorf("the scratch step read %q from the restored cache, want %q", got, n)
	}
}

// A restore that fails never shrinks what is stored: the save after it
// adds a head beside the one that could not be read.
func TestPersistFailedRestoreKeepsTheStoredFiles(t *testing.T) {
	env, bb := setup(t)
	n := nonce()
	dir := t.TempDir()
	store := cache.DirStore(dir)
	id := "keep-" + n
	key := cache.MountKey("default", id, "linux/amd64")
	if _, err := build.Solve(ctxT(t), freshBuilder(t, env), persistGraph(bb, id, "echo a > /c/a; echo b > /c/b # "+n), build.PersistCacheMounts(store)); err != nil {
		t.Fatal(err)
	}
	blobs, _ := filepath.Glob(filepath.Join(dir, key, "blobs", "sha256", "*"))
	moved := filepath.Join(t.TempDir(), "blobs")
	if err := os.Rename(filepath.Dir(blobs[0]), moved); err != nil {
		t.Fatal(err)
	}
	res, err := build.Solve(ctxT(t), freshBuilder(t, env), persistGraph(bb, id, "echo c > /c/c # "+n), build.PersistCacheMounts(store))
	if err != nil {
		t.Fatal(err)
	}
	if m := onlyMount(t, res); m.Restored || !m.Exported {
		t.Fatalf("with its layers gone, the store should not restore but still save: %+v", m)
	}
	// Put the lost layers back beside the new one.
	olds, _ := filepath.Glob(filepath.Join(moved, "*"))
	for _, o := range olds {
		if err := os.Rename(o, filepath.Join(filepath.Dir(blobs[0]), filepath.Base(o))); err != nil {
			t.Fatal(err)
		}
	}
	out := t.TempDir()
	if _, err := build.Solve(ctxT(t), freshBuilder(t, env), persistGraph(bb, id, "ls /c > /listing # read "+n), build.PersistCacheMounts(store), build.LocalDir(out)); err != nil {
		t.Fatal(err)
	}
	if got := testenv.ReadFile(t, out, "listing"); got != "a\nb\nc\n" {
		t.Errorf("after a failed restore and a save, the store restores %q, want a, b and c", got)
	}
}
