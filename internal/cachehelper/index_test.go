package cachehelper

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// The index is gzip'd JSON lines, a version first, then one line a path in
// byte order, and two restores of the same layers write the same bytes.
func TestIndexFormat(t *testing.T) {
	tmp := t.TempDir()
	layer := writeLayer(t, filepath.Join(tmp, "layer"),
		rawDir("d/"),
		reg("d/a", "hello"),
		rawSymlink("d.link", "d/a"),
		reg("d/a", "hello, world"), // later wins
	)
	var indexes [][]byte
	for _, name := range []string{"one", "two"} {
		cache := filepath.Join(tmp, name)
		os.Mkdir(cache, 0o755)
		index := filepath.Join(tmp, name+".index")
		restore(t, RestoreOptions{Cache: cache, Index: index, Layers: []string{layer}})
		b, err := os.ReadFile(index)
		if err != nil {
			t.Fatal(err)
		}
		indexes = append(indexes, b)
	}
	if !bytes.Equal(indexes[0], indexes[1]) {
		t.Error("two restores of the same layer wrote different indexes")
	}
	zr, err := gzip.NewReader(bytes.NewReader(indexes[0]))
	if err != nil {
		t.Fatal(err)
	}
	if zr.Name != "" || !zr.ModTime.IsZero() {
		t.Errorf("gzip header names %q, time %v; want neither", zr.Name, zr.ModTime)
	}
	got, _ := io.ReadAll(zr)
	uid, gid := os.Getuid(), os.Getgid()
	want := fmt.Sprintf(`{"version":1}
{"path":"d","type":"dir","mode":493,"uid":%[1]d,"gid":%[2]d,"mtime":%[3]d}
{"path":"d.link","type":"symlink","mode":511,"uid":%[1]d,"gid":%[2]d,"mtime":%[3]d,"link":"d/a"}
{"path":"d/a","type":"file","mode":420,"uid":%[1]d,"gid":%[2]d,"size":12,"mtime":%[3]d}
`, uid, gid, baseTime)
	if string(got) != want {
		t.Errorf("index:\n%s\nwant:\n%s", got, want)
	}
}

func TestReadIndexRejectsOtherVersions(t *testing.T) {
	name := filepath.Join(t.TempDir(), "index")
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	io.WriteString(zw, `{"version":2}`+"\n")
	zw.Close()
	os.WriteFile(name, b.Bytes(), 0o644)
	if _, err := readIndex(name); err == nil {
		t.Error("an index of version 2: no error")
	}
	if idx, err := readIndex(filepath.Join(t.TempDir(), "missing")); err != nil || len(idx) != 0 {
		t.Errorf("a missing index: %v, %v; want an empty one", idx, err)
	}
}
