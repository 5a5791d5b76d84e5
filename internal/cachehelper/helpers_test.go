package cachehelper

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var asRoot = os.Geteuid() == 0

// node is one path of a test tree.
type node struct {
	path  string
	typ   string // typeFile, typeDir or typeSymlink
	data  string // a file's contents
	link  string // a symlink's target
	mode  int64  // mode bits; 0 is 0644 for files, 0755 for dirs
	uid   int    // owner, when running as root; -1 is the process's
	gid   int
	mtime int64 // nanoseconds; 0 is a fixed default
}

// baseTime is the default modification time of test trees, with
// nanoseconds so that their loss shows.
var baseTime = time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC).UnixNano()

func file(p, data string) node    { return node{path: p, typ: typeFile, data: data, uid: -1} }
func dir(p string) node           { return node{path: p, typ: typeDir, uid: -1} }
func symlink(p, link string) node { return node{path: p, typ: typeSymlink, link: link, uid: -1} }

func (n node) withMode(m int64) node       { n.mode = m; return n }
func (n node) withOwner(uid, gid int) node { n.uid, n.gid = uid, gid; return n }
func (n node) withMtime(ns int64) node     { n.mtime = ns; return n }

// makeTree makes nodes under root, parents first; directory attributes
// are set last, so that making their contents does not change them.
func makeTree(t *testing.T, root string, nodes ...node) {
	t.Helper()
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	var dirs []node
	for _, n := range nodes {
		p := filepath.Join(root, filepath.FromSlash(n.path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch n.typ {
		case typeFile:
			if n.mode == 0 {
				n.mode = 0o644
			}
			if err := os.WriteFile(p, []byte(n.data), 0o600); err != nil {
				t.Fatal(err)
			}
		case typeDir:
			if n.mode == 0 {
				n.mode = 0o755
			}
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			dirs = append([]node{n}, dirs...)
			continue
		case typeSymlink:
			os.Remove(p)
			if err := os.Symlink(n.link, p); err != nil {
				t.Fatal(err)
			}
		}
		setAttrs(t, p, n)
	}
	for _, n := range dirs { // deepest last made first
		setAttrs(t, filepath.Join(root, filepath.FromSlash(n.path)), n)
	}
}

func setAttrs(t *testing.T, p string, n node) {
	t.Helper()
	if asRoot && n.uid >= 0 {
		if err := os.Lchown(p, n.uid, n.gid); err != nil {
			t.Fatal(err)
		}
	}
	if n.typ == typeSymlink {
		return
	}
	if err := os.Chmod(p, fileMode(n.mode)); err != nil {
		t.Fatal(err)
	}
	mtime := n.mtime
	if mtime == 0 {
		mtime = baseTime
	}
	if err := os.Chtimes(p, time.Time{}, time.Unix(0, mtime)); err != nil {
		t.Fatal(err)
	}
}

// snapshot describes every path under root: type, mode, owner (as root),
// size, modification time (but a symlink's), link target and a digest of
// the contents.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		s := fmt.Sprintf("%v %o", info.Mode().Type(), modeBits(info.Mode()))
		if asRoot {
			uid, gid := owner(info)
			s += fmt.Sprintf(" %d:%d", uid, gid)
		}
		switch info.Mode().Type() {
		case 0:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			s += fmt.Sprintf(" size=%d mtime=%d data=%s", info.Size(), info.ModTime().UnixNano(), hex.EncodeToString(sum[:4]))
		case fs.ModeDir:
			s += fmt.Sprintf(" mtime=%d", info.ModTime().UnixNano())
		case fs.ModeSymlink:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			s += " -> " + link
		}
		out[filepath.ToSlash(rel)] = s
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func compareSnapshots(t *testing.T, got, want map[string]string) {
	t.Helper()
	for p, w := range want {
		if g, ok := got[p]; !ok {
			t.Errorf("%s: missing; want %s", p, w)
		} else if g != w {
			t.Errorf("%s:\n got %s\nwant %s", p, g, w)
		}
	}
	for p, g := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: unexpected %s", p, g)
		}
	}
}

