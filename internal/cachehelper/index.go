package cachehelper

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
)

// indexVersion is the version of the index format this package reads and
// writes.
const indexVersion = 1

// The entry types of an index.
const (
	typeFile    = "file"
	typeDir     = "dir"
	typeSymlink = "symlink"
)

// entry is one path of an index: the attributes a layer's tar header gives
// it, or those of a file in the cache.
type entry struct {
	Path  string `json:"path"`
	Type  string `json:"type"`
	Mode  int64  `json:"mode"`
	UID   int    `json:"uid"`
	GID   int    `json:"gid"`
	Size  int64  `json:"size,omitempty"`
	Mtime int64  `json:"mtime"`
	Link  string `json:"link,omitempty"`
}

// indexHeader is the first value of an index.
type indexHeader struct {
	Version int `json:"version"`
}

// changedFrom reports whether e differs from old, the index's entry for its
// path (ok false: none): in type, mode bits, owner or link target, or, for
// a regular file, in size or modification time. A directory's modification
// time changes whenever a file is added to it and is ignored.
func (e entry) changedFrom(old entry, ok bool) bool {
	if !ok || old.Type != e.Type || old.Mode != e.Mode || old.UID != e.UID || old.GID != e.GID || old.Link != e.Link {
		return true
	}
	return e.Type == typeFile && (old.Size != e.Size || old.Mtime != e.Mtime)
}

// index is the set of paths the layers of a restore define, later entries
// overriding earlier ones.
type index struct {
	entries map[string]entry
	// parents holds the paths that have descendants in entries; every
	// ancestor of a path in parents is in parents too.
	parents map[string]bool
}

func newIndex() *index {
	return &index{entries: map[string]entry{}, parents: map[string]bool{}}
}

// put records e. When e is not a directory, the paths under it are
// dropped: a later layer that turns a directory into a file or a link
// removes what the directory held.
func (x *index) put(e entry) {
	if e.Type != typeDir && x.parents[e.Path] {
		prefix := e.Path + "/"
		for p := range x.entries {
			if strings.HasPrefix(p, prefix) {
				delete(x.entries, p)
			}
		}
		for p := range x.parents {
			if strings.HasPrefix(p, prefix) {
				delete(x.parents, p)
			}
		}
		delete(x.parents, e.Path)
	}
	x.entries[e.Path] = e
	for p := path.Dir(e.Path); p != "." && !x.parents[p]; p = path.Dir(p) {
		x.parents[p] = true
	}
}

// write writes the index to the file name.
func (x *index) write(name string) (err error) {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	bw := bufio.NewWriter(f)
	zw, err := gzip.NewWriterLevel(bw, gzip.BestSpeed)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(zw)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(indexHeader{Version: indexVersion}); err != nil {
		return err
	}
	paths := make([]string, 0, len(x.entries))
	for p := range x.entries {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		if err := enc.Encode(x.entries[p]); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// readIndex reads the index in the file name. An empty name, or a file
// that does not exist, is an empty index: everything in the cache is new.
func readIndex(name string) (map[string]entry, error) {
	entries := map[string]entry{}
	if name == "" {
		return entries, nil
	}
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return entries, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("index %s: %w", name, err)
	}
	dec := json.NewDecoder(zr)
	var h indexHeader
	if err := dec.Decode(&h); err != nil {
		return nil, fmt.Errorf("index %s: %w", name, err)
	}
	if h.Version != indexVersion {
		return nil, fmt.Errorf("index %s: version %d, want %d", name, h.Version, indexVersion)
	}
	for {
		var e entry
		err := dec.Decode(&e)
		if err == io.EOF {
			return entries, nil
		}
		if err != nil {
			return nil, fmt.Errorf("index %s: %w", name, err)
		}
		entries[e.Path] = e
	}
}

// modeBits returns the permission, set-user-ID, set-group-ID and sticky
// bits of m as the low 12 bits of a Unix mode.
func modeBits(m fs.FileMode) int64 {
	bits := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		bits |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		bits |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		bits |= 0o1000
	}
	return bits
}

// fileMode is the inverse of modeBits.
func fileMode(bits int64) fs.FileMode {
	m := fs.FileMode(bits & 0o777)
	if bits&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if bits&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if bits&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}
