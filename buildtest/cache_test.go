package buildtest_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/buildtest"
	"github.com/larder-build/larder/mounts"
)

// The next two tests share a cache mount, as tests of a package share the
// builder: the first writes to it in a build step, the second reads what
// the first wrote. The id is new for each run, so an earlier run's cache on
// a long-lived builder plays no part.
var (
	notesCache = mounts.Cache("/var/cache/notes", mounts.ID("buildtest-notes-"+stamp))
	noteWriter string // the test that wrote the note
)

func TestCacheWrittenByOneTest(t *testing.T) {
	s := build.Image(busybox(t)).Run("echo written by "+t.Name()+" > /var/cache/notes/note", notesCache)
	buildtest.Build(t, s)
	noteWriter = t.Name()
}

func TestCacheReadByTheNextTest(t *testing.T) {
	img := buildtest.Build(t, build.Image(busybox(t)))
	if noteWriter == "" {
		t.Skip("run with TestCacheWrittenByOneTest, which writes the note")
	}
	r := img.RunWith(t, []string{"cat", "/var/cache/notes/note"}, notesCache)
	if want := "written by " + noteWriter + "\n"; r.Stdout != want {
		t.Fatalf("the cache holds %+v, want %q", r, want)
	}
}

// Parallel tests share a cache mount with locked sharing: each holds the
// cache for the whole of its step, so the steps take turns. Each step
// appends a start line, waits, and appends an end line; the log must show
// each start followed by its own end.
func TestParallelTestsShareALockedCache(t *testing.T) {
	bb := busybox(t)
	shared := mounts.Cache("/cache", mounts.ID("buildtest-locked-"+stamp), mounts.Sharing(mounts.Locked))
	names := []string{"a", "b", "c"}
	t.Run("group", func(t *testing.T) {
		for _, name := range names {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				s := build.Image(bb).Run(fmt.Sprintf("echo start-%[1]s >> /cache/log; sleep 1; echo end-%[1]s >> /cache/log", name), shared)
				buildtest.Build(t, s)
			})
		}
	})
	r := buildtest.Build(t, build.Image(bb)).RunWith(t, []string{"cat", "/cache/log"}, shared)
	lines := strings.Fields(r.Stdout)
	if len(lines) != 2*len(names) {
		t.Fatalf("log %q, want a start and an end line for each of %v", r.Stdout, names)
	}
	seen := map[string]bool{}
	for i := 0; i < len(lines); i += 2 {
		who, ok := strings.CutPrefix(lines[i], "start-")
		if !ok || lines[i+1] != "end-"+who || seen[who] {
			t.Fatalf("log %q: steps overlapped in the locked cache", r.Stdout)
		}
		seen[who] = true
	}
}

// Parallel tests that fill a shared cache (the default sharing) run at the
// same time and all see one cache, as tests installing packages with a
// preset do.
func TestParallelTestsFillASharedCache(t *testing.T) {
	bb := busybox(t)
	shared := mounts.Cache("/downloads", mounts.ID("buildtest-shared-"+stamp))
	names := []string{"a", "b", "c"}
	t.Run("group", func(t *testing.T) {
		for _, name := range names {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				buildtest.Build(t, build.Image(bb).Run("echo "+name+" > /downloads/"+name, shared))
			})
		}
	})
	r := buildtest.Build(t, build.Image(bb)).RunWith(t, []string{"ls", "/downloads"}, shared)
	if r.Stdout != "a\nb\nc\n" {
		t.Fatalf("the shared cache holds %q, want a file from each test", r.Stdout)
	}
}
