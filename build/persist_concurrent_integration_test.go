package build_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/larder-build/larder/build"
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
