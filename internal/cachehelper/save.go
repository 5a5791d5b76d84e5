package cachehelper

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// The names of the files Save writes in its output directory.
const (
	// LayerFile is the layer: a gzip-compressed tar file of the entries
	// that changed.
	LayerFile = "layer.tar.gz"
	// SummaryFile is the SaveResult, as JSON.
	SummaryFile = "layer.json"
)

// SaveOptions says what Save packs and where it writes it.
type SaveOptions struct {
	// Cache is the cache directory. One that does not exist is empty.
	Cache string
	// Index is the index a Restore wrote into this cache directory. Empty,
	// or a file that does not exist, means everything in the cache is new.
	Index string
	// Out is the directory Save writes LayerFile and SummaryFile in; it is
	// made if missing.
	Out string
	// Full packs every entry of the cache, changed or not, to replace all
	// the layers before it. The default packs only the entries that
	// changed since the restore.
	Full bool
	// Leave lists paths, relative to Cache with "/" separators, that are
	// left out (a directory with all it holds). They must match exactly.
	Leave []string
	// Log receives one line for each file Save cannot pack (sockets,
	// devices, FIFOs); nil discards them.
	Log io.Writer
}

// SaveResult describes the layer Save wrote. It is what Save writes to
// SummaryFile, as JSON with the fields' json names.
type SaveResult struct {
	// Version is the version of this description: 1.
	Version int `json:"version"`
	// Digest is the layer's digest, "sha256:" and 64 hex digits; empty
	// when Save wrote no layer.
	Digest string `json:"digest,omitempty"`
	// Size is the layer's size in bytes; 0 when Save wrote no layer.
	Size int64 `json:"size,omitempty"`
	// Files counts the entries in the layer: regular files, directories
	// and symbolic links. When it is 0, Save wrote no layer.
	Files int `json:"files"`
	// Bytes sums the sizes of the regular files in the layer.
	Bytes int64 `json:"bytes"`
	// CacheFiles counts the entries in the cache, those left out aside.
	CacheFiles int `json:"cacheFiles"`
	// CacheBytes sums the sizes of the regular files in the cache.
	CacheBytes int64 `json:"cacheBytes"`
}

// String returns the summary line of a save, such as "saved 2 entries
// (120 bytes) of 10 (4096 bytes) as sha256:…".
func (s SaveResult) String() string {
	if s.Files == 0 {
		return fmt.Sprintf("saved nothing: no change in %d entries (%d bytes)", s.CacheFiles, s.CacheBytes)
	}
	return fmt.Sprintf("saved %d entries (%d bytes) of %d (%d bytes) as %s, %d bytes",
		s.Files, s.Bytes, s.CacheFiles, s.CacheBytes, s.Digest, s.Size)
}

// Save packs the entries of opts.Cache that changed since the restore that
// wrote opts.Index (all of them with opts.Full) into opts.Out/LayerFile,
// and writes the SaveResult to opts.Out/SummaryFile. When it packs no
// entry (nothing changed, or the cache is empty), it writes no layer, and
// removes one left from before.
//
// An entry changed when the index has no entry for its path or one with
// another type, mode, owner or link target, or, for a regular file,
// another size or modification time. Files whose names start with
// ".larder-tmp-", left by an interrupted restore, are left out. The layer
// is deterministic: the same cache contents give the same bytes.
func Save(opts SaveOptions) (SaveResult, error) {
	if opts.Cache == "" {
		return SaveResult{}, errors.New("save: no cache directory")
	}
	if opts.Out == "" {
		return SaveResult{}, errors.New("save: no output directory")
	}
	leave := map[string]bool{}
	for _, l := range opts.Leave {
		if l == "" {
			continue
		}
		clean := path.Clean(l)
		if !filepath.IsLocal(filepath.FromSlash(clean)) || clean == "." {
			return SaveResult{}, fmt.Errorf("save: path to leave out %q is not inside the cache directory", l)
		}
		leave[clean] = true
	}
	idx, err := readIndex(opts.Index)
	if err != nil {
		return SaveResult{}, fmt.Errorf("save: %w", err)
	}
	if err := os.MkdirAll(opts.Out, 0o755); err != nil {
		return SaveResult{}, fmt.Errorf("save: %w", err)
	}
	s := &saver{
		root:  filepath.Clean(opts.Cache),
		out:   filepath.Join(opts.Out, LayerFile),
		index: idx,
		full:  opts.Full,
		leave: leave,
		log:   opts.Log,
		res:   SaveResult{Version: 1},
	}
	if s.log == nil {
		s.log = io.Discard
	}
	err = filepath.WalkDir(s.root, s.visit)
	if err == nil {
		err = s.close()
	}
	if err != nil {
		s.abort()
		return SaveResult{}, fmt.Errorf("save: %w", err)
	}
	if s.res.Files == 0 {
		if err := os.Remove(s.out); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return SaveResult{}, fmt.Errorf("save: %w", err)
		}
	}
	b, err := json.Marshal(s.res)
	if err != nil {
		return SaveResult{}, fmt.Errorf("save: %w", err)
	}
	if err := os.WriteFile(filepath.Join(opts.Out, SummaryFile), append(b, '\n'), 0o644); err != nil {
		return SaveResult{}, fmt.Errorf("save: %w", err)
	}
	return s.res, nil
}

