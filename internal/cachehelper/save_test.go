package cachehelper

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// sampleTree is a cache with every attribute Save and Restore carry.
func sampleTree() []node {
	return []node{
		dir("d").withMode(0o750).withOwner(1234, 5678).withMtime(baseTime - 1e9 + 7),
		file("d/a.txt", "alpha").withMtime(baseTime + 1),
		file("d/exec", "#!/bin/true").withMode(0o755).withOwner(1, 2),
		file("d/empty", ""),
		dir("d/sub").withMode(0o1777),
		file("d/sub/deep", "deep").withOwner(4000000, 4000001).withMtime(baseTime + 999),
		dir("e"),
		file("top", "top").withMode(0o600),
		dir("long"),
		file("long/"+string(bytes.Repeat([]byte("n"), 150)), "a name over 100 bytes"),
	}
}

// sampleLinks are symbolic links, whose modification time Restore does not
// keep.
func sampleLinks() []node {
	return []node{
		symlink("d/link", "a.txt").withOwner(7, 8),
		symlink("dangling", "/nowhere/at/all"),
	}
}

func TestRoundTrip(t *testing.T) {
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	makeTree(t, src, append(sampleTree(), sampleLinks()...)...)

	out1 := filepath.Join(tmp, "out1")
	res1 := save(t, SaveOptions{Cache: src, Out: out1})
	if res1.Files != 12 || res1.CacheFiles != 12 || res1.Bytes != res1.CacheBytes || res1.Bytes != 44 {
		t.Errorf("first save: %+v; want 12 entries, 44 bytes, all of the cache", res1)
	}

	// Restore into an empty directory: every attribute comes back.
	dst := filepath.Join(tmp, "dst")
	if err := os.Mkdir(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	index := filepath.Join(tmp, "index")
	rres := restore(t, RestoreOptions{Cache: dst, Index: index, Layers: []string{filepath.Join(out1, LayerFile)}})
	if want := (RestoreResult{Files: 6, Dirs: 4, Symlinks: 2}); rres != want {
		t.Errorf("restore: %v; want %v", rres, want)
	}
	compareSnapshots(t, snapshot(t, dst), snapshot(t, src))

	// Saving at once finds nothing changed.
	if res := save(t, SaveOptions{Cache: dst, Index: index, Out: filepath.Join(tmp, "same")}); res.Files != 0 || res.CacheFiles != 12 {
		t.Errorf("save of an unchanged restore: %+v; want no entry of 12", res)
	}

	// Change and add entries; save only those.
	makeTree(t, dst,
		file("d/a.txt", "alpha").withMtime(baseTime+2),                     // touched
		file("d/empty", "now with data"),                                   // grown
		file("top", "top").withMode(0o644),                                 // chmod
		file("d/sub/deep", "deep").withOwner(1, 1).withMtime(baseTime+999), // chown (as root)
		symlink("d/link", "exec").withOwner(7, 8),                          // retargeted
		dir("e").withMode(0o700),                                           // dir chmod
		dir("new"),                                                         // new dir
		file("new/file", "new"),                                            // in a new dir
		file("d/new", "in an old directory"),                               // in an old dir
	)
	if err := os.Remove(filepath.Join(dst, "dangling")); err != nil { // deletions are not saved
		t.Fatal(err)
	}
	out2 := filepath.Join(tmp, "out2")
	res2 := save(t, SaveOptions{Cache: dst, Index: index, Out: out2})
	want := []string{"d/a.txt", "d/empty", "d/link", "d/new", "d/sub/deep", "e/", "new/", "new/file", "top"}
	if !asRoot {
		want = slices.DeleteFunc(want, func(s string) bool { return s == "d/sub/deep" })
	}
	if got := layerNames(t, filepath.Join(out2, LayerFile)); !slices.Equal(got, want) {
		t.Errorf("second layer holds\n%s\nwant\n%s", join(got), join(want))
	}
	if res2.Files != len(want) || res2.CacheFiles != 14 {
		t.Errorf("second save: %+v; want %d entries of 14", res2, len(want))
	}

	// Both layers restored into a fresh directory give the changed cache
	// (the deleted link aside: layers only add), but for the modification
	// time of d, which changed as files were added, and is not saved.
	again := filepath.Join(tmp, "again")
	if err := os.Mkdir(again, 0o755); err != nil {
		t.Fatal(err)
	}
	restore(t, RestoreOptions{Cache: again, Index: filepath.Join(tmp, "index2"), Layers: []string{filepath.Join(out1, LayerFile), filepath.Join(out2, LayerFile)}})
	wantSnap := snapshot(t, dst)
	srcSnap := snapshot(t, src)
	wantSnap["dangling"] = srcSnap["dangling"]
	wantSnap["d"] = srcSnap["d"]
	compareSnapshots(t, snapshot(t, again), wantSnap)

	// The index of both layers is the cache as saved: nothing changed.
	if res := save(t, SaveOptions{Cache: again, Index: filepath.Join(tmp, "index2"), Out: filepath.Join(tmp, "out3")}); res.Files != 0 {
		t.Errorf("save after restoring both layers: %+v; want nothing", res)
	}
}

func TestSaveFull(t *testing.T) {
	tmp := t.TempDir()
	cache := filepath.Join(tmp, "cache")
	makeTree(t, cache, sampleTree()...)
	first := save(t, SaveOptions{Cache: cache, Out: filepath.Join(tmp, "first")})
	dst := filepath.Join(tmp, "dst")
	os.Mkdir(dst, 0o755)
	index := filepath.Join(tmp, "index")
	restore(t, RestoreOptions{Cache: dst, Index: index, Layers: []string{filepath.Join(tmp, "first", LayerFile)}})

	full := save(t, SaveOptions{Cache: dst, Index: index, Out: filepath.Join(tmp, "full"), Full: true})
	if full.Files != full.CacheFiles || full.Files != 10 {
		t.Errorf("full save: %+v; want all 10 entries", full)
	}
	// Without symbolic links (whose times a restore does not keep), a
	// restored cache packs to the same bytes as the original.
	if full.Digest != first.Digest {
		t.Errorf("full save of the restored cache is %s; the original's is %s", full.Digest, first.Digest)
	}
}

func TestSaveLeave(t *testing.T) {
	tmp := t.TempDir()
	cache := filepath.Join(tmp, "cache")
	makeTree(t, cache,
		file("keep", "k"),
		file("pkgcache.bin", "big"),
		file("lock/a", "a"), file("lock/b", "b"),
		file("sub/pkgcache.bin", "not left out: exact match only"),
		file(".larder-tmp-123", "left by an interrupted restore"),
		file("sub/.larder-tmp-9", "too"),
	)
	res := save(t, SaveOptions{Cache: cache, Out: filepath.Join(tmp, "out"), Leave: []string{"pkgcache.bin", "lock"}})
	want := []string{"keep", "sub/", "sub/pkgcache.bin"}
	if got := layerNames(t, filepath.Join(tmp, "out", LayerFile)); !slices.Equal(got, want) {
		t.Errorf("layer holds %s; want %s", join(got), join(want))
	}
	if res.CacheFiles != 3 || res.CacheBytes != 31 {
		t.Errorf("save: %+v; want 3 entries, 31 bytes in the cache", res)
	}
	for _, bad := range []string{"/abs", "../up", "."} {
		if _, err := Save(SaveOptions{Cache: cache, Out: filepath.Join(tmp, "bad"), Leave: []string{bad}}); err == nil {
			t.Errorf("Leave %q: no error", bad)
		}
	}
}

func TestSaveIsDeterministic(t *testing.T) {
	tmp := t.TempDir()
	cache := filepath.Join(tmp, "cache")
	// No symbolic links: the test cannot set their modification time.
	nodes := sampleTree()
	makeTree(t, cache, nodes...)
	a := save(t, SaveOptions{Cache: cache, Out: filepath.Join(tmp, "a")})
	b := save(t, SaveOptions{Cache: cache, Out: filepath.Join(tmp, "b")})
	// The same tree made in the opposite order, at another path.
	slices.Reverse(nodes)
	makeTree(t, filepath.Join(tmp, "copy"), nodes...)
	c := save(t, SaveOptions{Cache: filepath.Join(tmp, "copy"), Out: filepath.Join(tmp, "c")})
	if a.Digest != b.Digest || a.Digest != c.Digest || a.Digest == "" {
		t.Errorf("three saves of the same tree: %s, %s and %s", a.Digest, b.Digest, c.Digest)
	}
	la, _ := os.ReadFile(filepath.Join(tmp, "a", LayerFile))
	// The gzip header is empty: no flags (so no name), no time, the
	// "fastest" extra flag, "unknown" OS.
	if !bytes.Equal(la[:10], []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 0xff}) {
		t.Errorf("gzip header % x", la[:10])
	}
}

