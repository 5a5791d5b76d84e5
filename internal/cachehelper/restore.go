package cachehelper

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The limits of Linux on the length of a path and of one of its names.
const (
	pathMax = 4096
	nameMax = 255
)

// tmpPrefix starts the names of the files Restore writes before renaming
// them into place. Save leaves such files out.
const tmpPrefix = ".larder-tmp-"

// RestoreOptions says what Restore applies and where.
type RestoreOptions struct {
	// Cache is the cache directory. It must exist.
	Cache string
	// Layers are the gzip-compressed tar files to apply, oldest first.
	Layers []string
	// Index is the file the index is written to; empty writes none.
	Index string
	// Log receives one line for each entry Restore refuses; nil discards
	// them.
	Log io.Writer
}

// RestoreResult counts what Restore did with the layers' entries. An entry
// that a later layer overrides is counted once for each layer.
type RestoreResult struct {
	// Files, Dirs and Symlinks count the regular files, directories and
	// symbolic links written.
	Files, Dirs, Symlinks int
	// Skipped counts the entries left alone because the cache directory
	// already had their path (or a file where their parent directory
	// would be) before the restore.
	Skipped int
	// Rejected counts the entries refused: unsafe names, entries under a
	// symbolic link, and types other than regular files, directories and
	// symbolic links.
	Rejected int
}

// String returns the summary line of a restore, such as "restored 3 files,
// 1 dirs, 0 symlinks; skipped 0 pre-existing; rejected 0".
func (r RestoreResult) String() string {
	return fmt.Sprintf("restored %d files, %d dirs, %d symlinks; skipped %d pre-existing; rejected %d",
		r.Files, r.Dirs, r.Symlinks, r.Skipped, r.Rejected)
}

// Restore applies opts.Layers, in order, into the directory opts.Cache and
// writes the index of what they define to opts.Index.
//
// Paths the directory has before the restore are left alone; a later
// layer overrides what an earlier one wrote. Entries that are unsafe or of
// an unsupported type are reported to opts.Log, counted in Rejected and
// skipped; they are not errors. Restore fails when a layer cannot be read
// or the cache directory cannot be written; what it wrote until then
// stays, and no file is left truncated.
//
// Directory attributes are set once all layers are applied. Owners are set
// only when running as root. A symbolic link's modification time is left
// as the restore makes it.
func Restore(opts RestoreOptions) (RestoreResult, error) {
	if opts.Cache == "" {
		return RestoreResult{}, errors.New("restore: no cache directory")
	}
	r := &restorer{
		root:     filepath.Clean(opts.Cache),
		log:      opts.Log,
		asRoot:   os.Geteuid() == 0,
		ours:     map[string]bool{},
		dirs:     map[string]bool{".": true},
		dirAttrs: map[string]entry{},
		index:    newIndex(),
	}
	if r.log == nil {
		r.log = io.Discard
	}
	if info, err := os.Stat(r.root); err != nil {
		return RestoreResult{}, fmt.Errorf("restore: %w", err)
	} else if !info.IsDir() {
		return RestoreResult{}, fmt.Errorf("restore: %s is not a directory", r.root)
	}
	for _, layer := range opts.Layers {
		if err := r.layer(layer); err != nil {
			return r.res, fmt.Errorf("restore: %s: %w", layer, err)
		}
	}
	if err := r.finishDirs(); err != nil {
		return r.res, fmt.Errorf("restore: %w", err)
	}
	if opts.Index != "" {
		if err := r.index.write(opts.Index); err != nil {
			return r.res, fmt.Errorf("restore: write index: %w", err)
		}
	}
	return r.res, nil
}

// restorer is the state of one Restore. Paths are relative to root, with
// "/" separators.
type restorer struct {
	root      string
	log       io.Writer
	asRoot    bool
	layerName string
	// ours holds the paths this restore created: those, and only those,
	// a later entry may replace.
	ours map[string]bool
	// dirs holds the paths known to be directories (not symbolic links).
	dirs map[string]bool
	// dirAttrs holds the directory entries whose attributes are set at
	// the end.
	dirAttrs map[string]entry
	index    *index
	res      RestoreResult
}

// layer applies the layer in the file name.
func (r *restorer) layer(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		return err
	}
	r.layerName = name
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := r.entry(hdr, tr); err != nil {
			return err
		}
	}
}

// reject reports and counts an entry the restore refuses.
func (r *restorer) reject(name, why string) {
	r.res.Rejected++
	fmt.Fprintf(r.log, "cachehelper: %s: rejected %q: %s\n", r.layerName, name, why)
}