// saver is the state of one Save.
type saver struct {
	root  string
	out   string
	index map[string]entry
	full  bool
	leave map[string]bool
	log   io.Writer
	res   SaveResult

	// The layer being written, once an entry changed.
	file *os.File
	buf  *bufio.Writer
	hash hash.Hash
	gz   *gzip.Writer
	tar  *tar.Writer
}

// visit is the filepath.WalkDir function of Save.
func (s *saver) visit(p string, d fs.DirEntry, err error) error {
	if p == s.root {
		if errors.Is(err, fs.ErrNotExist) {
			return filepath.SkipAll // a cache not made yet is empty
		}
		if err == nil && !d.IsDir() {
			return fmt.Errorf("%s is not a directory", p)
		}
		return err
	}
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(s.root, p)
	if err != nil {
		return err
	}
	rel = filepath.ToSlash(rel)
	if s.leave[rel] || strings.HasPrefix(d.Name(), tmpPrefix) {
		if d.IsDir() {
			return filepath.SkipDir
		}
		return nil
	}
	info, err := d.Info()
	if errors.Is(err, fs.ErrNotExist) {
		return nil // removed since its directory was read
	}
	if err != nil {
		return err
	}
	e := entry{Path: rel, Mode: modeBits(info.Mode()), Mtime: info.ModTime().UnixNano()}
	e.UID, e.GID = owner(info)
	switch info.Mode().Type() {
	case 0:
		e.Type, e.Size = typeFile, info.Size()
	case fs.ModeDir:
		e.Type = typeDir
	case fs.ModeSymlink:
		e.Type = typeSymlink
		if e.Link, err = os.Readlink(p); err != nil {
			return err
		}
	default:
		fmt.Fprintf(s.log, "cachehelper: left out %q: %s\n", rel, info.Mode().Type())
		return nil
	}
	s.res.CacheFiles++
	s.res.CacheBytes += e.Size
	if old, ok := s.index[rel]; s.full || e.changedFrom(old, ok) {
		return s.add(p, e, info)
	}
	return nil
}

// add writes e, read from the file p that info describes, to the layer.
func (s *saver) add(p string, e entry, info fs.FileInfo) error {
	if s.tar == nil {
		if err := s.open(); err != nil {
			return err
		}
	}
	hdr := &tar.Header{
		Name:    e.Path,
		Mode:    e.Mode,
		Uid:     e.UID,
		Gid:     e.GID,
		ModTime: time.Unix(0, e.Mtime),
		Format:  tar.FormatPAX,
	}
	switch e.Type {
	case typeFile:
		hdr.Typeflag, hdr.Size = tar.TypeReg, e.Size
	case typeDir:
		hdr.Typeflag, hdr.Name = tar.TypeDir, e.Path+"/"
	case typeSymlink:
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, e.Link
	}
	if err := s.tar.WriteHeader(hdr); err != nil {
		return fmt.Errorf("%s: %w", e.Path, err)
	}
	s.res.Files++
	if e.Type != typeFile {
		return nil
	}
	s.res.Bytes += e.Size
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if now, err := f.Stat(); err != nil {
		return err
	} else if !os.SameFile(info, now) {
		return fmt.Errorf("%s: replaced while saving", e.Path)
	}
	if _, err := io.CopyN(s.tar, f, e.Size); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%s: shrank while saving", e.Path)
		}
		return fmt.Errorf("%s: %w", e.Path, err)
	}
	return nil
}

// open starts the layer.
func (s *saver) open() error {
	f, err := os.Create(s.out)
	if err != nil {
		return err
	}
	s.file = f
	s.hash = sha256.New()
	s.buf = bufio.NewWriterSize(io.MultiWriter(f, s.hash), 1<<16)
	s.gz, err = gzip.NewWriterLevel(s.buf, gzip.BestSpeed)
	if err != nil {
		return err
	}
	s.tar = tar.NewWriter(s.gz)
	return nil
}

// close finishes the layer, if one was started.
func (s *saver) close() error {
	if s.tar == nil {
		return nil
	}
	if err := s.tar.Close(); err != nil {
		return err
	}
	if err := s.gz.Close(); err != nil {
		return err
	}
	if err := s.buf.Flush(); err != nil {
		return err
	}
	info, err := s.file.Stat()
	if err != nil {
		return err
	}
	if err := s.file.Close(); err != nil {
		return err
	}
	s.file = nil
	s.res.Digest = "sha256:" + hex.EncodeToString(s.hash.Sum(nil))
	s.res.Size = info.Size()
	return nil
}

// abort removes a layer left unfinished by an error.
func (s *saver) abort() {
	if s.file != nil {
		s.file.Close()
		os.Remove(s.out)
	}
}
