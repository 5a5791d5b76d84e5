package cache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// MountStore is where the contents of cache mounts are kept between
// builders. BuildKit keeps a cache mount only on the daemon that made it,
// and no cache backend carries it, so a fresh builder (a CI job's) starts
// every apt, go or npm cache empty; build.PersistCacheMounts restores the
// cache mounts a build needs from a MountStore and saves what they gained.
// [RegistryStore], [DirStore] and [S3Store] make one; other
// implementations follow the contract below and must be safe for
// concurrent use.
//
// A store holds, under each key (one cache mount of one project on one
// platform, see [MountKey]), blobs addressed by their sha256 digest and
// heads: named manifests that list blobs. Larder writes every blob before
// the head that names it, never changes a blob or a head once written,
// and removes a head only after committing a newer one that replaces it.
// A store need not check what it returns: Larder checks every head's form
// and every blob's digest and size before it uses them. Keys match
// [A-Za-z0-9._-]{1,100} and head names [0-9]{19}-[0-9a-f]{8}; a store
// may rely on that, and must reject others.
type MountStore interface {
	// String describes the store in reports and errors, such as
	// "registry 127.0.0.1:5000/team/caches", without credentials.
	String() string
	// Validate reports what is wrong with the store's configuration, or
	// nil, without contacting it.
	Validate() error
	// WithKeychain returns the store as a solve uses it, with registry
	// credentials from k (build.WithKeychain). A store that uses no
	// registry returns itself.
	WithKeychain(k authn.Keychain) MountStore
	// Heads lists the names of the heads kept under key, in no order:
	// none, and no error, when the store holds nothing under key.
	Heads(ctx context.Context, key string) ([]string, error)
	// ReadHead returns the manifest of the head name under key, or an
	// error that matches ErrNotFound when it is not there.
	ReadHead(ctx context.Context, key, name string) ([]byte, error)
	// ReadBlob returns the content of the blob d under key, or an error
	// that matches ErrNotFound when it is not there.
	ReadBlob(ctx context.Context, key string, d ocispecs.Descriptor) (io.ReadCloser, error)
	// WriteBlob stores the blob d under key, reading its content from r,
	// which yields d.Size bytes with d.Digest (or fails), unless the store
	// holds the blob already. A blob must never be readable under its
	// digest before all of it is written, and must not be kept when r
	// fails.
	WriteBlob(ctx context.Context, key string, d ocispecs.Descriptor, r io.Reader) error
	// CommitHead stores manifest as the head name under key, readable all
	// at once or not at all.
	CommitHead(ctx context.Context, key, name string, manifest []byte) error
	// DeleteHead removes the head name under key. Removing a head that is
	// not there is not an error. A store that cannot remove heads returns
	// an error that matches errors.ErrUnsupported; Larder then leaves them,
	// and readers skip the heads a newer head replaces.
	DeleteHead(ctx context.Context, key, name string) error
}

// ErrNotFound is what a [MountStore] returns, wrapped, for a head or blob
// it does not hold.
var ErrNotFound = errors.New("not found in the store")

var (
	keyPattern      = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)
	headNamePattern = regexp.MustCompile(`^[0-9]{19}-[0-9a-f]{8}$`)
	tagUnsafe       = regexp.MustCompile(`[^A-Za-z0-9_.-]+|\.\.+`)
)

// ValidKey reports whether key has the form [MountKey] gives keys, which a
// [MountStore] may rely on.
func ValidKey(key string) bool {
	return keyPattern.MatchString(key) && !strings.HasPrefix(key, ".") && !strings.Contains(key, "..")
}

// ValidHeadName reports whether name has the form Larder gives heads,
// which a [MountStore] may rely on.
func ValidHeadName(name string) bool { return headNamePattern.MatchString(name) }

// checkKey returns an error unless key has the form a store relies on.
func checkKey(key string) error {
	if !ValidKey(key) {
		return fmt.Errorf("cache: mount store key %q is not one MountKey makes", key)
	}
	return nil
}

// checkHead returns an error unless key and name have the forms a store
// relies on.
func checkHead(key, name string) error {
	if !ValidHeadName(name) {
		return fmt.Errorf("cache: head name %q is not one Larder makes", name)
	}
	return checkKey(key)
}

// MountKey names the artifact of one cache mount in a [MountStore]: its
// namespace (a project name), its cache id and the platform it was filled
// on. It is a valid image tag and file name of at most 100 characters: the
// readable part of the namespace and id, trimmed, then the platform, then a
// hash of all three, so that different caches never share a key.
func MountKey(namespace, id, platform string) string {
	sum := sha256.Sum256([]byte(namespace + "\x00" + id + "\x00" + platform))
	readable := strings.Trim(tagUnsafe.ReplaceAllString(namespace+"-"+id, "-"), "-.")
	if len(readable) > 60 {
		readable = strings.TrimRight(readable[:60], "-.")
	}
	if readable == "" {
		readable = "cache"
	}
	plat := strings.Trim(tagUnsafe.ReplaceAllString(platform, "-"), "-.")
	if len(plat) > 24 {
		plat = strings.TrimRight(plat[:24], "-.")
	}
	if plat == "" {
		plat = "any"
	}
	return fmt.Sprintf("%s-%s-%s", readable, plat, hex.EncodeToString(sum[:])[:12])
}

// maxManifest bounds the size of a head's manifest that Larder reads.
const maxManifest = 1 << 20

// readManifest reads a manifest from r, refusing one larger than
// maxManifest.
func readManifest(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxManifest+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxManifest {
		return nil, fmt.Errorf("cache: a head's manifest is larger than %d bytes", maxManifest)
	}
	return b, nil
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
