package build

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
)

// tarFiles are the tarballs a solve writes on the client. Each is written
// under a temporary name in its directory and renamed to its path only
// when the solve succeeds, so that a failed or cancelled solve leaves
// neither a truncated tarball nor a broken earlier one at the path.
type tarFiles struct {
	mu  sync.Mutex
	tmp map[string]string // temporary name: path
}

// create creates a temporary file for the tarball at path.
func (t *tarFiles) create(path string) (*os.File, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return nil, err
	}
	// As os.Create makes it with the usual umask: CreateTemp's is 0600.
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tmp == nil {
		t.tmp = map[string]string{}
	}
	t.tmp[f.Name()] = path
	return f, nil
}

// finish renames the tarballs to their paths when ok, and removes them
// otherwise.
func (t *tarFiles) finish(ok bool) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	var errs []error
	for tmp, path := range t.tmp {
		if ok {
			errs = append(errs, os.Rename(tmp, path))
		} else {
			os.Remove(tmp)
		}
	}
	t.tmp = nil
	return errors.Join(errs...)
}