// cleanName returns the path a tar entry name stands for, relative to the
// cache directory with "/" separators, or why it is refused.
func cleanName(name string) (string, string) {
	switch {
	case name == "":
		return "", "empty name"
	case strings.ContainsRune(name, 0):
		return "", "name holds a NUL byte"
	case strings.HasPrefix(name, "/"):
		return "", "absolute name"
	case slices.Contains(strings.Split(name, "/"), ".."):
		return "", `name holds ".."`
	}
	clean := path.Clean(name)
	if !filepath.IsLocal(filepath.FromSlash(clean)) {
		return "", "name is not local"
	}
	for _, part := range strings.Split(clean, "/") {
		if len(part) > nameMax {
			return "", "name too long"
		}
	}
	return clean, ""
}

// entry applies one tar entry; data reads a regular file's contents.
func (r *restorer) entry(hdr *tar.Header, data io.Reader) error {
	name, why := cleanName(hdr.Name)
	if why == "" && len(r.root)+1+len(name) >= pathMax {
		why = "name too long"
	}
	if why != "" {
		r.reject(hdr.Name, why)
		return nil
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			// A few bytes in the layer that read as a file of any size.
			r.reject(hdr.Name, "sparse file")
			return nil
		}
	}
	e := entry{
		Path: name,
		// Never set-user-ID or set-group-ID: a restore as root takes the
		// owner from the layer, and a later step's user could run it.
		Mode:  hdr.Mode & 0o1777,
		UID:   hdr.Uid,
		GID:   hdr.Gid,
		Mtime: hdr.ModTime.UnixNano(),
	}
	switch hdr.Typeflag {
	case tar.TypeReg:
		e.Type, e.Size = typeFile, hdr.Size
	case tar.TypeDir:
		e.Type = typeDir
	case tar.TypeSymlink:
		e.Type, e.Link = typeSymlink, hdr.Linkname
		if e.Link == "" || len(e.Link) >= pathMax {
			r.reject(hdr.Name, fmt.Sprintf("link target of %d bytes", len(e.Link)))
			return nil
		}
	case tar.TypeLink:
		r.reject(hdr.Name, "hard link")
		return nil
	case tar.TypeChar, tar.TypeBlock:
		r.reject(hdr.Name, "device")
		return nil
	case tar.TypeFifo:
		r.reject(hdr.Name, "FIFO")
		return nil
	default:
		r.reject(hdr.Name, fmt.Sprintf("unsupported type %q", hdr.Typeflag))
		return nil
	}
	if name == "." {
		// The cache directory itself: it always exists before.
		r.res.Skipped++
		return nil
	}

	parent, err := r.parents(name)
	if err != nil {
		return err
	}
	switch parent.state {
	case parentSymlink:
		r.reject(hdr.Name, fmt.Sprintf("parent %q is a symbolic link", parent.path))
		return nil
	case parentNotDir:
		if r.ours[parent.path] {
			r.reject(hdr.Name, fmt.Sprintf("parent %q is not a directory", parent.path))
			return nil
		}
		r.res.Skipped++
		r.index.put(e)
		return nil
	}

	target := r.abs(name)
	existing, err := os.Lstat(target)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		existing = nil
	case err != nil:
		return err
	case !r.ours[name]:
		r.res.Skipped++
		r.index.put(e)
		return nil
	}
	r.index.put(e)
	if existing != nil && existing.IsDir() && e.Type != typeDir {
		if err := r.removeDir(name); err != nil {
			return err
		}
	}
	r.ours[name] = true
	switch e.Type {
	case typeFile:
		r.res.Files++
		return r.writeFile(e, data)
	case typeSymlink:
		r.res.Symlinks++
		return r.writeSymlink(e)
	default:
		r.res.Dirs++
		return r.makeDir(e, existing)
	}
}

// abs returns the path in the file system of name, a path in the cache.
func (r *restorer) abs(name string) string {
	return filepath.Join(r.root, filepath.FromSlash(name))
}

// The states of an entry's parent directories.
const (
	parentOK      = iota // all directories
	parentSymlink        // one is a symbolic link
	parentNotDir         // one is neither a directory nor a symbolic link
)

// parentCheck is the first parent of an entry that is not a directory.
type parentCheck struct {
	state int
	path  string
}

