package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/authn"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// dirStore is the MountStore DirStore returns.
type dirStore struct {
	dir string
	err error
}

var _ MountStore = (*dirStore)(nil)

// DirStore keeps persisted cache mounts in the directory dir on the client,
// which may be shared by several jobs (a CI cache directory, a network
// file system). Under dir, each key has a directory of its own holding
// blobs/sha256/<hex> and heads/<name>. Files are written under a temporary
// name and renamed into place, so a reader never sees half of one; dir must
// be a local or network file system on which rename is atomic. A directory
// made by an older version of Larder (cache.tar, sum) is ignored.
func DirStore(dir string) MountStore {
	s := &dirStore{dir: dir}
	if dir == "" {
		s.err = &Error{Backend: "mount store", Option: "DirStore", Reason: "empty directory (want a directory on the client, such as /var/cache/larder)"}
	}
	return s
}

func (s *dirStore) String() string { return "dir " + s.dir }

func (s *dirStore) Validate() error { return s.err }

func (s *dirStore) WithKeychain(authn.Keychain) MountStore { return s }

func (s *dirStore) heads(key string) string { return filepath.Join(s.dir, key, "heads") }

func (s *dirStore) blob(key string, d ocispecs.Descriptor) (string, error) {
	if err := d.Digest.Validate(); err != nil || d.Digest.Algorithm() != "sha256" {
		return "", fmt.Errorf("cache: blob digest %q is not a sha256 digest", d.Digest)
	}
	return filepath.Join(s.dir, key, "blobs", "sha256", d.Digest.Encoded()), nil
}

func (s *dirStore) Heads(ctx context.Context, key string) ([]string, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(s.heads(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if e.Type().IsRegular() && ValidHeadName(e.Name()) {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

func (s *dirStore) ReadHead(ctx context.Context, key, name string) ([]byte, error) {
	if err := checkHead(key, name); err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(s.heads(key), name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("head %s of %s: %w", name, key, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readManifest(f)
}

func (s *dirStore) ReadBlob(ctx context.Context, key string, d ocispecs.Descriptor) (io.ReadCloser, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	p, err := s.blob(key, d)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s of %s: %w", d.Digest, key, ErrNotFound)
	}
	return f, err
}

func (s *dirStore) WriteBlob(ctx context.Context, key string, d ocispecs.Descriptor, r io.Reader) error {
	if err := checkKey(key); err != nil {
		return err
	}
	p, err := s.blob(key, d)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(p); err == nil && fi.Size() == d.Size {
		return nil
	}
	return writeAtomic(p, r)
}

func (s *dirStore) CommitHead(ctx context.Context, key, name string, manifest []byte) error {
	if err := checkHead(key, name); err != nil {
		return err
	}
	return writeAtomic(filepath.Join(s.heads(key), name), bytesReader(manifest))
}

func (s *dirStore) DeleteHead(ctx context.Context, key, name string) error {
	if err := checkHead(key, name); err != nil {
		return err
	}
	err := os.Remove(filepath.Join(s.heads(key), name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// writeAtomic writes what r yields to path, through a temporary file in
// the same directory renamed into place only when all of it is written.
func writeAtomic(path string, r io.Reader) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	var b [8]byte
	rand.Read(b[:])
	tmp := filepath.Join(filepath.Dir(path), ".tmp-"+hex.EncodeToString(b[:]))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