func TestLayerFormat(t *testing.T) {
	tmp := t.TempDir()
	cache := filepath.Join(tmp, "cache")
	makeTree(t, cache, append(sampleTree(), sampleLinks()...)...)
	save(t, SaveOptions{Cache: cache, Out: filepath.Join(tmp, "out")})
	var names []string
	for _, h := range layerEntries(t, filepath.Join(tmp, "out", LayerFile)) {
		names = append(names, h.Name)
		if h.Uname != "" || h.Gname != "" || !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() {
			t.Errorf("%s: names %q %q, atime %v, ctime %v; want none", h.Name, h.Uname, h.Gname, h.AccessTime, h.ChangeTime)
		}
		if h.Format != tar.FormatPAX && h.Format != tar.FormatUSTAR|tar.FormatPAX {
			t.Errorf("%s: format %v; want PAX", h.Name, h.Format)
		}
		if h.Name == "d/a.txt" && h.ModTime.UnixNano() != baseTime+1 {
			t.Errorf("%s: mtime %d; want %d", h.Name, h.ModTime.UnixNano(), baseTime+1)
		}
		if h.Name == "d/exec" && h.Mode != 0o755 {
			t.Errorf("%s: mode %o; want 755", h.Name, h.Mode)
		}
	}
	want := []string{"d/", "d/a.txt", "d/empty", "d/exec", "d/link", "d/sub/", "d/sub/deep", "dangling", "e/", "long/", "long/" + string(bytes.Repeat([]byte("n"), 150)), "top"}
	if !slices.Equal(names, want) {
		t.Errorf("layer holds\n%s\nwant\n%s", join(names), join(want))
	}
}