// parents checks that every parent of name is a directory, not a symbolic
// link, making the missing ones (mode 0755).
func (r *restorer) parents(name string) (parentCheck, error) {
	dir := path.Dir(name)
	if r.dirs[dir] {
		return parentCheck{}, nil
	}
	var p string
	for _, part := range strings.Split(dir, "/") {
		p = path.Join(p, part)
		if r.dirs[p] {
			continue
		}
		abs := r.abs(p)
		info, err := os.Lstat(abs)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := os.Mkdir(abs, 0o755); err != nil {
				return parentCheck{}, err
			}
			if err := os.Chmod(abs, 0o755); err != nil { // whatever the umask
				return parentCheck{}, err
			}
			r.ours[p] = true
		case err != nil:
			return parentCheck{}, err
		case info.Mode().Type() == fs.ModeSymlink:
			return parentCheck{parentSymlink, p}, nil
		case !info.IsDir():
			return parentCheck{parentNotDir, p}, nil
		}
		r.dirs[p] = true
	}
	return parentCheck{}, nil
}

// removeDir removes the directory name, which this restore made, and
// forgets what it held.
func (r *restorer) removeDir(name string) error {
	if err := os.RemoveAll(r.abs(name)); err != nil {
		return err
	}
	prefix := name + "/"
	for _, m := range []map[string]bool{r.ours, r.dirs} {
		for p := range m {
			if strings.HasPrefix(p, prefix) {
				delete(m, p)
			}
		}
	}
	for p := range r.dirAttrs {
		if strings.HasPrefix(p, prefix) {
			delete(r.dirAttrs, p)
		}
	}
	delete(r.dirs, name)
	delete(r.dirAttrs, name)
	return nil
}

// writeFile writes the regular file e under a temporary name in its
// directory, sets its owner, mode and modification time, and renames it
// into place.
func (r *restorer) writeFile(e entry, data io.Reader) (err error) {
	target := r.abs(e.Path)
	f, err := os.CreateTemp(filepath.Dir(target), tmpPrefix+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := io.Copy(f, data); err != nil {
		return fmt.Errorf("%s: %w", e.Path, err)
	}
	if r.asRoot {
		if err := f.Chown(e.UID, e.GID); err != nil {
			return err
		}
	}
	if err := f.Chmod(fileMode(e.Mode)); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chtimes(tmp, time.Time{}, time.Unix(0, e.Mtime)); err != nil {
		return err
	}
	return os.Rename(tmp, target)
}

// writeSymlink makes the symbolic link e under a temporary name in its
// directory, sets its owner, and renames it into place.
func (r *restorer) writeSymlink(e entry) error {
	target := r.abs(e.Path)
	dir := filepath.Dir(target)
	var tmp string
	for i := 0; ; i++ {
		tmp = filepath.Join(dir, fmt.Sprintf("%s%d", tmpPrefix, rand.Uint64()))
		err := os.Symlink(e.Link, tmp)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) || i == 100 {
			return err
		}
	}
	if r.asRoot {
		if err := os.Lchown(tmp, e.UID, e.GID); err != nil {
			os.Remove(tmp)
			return err
		}
	}
	if err := os.Rename(tmp, target); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// makeDir makes the directory e, replacing existing, what an earlier layer
// put at its path, unless that is a directory; its attributes are set by
// finishDirs.
func (r *restorer) makeDir(e entry, existing fs.FileInfo) error {
	target := r.abs(e.Path)
	if existing != nil && !existing.IsDir() {
		if err := os.Remove(target); err != nil {
			return err
		}
		existing = nil
	}
	if existing == nil {
		if err := os.Mkdir(target, 0o755); err != nil {
			return err
		}
	}
	r.dirs[e.Path] = true
	r.dirAttrs[e.Path] = e
	return nil
}

// finishDirs sets the owner, mode and modification time of the directories
// the layers hold, deepest first, so that setting one changes no other.
func (r *restorer) finishDirs() error {
	paths := make([]string, 0, len(r.dirAttrs))
	for p := range r.dirAttrs {
		paths = append(paths, p)
	}
	depth := func(p string) int { return strings.Count(p, "/") }
	slices.SortFunc(paths, func(a, b string) int {
		if d := depth(b) - depth(a); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	for _, p := range paths {
		e := r.dirAttrs[p]
		target := r.abs(p)
		info, err := os.Lstat(target)
		if err != nil {
			return err
		}
		if !info.IsDir() {
			return fmt.Errorf("%s: no longer a directory", p)
		}
		if r.asRoot {
			if err := os.Lchown(target, e.UID, e.GID); err != nil {
				return err
			}
		}
		if err := os.Chmod(target, fileMode(e.Mode)); err != nil {
			return err
		}
		if err := os.Chtimes(target, time.Time{}, time.Unix(0, e.Mtime)); err != nil {
			return err
		}
	}
	return nil
}
