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
// the first wrote. The note and the cache id are new each time the first
// test runs, so that its step runs (BuildKit leaves a cache mount's id out
// of a step's cache key) and an earlier run's cache plays no part.
var notes struct {
	cache mounts.Mount // the cache the first test wrote to
	note  string       // what it wrote
}

func TestCacheWrittenByOneTest(t *testing.T) {
	stamp := newStamp()
	cache := mounts.Cache("/var/cache/notes", mounts.ID("buildtest-notes-"+stamp))
	note := "written by " + t.Name() + " " + stamp
	buildtest.Build(t, build.Image(busybox(t)).Run("echo "+note+" > /var/cache/notes/note", cache))
	notes.cache, notes.note = cache, note
}

func TestCacheReadByTheNextTest(t *testing.T) {
	img := buildtest.Build(t, build.Image(busybox(t)))
	if notes.cache == nil {
		t.Skip("run with TestCacheWrittenByOneTest, which writes the note")
	}
	r := img.RunWith(t, []string{"cat", "/var/cache/notes/note"}, notes.cache)
	if want := notes.note + "\n"; r.Stdout != want {
		t.Fatalf("the cache holds %+v, want %q", r, want)
	}
}

// Parallel tests share a cache mount with locked sharing: each holds the
// cache for the whole of its step, so the steps take turns. Each step
// appends a start line, waits, and appends an end line; the log must show
// each start followed by its own end.
func TestParallelTestsShareALockedCache(t *testing.T) {
	bb := busybox(t)
	stamp := newStamp() // new steps and a new cache each time the test runs
	shared := mounts.Cache("/cache", mounts.ID("buildtest-locked-"+stamp), mounts.Sharing(mounts.Locked))
	names := []string{"a", "b", "c"}
	t.Run("group", func(t *testing.T) {
		for _, name := range names {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				s := build.Image(bb).Run(fmt.Sprintf("echo start-%[1]s >> /cache/log; sleep 1; echo end-%[1]s >> /cache/log # %[2]s", name, stamp), shared)
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
	stamp := newStamp()
	shared := mounts.Cache("/downloads", mounts.ID("buildtest-shared-"+stamp))
	names := []string{"a", "b", "c"}
	t.Run("group", func(t *testing.T) {
		for _, name := range names {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				buildtest.Build(t, build.Image(bb).Run("echo "+stamp+" > /downloads/"+name, shared))
			})
		}
	})
	r := buildtest.Build(t, build.Image(bb)).RunWith(t, []string{"ls", "/downloads"}, shared)
	if r.Stdout != "a\nb\nc\n" {
		t.Fatalf("the shared cache holds %q, want a file from each test", r.Stdout)
	}
}