func TestSaveEmptyAndMissingCache(t *testing.T) {
	tmp := t.TempDir()
	empty := filepath.Join(tmp, "empty")
	os.Mkdir(empty, 0o755)
	for _, cache := range []string{empty, filepath.Join(tmp, "missing")} {
		for _, full := range []bool{false, true} {
			out := filepath.Join(tmp, "out")
			res := save(t, SaveOptions{Cache: cache, Out: out, Full: full, Index: filepath.Join(tmp, "no-index")})
			if res != (SaveResult{Version: 1}) {
				t.Errorf("%s, full %v: %+v; want nothing", cache, full, res)
			}
			b, _ := os.ReadFile(filepath.Join(out, SummaryFile))
			if want := `{"version":1,"files":0,"bytes":0,"cacheFiles":0,"cacheBytes":0}` + "\n"; string(b) != want {
				t.Errorf("%s holds %s; want %s", SummaryFile, b, want)
			}
		}
	}
}

func TestSaveRemovesStaleLayer(t *testing.T) {
	tmp := t.TempDir()
	out := filepath.Join(tmp, "out")
	os.Mkdir(out, 0o755)
	os.WriteFile(filepath.Join(out, LayerFile), []byte("stale"), 0o644)
	save(t, SaveOptions{Cache: filepath.Join(tmp, "missing"), Out: out}) // checks there is no layer
}

func TestSaveRejectsBadIndex(t *testing.T) {
	tmp := t.TempDir()
	bad := filepath.Join(tmp, "index")
	os.WriteFile(bad, []byte("not gzip"), 0o644)
	if _, err := Save(SaveOptions{Cache: tmp, Index: bad, Out: filepath.Join(tmp, "out")}); err == nil {
		t.Error("an index that is not gzip: no error")
	}
	x := newIndex()
	x.put(entry{Path: "a", Type: typeFile, Mtime: time.Now().UnixNano()})
	if err := x.write(bad); err != nil {
		t.Fatal(err)
	}
	if _, err := readIndex(bad); err != nil {
		t.Errorf("an index just written: %v", err)
	}
}
