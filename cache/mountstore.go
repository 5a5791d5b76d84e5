package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// MountStore is where the contents of cache mounts are kept between
// builders: BuildKit keeps a cache mount only on the daemon that made it,
// and no cache backend carries it, so a fresh builder (a CI job's) starts
// every apt, go or npm cache empty. build.PersistCacheMounts restores each
// cache mount of a graph from a MountStore before the build and saves it
// after. A MountStore is an immutable value; its mistakes are reported by
// Validate.
type MountStore struct {
	kind string // "registry" or "dir"
	loc  string
	err  error
}

// RegistryStore keeps each cache mount as an image in the repository repo,
// such as "registry.example.com/team/app-caches", tagged by the cache's
// namespace, id and platform (see [MountStore.Key]). Credentials come from
// the Docker configuration, as for pushes.
func RegistryStore(repo string) MountStore {
	s := MountStore{kind: "registry", loc: repo}
	if repo == "" {
		s.err = &Error{Backend: "mount store", Option: "RegistryStore", Reason: "empty repository (want host/repo, such as registry.example.com/team/app-caches)"}
	} else if _, err := name.NewRepository(repo); err != nil {
		s.err = &Error{Backend: "mount store", Option: "RegistryStore", Value: repo, Reason: "not a repository (want host/repo without tag or digest)", Err: err}
	}
	return s
}

// DirStore keeps each cache mount as a directory under dir on the client,
// named by the cache's namespace, id and platform (see [MountStore.Key]).
func DirStore(dir string) MountStore {
	s := MountStore{kind: "dir", loc: dir}
	if dir == "" {
		s.err = &Error{Backend: "mount store", Option: "DirStore", Reason: "empty directory"}
	}
	return s
}

// Validate reports what is wrong with s, or nil.
func (s MountStore) Validate() error {
	if s.kind == "" {
		return &Error{Backend: "mount store", Reason: "zero MountStore (use RegistryStore or DirStore)"}
	}
	return s.err
}

// IsRegistry reports whether s keeps caches in a registry; otherwise it
// keeps them in a directory.
func (s MountStore) IsRegistry() bool { return s.kind == "registry" }

// Location returns the repository or the directory s keeps caches in.
func (s MountStore) Location() string { return s.loc }

// String describes s, as "registry 127.0.0.1:5000/caches".
func (s MountStore) String() string { return s.kind + " " + s.loc }

var tagUnsafe = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// Key names the artifact of one cache mount: its namespace (a project
// name), its cache id and the platform it was filled on. It is a valid
// image tag: the readable part of the id, trimmed, then a hash of all
// three, so that different caches never share a key.
func (s MountStore) Key(namespace, id, platform string) string {
	sum := sha256.Sum256([]byte(namespace + "\x00" + id + "\x00" + platform))
	readable := strings.Trim(tagUnsafe.ReplaceAllString(namespace+"-"+id, "-"), "-.")
	if len(readable) > 80 {
		readable = readable[:80]
	}
	plat := tagUnsafe.ReplaceAllString(platform, "-")
	return fmt.Sprintf("%s-%s-%s", readable, plat, hex.EncodeToString(sum[:])[:12])
}

// Ref returns the image reference of the artifact with key, for a registry
// store.
func (s MountStore) Ref(key string) string { return s.loc + ":" + key }

// Dir returns the directory of the artifact with key, for a directory
// store.
func (s MountStore) Dir(key string) string { return filepath.Join(s.loc, key) }
