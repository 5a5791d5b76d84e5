package build_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/cache"
	"github.com/larder-build/larder/internal/persist"
	"github.com/larder-build/larder/internal/testenv"
)

// Three builders save the same cache at once, each adding a file to what
// they restored: a fourth, fresh builder restores the first file and all
// three, and its save merges the heads into one.
func TestPersistConcurrentSavesMerge(t *testing.T) {
	env, bb := setup(t)
	n := nonce()
	for kind, store := range stores(t, env, n) {
		t.Run(kind, func(t *testing.T) {
			id := "merge-" + kind + "-" + n
			opts := build.PersistCacheMounts(store, build.Strict())
			if _, err := build.Solve(ctxT(t), freshBuilder(t, env), persistGraph(bb, id, "echo 0 > /c/file-0 # "+n), opts); err != nil {
				t.Fatal(err)
			}
			builders := []build.Builder{freshBuilder(t, env), freshBuilder(t, env), freshBuilder(t, env)}
			var wg sync.WaitGroup
			errs := make([]error, len(builders))
			reports := make([]build.MountReport, len(builders))
			for i, b := range builders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					res, err := build.Solve(ctxT(t), b, persistGraph(bb, id, fmt.Sprintf("test -e /c/file-0 && echo %d > /c/file-%d # %s", i+1, i+1, n)), opts)
					errs[i] = err
					if err == nil {
						reports[i] = res.Report.CacheMounts[0]
					}
				}()
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("builder %d: %v", i+1, err)
				}
				if m := reports[i]; !m.Restored || !m.Exported {
					t.Errorf("builder %d: %+v", i+1, m)
				}
				t.Logf("builder %d: %q", i+1, reports[i].Notes)
			}
			out := t.TempDir()
			res, err := build.Solve(ctxT(t), freshBuilder(t, env), persistGraph(bb, id, "ls /c > /listing # read "+n), opts, build.LocalDir(out))
			if err != nil {
				t.Fatal(err)
			}
			if got := testenv.ReadFile(t, out, "listing"); got != "file-0\nfile-1\nfile-2\nfile-3\n" {
				t.Errorf("after three saves at once, a fresh builder restores %q, want every file", got)
			}
			m := onlyMount(t, res)
			if m.MergedHeads != 3 || !strings.Contains(strings.Join(m.Notes, ";"), "merged") {
				t.Errorf("the fourth builder's report: %+v", m)
			}
		})
	}
}

// A blob the store lost (a lifecycle rule, a registry's garbage
// collection) costs the files of the head that holds it, not the others',
// and a save on top keeps that head.
func TestPersistLostBlobLeavesOutItsHead(t *testing.T) {
	env, bb := setup(t)
	n := nonce()
	dir := t.TempDir()
	store := cache.DirStore(dir)
	id := "lost-" + n
	key := cache.MountKey("default", id, "linux/amd64")
	opts := build.PersistCacheMounts(store)
	if _, err := build.Solve(ctxT(t), freshBuilder(t, env), persistGraph(bb, id, "echo 0 > /c/file-0 # "+n), opts); err != nil {
		t.Fatal(err)
	}
	builders := []build.Builder{freshBuilder(t, env), freshBuilder(t, env)}
	var wg sync.WaitGroup
	errs := make([]error, len(builders))
	for i, b := range builders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = build.Solve(ctxT(t), b, persistGraph(bb, id, fmt.Sprintf("echo %d > /c/file-%d # %s", i+1, i+1, n)), opts)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	a, err := persist.Read(ctxT(t), store, key)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Heads) != 2 || len(a.Layers) != 3 {
		t.Fatalf("after two saves at once: heads %v, %d layers; want 2 heads of 3 layers", a.Heads, len(a.Layers))
	}
	// The last layer is the second head's own.
	lost := a.Layers[2].Digest
	if err := os.Remove(filepath.Join(dir, key, "blobs", "sha256", lost.Encoded())); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	res, err := build.Solve(ctxT(t), freshBuilder(t, env), persistGraph(bb, id, "ls /c > /listing; echo 3 > /c/file-3 # read "+n), opts, build.LocalDir(out))
	if err != nil {
		t.Fatal(err)
	}
	m := onlyMount(t, res)
	got := strings.Fields(testenv.ReadFile(t, out, "listing"))
	if len(got) != 2 || got[0] != "file-0" || !m.Restored || !strings.Contains(strings.Join(m.Notes, ";"), a.Heads[1]+" left out") {
		t.Errorf("with the second head's layer lost, a fresh builder restores %q: %+v; want file-0 and the first head's file, and a note", got, m)
	}
	heads, err := store.Heads(ctxT(t), key)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(heads, a.Heads[1]) || slices.Contains(heads, a.Heads[0]) || len(heads) != 2 {
		t.Errorf("after the save: heads %v; want the new one, and %s kept", heads, a.Heads[1])
	}
}