// save runs Save and checks what it wrote against its result.
func save(t *testing.T, opts SaveOptions) SaveResult {
	t.Helper()
	res, err := Save(opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(opts.Out, SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	var fromFile SaveResult
	if err := json.Unmarshal(b, &fromFile); err != nil {
		t.Fatal(err)
	}
	if fromFile != res {
		t.Errorf("%s holds %+v; Save returned %+v", SummaryFile, fromFile, res)
	}
	layer := filepath.Join(opts.Out, LayerFile)
	info, err := os.Stat(layer)
	if res.Files == 0 {
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("no entry saved, yet %s: %v", LayerFile, err)
		}
		return res
	}
	if err != nil {
		t.Fatal(err)
	}
	lb, err := os.ReadFile(layer)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(lb)
	if d := "sha256:" + hex.EncodeToString(sum[:]); d != res.Digest || info.Size() != res.Size {
		t.Errorf("layer is %s, %d bytes; result says %s, %d bytes", d, info.Size(), res.Digest, res.Size)
	}
	return res
}

func restore(t *testing.T, opts RestoreOptions) RestoreResult {
	t.Helper()
	res, err := Restore(opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// layerEntries lists the headers of the layer in the file name.
func layerEntries(t *testing.T, name string) []*tar.Header {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var out []*tar.Header
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, hdr)
	}
}

func layerNames(t *testing.T, name string) []string {
	t.Helper()
	var out []string
	for _, h := range layerEntries(t, name) {
		out = append(out, h.Name)
	}
	return out
}

// rawEntry is one entry of a hand-made layer.
type rawEntry struct {
	hdr  tar.Header
	data string
}

func reg(name, data string) rawEntry {
	return rawEntry{hdr: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data)), ModTime: time.Unix(0, baseTime)}, data: data}
}

func rawDir(name string) rawEntry {
	return rawEntry{hdr: tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: time.Unix(0, baseTime)}}
}

func rawSymlink(name, target string) rawEntry {
	return rawEntry{hdr: tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777, ModTime: time.Unix(0, baseTime)}}
}

// writeLayer writes entries as a layer in the file name.
func writeLayer(t *testing.T, name string, entries ...rawEntry) string {
	t.Helper()
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		hdr := e.hdr
		hdr.Format = tar.FormatPAX
		// Owned by the test's user: one that is not root cannot give its
		// files another owner.
		hdr.Uid, hdr.Gid = os.Getuid(), os.Getgid()
		if err := tw.WriteHeader(&hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return name
}

// writeSparseLayer writes a layer of one GNU sparse file (PAX, format
// 1.0) named "sparse": 513 bytes in the tar (its map, then one byte at
// 1 TiB - 1) that read as a file of 1 TiB. archive/tar writes no sparse
// files, so the blocks are made here.
func writeSparseLayer(t *testing.T, name string) string {
	t.Helper()
	header := func(name string, typ byte, size int) []byte {
		b := make([]byte, 512)
		copy(b[0:], name)
		copy(b[100:], "0000644\x00")
		copy(b[108:], "0000000\x00")
		copy(b[116:], "0000000\x00")
		copy(b[124:], fmt.Sprintf("%011o\x00", size))
		copy(b[136:], "00000000000\x00")
		b[156] = typ
		copy(b[257:], "ustar\x0000")
		copy(b[148:], "        ")
		sum := 0
		for _, c := range b {
			sum += int(c)
		}
		copy(b[148:], fmt.Sprintf("%06o\x00 ", sum))
		return b
	}
	padded := func(s string) []byte { return append([]byte(s), make([]byte, (512-len(s)%512)%512)...) }
	var recs strings.Builder
	for _, kv := range [][2]string{{"GNU.sparse.major", "1"}, {"GNU.sparse.minor", "0"}, {"GNU.sparse.name", "sparse"}, {"GNU.sparse.realsize", "1099511627776"}} {
		// "%d key=value\n", where the length counts itself: two digits.
		rec := " " + kv[0] + "=" + kv[1] + "\n"
		fmt.Fprintf(&recs, "%d%s", len(rec)+2, rec)
	}
	sparseMap := "1\n1099511627775\n1\n"
	data := string(padded(sparseMap)) + "x"
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(header("PaxHeaders/sparse", tar.TypeXHeader, recs.Len()))
	zw.Write(padded(recs.String()))
	zw.Write(header("sparse", tar.TypeReg, len(data)))
	zw.Write(padded(data))
	zw.Write(make([]byte, 1024))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

// readIndexT reads an index, failing the test on error.
func readIndexT(t *testing.T, name string) map[string]entry {
	t.Helper()
	idx, err := readIndex(name)
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

func join(s []string) string { return strings.Join(s, " ") }
