package cachehelper

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRestorePreexistingWins(t *testing.T) {
	tmp := t.TempDir()
	cache := filepath.Join(tmp, "cache")
	makeTree(t, cache,
		file("mine", "builder's").withMode(0o600),
		dir("shared"),
		file("shared/old", "builder's"),
		file("notadir", "a file where a layer has a directory"),
	)
	before := snapshot(t, cache)
	layer := writeLayer(t, filepath.Join(tmp, "layer"),
		reg("mine", "layer's"),
		rawDir("shared/"),
		reg("shared/old", "layer's"),
		reg("shared/new", "layer's"),
		rawDir("notadir/"),
		reg("notadir/x", "layer's"),
	)
	index := filepath.Join(tmp, "index")
	res := restore(t, RestoreOptions{Cache: cache, Index: index, Layers: []string{layer}})
	if want := (RestoreResult{Files: 1, Skipped: 5}); res != want {
		t.Errorf("restore: %v; want %v", res, want)
	}
	after := snapshot(t, cache)
	if b, _ := os.ReadFile(filepath.Join(cache, "shared/new")); string(b) != "layer's" {
		t.Errorf("shared/new holds %q; want the layer's", b)
	}
	delete(after, "shared/new")
	after["shared"] = before["shared"] // its mtime changed as shared/new was added
	compareSnapshots(t, after, before)

	// The index holds the layer's attributes, not the builder's, so that
	// a save packs the builder's files.
	idx := readIndexT(t, index)
	if e := idx["mine"]; e.Mode != 0o644 || e.Size != 7 || e.Mtime != baseTime {
		t.Errorf("index entry of mine: %+v; want the layer's header", e)
	}
	var paths []string
	for p := range idx {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	if want := []string{"mine", "notadir", "notadir/x", "shared", "shared/new", "shared/old"}; !slices.Equal(paths, want) {
		t.Errorf("index holds %s; want %s", join(paths), join(want))
	}
	res2 := save(t, SaveOptions{Cache: cache, Index: index, Out: filepath.Join(tmp, "out")})
	if got, want := layerNames(t, filepath.Join(tmp, "out", LayerFile)), []string{"mine", "notadir", "shared/old"}; !slices.Equal(got, want) {
		t.Errorf("save packs %s; want %s (%v)", join(got), join(want), res2)
	}
}

func TestRestoreLaterLayersOverride(t *testing.T) {
	tmp := t.TempDir()
	cache := filepath.Join(tmp, "cache")
	os.Mkdir(cache, 0o755)
	at := func(e rawEntry, ns int64) rawEntry { e.hdr.ModTime = time.Unix(0, ns); return e }
	l1 := writeLayer(t, filepath.Join(tmp, "l1"),
		reg("f", "old"),
		rawDir("d/"),
		reg("d/child", "gone when d becomes a file"),
		reg("implicit/child", "gone when implicit becomes a link"),
		rawSymlink("l", "f"),
		reg("tofile", "x"),
		reg("todir", "becomes a directory"),
	)
	l2 := writeLayer(t, filepath.Join(tmp, "l2"),
		at(reg("f", "newer"), baseTime+5),
		reg("d", "now a file"),
		rawSymlink("implicit", "f"),
		reg("l", "a file over a link"),
		rawSymlink("tofile", "f"),
		rawDir("todir/"),
		reg("todir/x", "x"),
	)
	l3 := writeLayer(t, filepath.Join(tmp, "l3"),
		reg("tofile", "last"),
	)
	index := filepath.Join(tmp, "index")
	res := restore(t, RestoreOptions{Cache: cache, Index: index, Layers: []string{l1, l2, l3}})
	if want := (RestoreResult{Files: 10, Dirs: 2, Symlinks: 3}); res != want {
		t.Errorf("restore: %v; want %v", res, want)
	}
	got := map[string]string{}
	for p, s := range snapshot(t, cache) {
		got[p] = strings.Fields(s)[0]
	}
	want := map[string]string{"f": "----------", "d": "----------", "implicit": "L---------", "l": "----------", "tofile": "----------", "todir": "d---------", "todir/x": "----------"}
	if len(got) != len(want) {
		t.Errorf("cache holds %v; want %v", got, want)
	}
	for p, w := range want {
		if got[p] != w {
			t.Errorf("%s: %q; want %q", p, got[p], w)
		}
	}
	for p, data := range map[string]string{"f": "newer", "d": "now a file", "l": "a file over a link", "tofile": "last"} {
		if b, _ := os.ReadFile(filepath.Join(cache, p)); string(b) != data {
			t.Errorf("%s holds %q; want %q", p, b, data)
		}
	}
	idx := readIndexT(t, index)
	var paths []string
	for p := range idx {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	if w := []string{"d", "f", "implicit", "l", "todir", "todir/x", "tofile"}; !slices.Equal(paths, w) {
		t.Errorf("index holds %s; want %s", join(paths), join(w))
	}
	if e := idx["f"]; e.Mtime != baseTime+5 || e.Size != 5 {
		t.Errorf("index entry of f: %+v; want the second layer's", e)
	}
	if e := idx["implicit"]; e.Type != typeSymlink || e.Link != "f" {
		t.Errorf("index entry of implicit: %+v; want a link to f", e)
	}
}

func TestRestoreHostileLayers(t *testing.T) {
	tmp := t.TempDir()
	cache := filepath.Join(tmp, "cache")
	outside := filepath.Join(tmp, "outside")
	makeTree(t, outside, file("victim", "untouched"))
	makeTree(t, cache, symlink("planted", outside))
	before := snapshot(t, tmp)
	ldir := filepath.Join(tmp, "layers")
	os.Mkdir(ldir, 0o755)

	dev := rawEntry{hdr: tar.Header{Name: "dev", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3, Mode: 0o666}}
	blk := rawEntry{hdr: tar.Header{Name: "blk", Typeflag: tar.TypeBlock, Devmajor: 7, Mode: 0o666}}
	fifo := rawEntry{hdr: tar.Header{Name: "fifo", Typeflag: tar.TypeFifo, Mode: 0o666}}
	hard := rawEntry{hdr: tar.Header{Name: "hard", Typeflag: tar.TypeLink, Linkname: filepath.Join(outside, "victim")}}
	hardRel := rawEntry{hdr: tar.Header{Name: "hardrel", Typeflag: tar.TypeLink, Linkname: "../outside/victim"}}
	setuidRoot := reg("suid", "ok: a plain file")
	setuidRoot.hdr.Mode = 0o6755
	layers := []string{
		writeLayer(t, filepath.Join(ldir, "names"),
			reg("/abs", "x"),
			reg(filepath.Join(outside, "victim"), "overwritten"),
			reg("../outside/victim", "overwritten"),
			reg("a/../../outside/victim", "overwritten"),
			reg("./../outside/new", "x"),
			reg("..", "x"),
			reg("", "x"),
			rawDir("./"),
			reg(strings.Repeat("n", 256), "a name too long"),
			reg(strings.Repeat("n", 255), "a name just short enough"),
			reg(strings.Repeat("deep/", 1000)+"x", "a path too long"),
			rawSymlink("nowhere", ""),
			rawSymlink("far", strings.Repeat("x/", 3000)),
		),
		writeLayer(t, filepath.Join(ldir, "through-link"),
			rawSymlink("evil", outside),
			reg("evil/victim", "overwritten"),
			reg("evil/new", "x"),
			rawDir("evil/newdir/"),
			rawSymlink("up", ".."),
			reg("up/outside/victim", "overwritten"),
			rawSymlink("evil2", outside),
			reg("evil2/../victim", "overwritten"),
		),
		writeLayer(t, filepath.Join(ldir, "planted"),
			reg("planted/victim", "overwritten"),
			reg("planted/new", "x"),
			rawDir("planted/sub/"),
			reg("planted", "does not replace the builder's link"),
		),
		writeLayer(t, filepath.Join(ldir, "types"), dev, blk, fifo, hard, hardRel, setuidRoot),
		writeSparseLayer(t, filepath.Join(ldir, "sparse")),
		// A link from an earlier layer is replaced, not followed.
		writeLayer(t, filepath.Join(ldir, "over-link"),
			reg("evil", "replaces the link itself"),
			rawDir("up/"),
			reg("up/inside", "in a directory that replaced the link"),
		),
	}
	index := filepath.Join(tmp, "index")
	var log bytes.Buffer
	res, err := Restore(RestoreOptions{Cache: cache, Index: index, Layers: layers, Log: &log})
	if err != nil {
		t.Fatalf("restore failed: %v\n%s", err, log.String())
	}
	if want := (RestoreResult{Files: 4, Dirs: 1, Symlinks: 3, Skipped: 2, Rejected: 25}); res != want {
		t.Errorf("restore: %v; want %v\n%s", res, want, log.String())
	}
	if n := strings.Count(log.String(), "\n"); n != res.Rejected {
		t.Errorf("%d lines for %d rejected entries:\n%s", n, res.Rejected, log.String())
	}
	t.Logf("log:\n%s", log.String())

	// Outside the cache directory, nothing changed.
	after := snapshot(t, tmp)
	for p, s := range after {
		if !strings.HasPrefix(p, "cache/") && p != "cache" && p != "index" && !strings.HasPrefix(p, "layers") {
			if before[p] != s {
				t.Errorf("outside the cache: %s is %s; was %s", p, s, before[p])
			}
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			t.Errorf("%s was removed", p)
		}
	}
	got := map[string]bool{}
	for p := range snapshot(t, cache) {
		got[p] = true
	}
	want := []string{"planted", "evil", "evil2", "up", "up/inside", "suid", strings.Repeat("n", 255)}
	for _, p := range want {
		if !got[p] {
			t.Errorf("%s was not restored", p)
		}
		delete(got, p)
	}
	if len(got) != 0 {
		t.Errorf("unexpected paths in the cache: %v", got)
	}
	if _, err := os.Lstat("/abs"); err == nil {
		t.Error("/abs exists")
	}
	if fi, err := os.Lstat(filepath.Join(cache, "evil")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("evil: %v, %v; want the regular file that replaced the link", fi, err)
	}
	if fi, err := os.Lstat(filepath.Join(cache, "suid")); err != nil || fi.Mode()&(os.ModeSetuid|os.ModeSetgid) != 0 || fi.Mode().Perm() != 0o755 {
		t.Errorf("suid: %v, %v; want 0755, without set-user-ID and set-group-ID", fi, err)
	}
}

func TestRestoreMissingCache(t *testing.T) {
	if _, err := Restore(RestoreOptions{Cache: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Error("restore into a missing directory: no error")
	}
}

func TestRestoreNoLayers(t *testing.T) {
	tmp := t.TempDir()
	index := filepath.Join(tmp, "index")
	if res := restore(t, RestoreOptions{Cache: tmp, Index: index}); res != (RestoreResult{}) {
		t.Errorf("restore of no layers: %v", res)
	}
	if idx := readIndexT(t, index); len(idx) != 0 {
		t.Errorf("index of no layers holds %v", idx)
	}
}

func TestRestoreCorruptLayer(t *testing.T) {
	tmp := t.TempDir()
	bad := filepath.Join(tmp, "bad")
	good := writeLayer(t, filepath.Join(tmp, "good"), reg("a", strings.Repeat("x", 4096)))
	b, _ := os.ReadFile(good)
	os.WriteFile(bad, b[:len(b)/2], 0o644)
	cache := filepath.Join(tmp, "cache")
	os.Mkdir(cache, 0o755)
	if _, err := Restore(RestoreOptions{Cache: cache, Layers: []string{bad}}); err == nil {
		t.Error("a truncated layer: no error")
	}
	entries, _ := os.ReadDir(cache)
	if len(entries) != 0 {
		t.Errorf("a truncated layer left %v", entries)
	}
}
