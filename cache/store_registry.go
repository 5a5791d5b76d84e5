package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// registryStore is the MountStore RegistryStore returns.
type registryStore struct {
	repo     string
	ref      name.Repository
	keychain authn.Keychain // nil: authn.DefaultKeychain
	err      error
}

var _ MountStore = (*registryStore)(nil)

// RegistryStore keeps persisted cache mounts in the repository repo of an
// OCI registry, such as "registry.example.com/team/app-caches": blobs as
// the repository's blobs, and each head as an OCI artifact manifest tagged
// <key>.h<name>. Credentials come from the solve's keychain
// (build.WithKeychain; by default the Docker configuration). Registries
// that do not let a client delete tags keep old heads; readers skip the
// heads a newer one replaces, and the registry's own garbage collection
// removes what nothing names. Tags made by an older version of Larder
// (<key> alone) are ignored.
func RegistryStore(repo string) MountStore {
	s := &registryStore{repo: repo}
	if repo == "" {
		s.err = &Error{Backend: "mount store", Option: "RegistryStore", Reason: "empty repository (want host/repo, such as registry.example.com/team/app-caches)"}
		return s
	}
	ref, err := name.NewRepository(repo)
	if err != nil {
		s.err = &Error{Backend: "mount store", Option: "RegistryStore", Value: repo, Reason: "not a repository (want host/repo without tag or digest)", Err: err}
		return s
	}
	s.ref = ref
	return s
}

func (s *registryStore) String() string { return "registry " + s.repo }

func (s *registryStore) Validate() error { return s.err }

func (s *registryStore) WithKeychain(k authn.Keychain) MountStore {
	c := *s
	c.keychain = k
	return &c
}

func (s *registryStore) options(ctx context.Context) []ggcrremote.Option {
	k := s.keychain
	if k == nil {
		k = authn.DefaultKeychain
	}
	return []ggcrremote.Option{ggcrremote.WithContext(ctx), ggcrremote.WithAuthFromKeychain(k), ggcrremote.WithUserAgent("larder")}
}

// tag is the tag of the head name under key.
func (s *registryStore) tag(key, name string) name.Tag {
	return s.ref.Tag(key + ".h" + name)
}

func (s *registryStore) Heads(ctx context.Context, key string) ([]string, error) {
	if err := s.usable(key); err != nil {
		return nil, err
	}
	tags, err := ggcrremote.List(s.ref, s.options(ctx)...)
	if isStatus(err, http.StatusNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, t := range tags {
		if n, ok := strings.CutPrefix(t, key+".h"); ok && ValidHeadName(n) {
			names = append(names, n)
		}
	}
	return names, nil
}

func (s *registryStore) ReadHead(ctx context.Context, key, name string) ([]byte, error) {
	if err := s.usableHead(key, name); err != nil {
		return nil, err
	}
	desc, err := ggcrremote.Get(s.tag(key, name), s.options(ctx)...)
	if isStatus(err, http.StatusNotFound) {
		return nil, fmt.Errorf("head %s of %s: %w", name, key, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	if len(desc.Manifest) > maxManifest {
		return nil, fmt.Errorf("head %s of %s: manifest of %d bytes is larger than %d", name, key, len(desc.Manifest), maxManifest)
	}
	return desc.Manifest, nil
}

func (s *registryStore) ReadBlob(ctx context.Context, key string, d ocispecs.Descriptor) (io.ReadCloser, error) {
	if err := s.usable(key); err != nil {
		return nil, err
	}
	if err := d.Digest.Validate(); err != nil {
		return nil, err
	}
	l, err := ggcrremote.Layer(s.ref.Digest(d.Digest.String()), s.options(ctx)...)
	if err != nil {
		return nil, err
	}
	rc, err := l.Compressed()
	if isStatus(err, http.StatusNotFound) {
		return nil, fmt.Errorf("blob %s of %s: %w", d.Digest, key, ErrNotFound)
	}
	return rc, err
}

func (s *registryStore) WriteBlob(ctx context.Context, key string, d ocispecs.Descriptor, r io.Reader) error {
	if err := s.usable(key); err != nil {
		return err
	}
	h, err := v1.NewHash(d.Digest.String())
	if err != nil {
		return err
	}
	return ggcrremote.WriteLayer(s.ref, &blobLayer{hash: h, size: d.Size, mediaType: types.MediaType(d.MediaType), r: r}, s.options(ctx)...)
}

func (s *registryStore) CommitHead(ctx context.Context, key, name string, manifest []byte) error {
	if err := s.usableHead(key, name); err != nil {
		return err
	}
	return ggcrremote.Put(s.tag(key, name), rawManifest(manifest), s.options(ctx)...)
}

func (s *registryStore) DeleteHead(ctx context.Context, key, name string) error {
	if err := s.usableHead(key, name); err != nil {
		return err
	}
	err := ggcrremote.Delete(s.tag(key, name), s.options(ctx)...)
	switch {
	case isStatus(err, http.StatusNotFound):
		return nil
	case isStatus(err, http.StatusMethodNotAllowed), isStatus(err, http.StatusBadRequest) && isCode(err, transport.UnsupportedErrorCode):
		return fmt.Errorf("%s does not let clients delete tags: %w", s.repo, errors.ErrUnsupported)
	}
	return err
}

// usable returns an error unless the store and key are usable.
func (s *registryStore) usable(key string) error {
	if s.err != nil {
		return s.err
	}
	return checkKey(key)
}

// usableHead returns an error unless the store, key and head name are
// usable.
func (s *registryStore) usableHead(key, name string) error {
	if s.err != nil {
		return s.err
	}
	return checkHead(key, name)
}

// isStatus reports whether err is a registry's answer with HTTP status
// code.
func isStatus(err error, code int) bool {
	var te *transport.Error
	return errors.As(err, &te) && te.StatusCode == code
}

func isCode(err error, code transport.ErrorCode) bool {
	var te *transport.Error
	if !errors.As(err, &te) {
		return false
	}
	for _, d := range te.Errors {
		if d.Code == code {
			return true
		}
	}
	return false
}

// rawManifest is a manifest as a ggcr Taggable.
type rawManifest []byte

func (m rawManifest) RawManifest() ([]byte, error) { return m, nil }

func (m rawManifest) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

// blobLayer is a blob whose digest and size are known, as a ggcr layer
// that can be read once.
type blobLayer struct {
	hash      v1.Hash
	size      int64
	mediaType types.MediaType
	mu        sync.Mutex
	r         io.Reader // nil once read
}

func (l *blobLayer) Digest() (v1.Hash, error) { return l.hash, nil }

func (l *blobLayer) DiffID() (v1.Hash, error) { return l.hash, nil }

func (l *blobLayer) Size() (int64, error) { return l.size, nil }

func (l *blobLayer) MediaType() (types.MediaType, error) { return l.mediaType, nil }

func (l *blobLayer) Compressed() (io.ReadCloser, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.r == nil {
		return nil, errors.New("cache: a blob's content can be read once")
	}
	r := l.r
	l.r = nil
	return io.NopCloser(r), nil
}

func (l *blobLayer) Uncompressed() (io.ReadCloser, error) { return l.Compressed() }
