package build

import (
	"errors"
	"fmt"
	"time"

	"github.com/larder-build/larder/cache"
)

// PersistOption configures [PersistCacheMounts].
type PersistOption func(*persistOptions) error

type persistOptions struct {
	store     cache.MountStore
	namespace string
	strict    bool
}

// Namespace names the project whose caches are persisted, so that two
// projects sharing a store never share a cache. The default is the solve's
// [Key], else "default".
func Namespace(ns string) PersistOption {
	return func(o *persistOptions) error {
		if ns == "" {
			return errors.New("Namespace: empty")
		}
		o.namespace = ns
		return nil
	}
}

// Strict makes a cache that can't be restored or saved fail the solve. The
// default builds with an empty cache instead and says why in the report.
func Strict() PersistOption {
	return func(o *persistOptions) error {
		o.strict = true
		return nil
	}
}

// PersistCacheMounts keeps the contents of the graph's cache mounts in
// store, so that a fresh builder starts with the caches the last build
// left. Before the build, each cache mount is filled from its artifact by a
// solve of its own that mounts the same cache (same id, sharing, owner and
// mode); after the build, each is saved, unless its contents did not
// change. The graph itself is not changed: its definition, and so its
// layer cache keys, are the same with and without persistence.
//
// Each cache is kept per namespace, id and platform. Restoring and saving
// run in the root filesystem of the first step that uses the cache, which
// needs /bin/sh, tar, find, sort, xargs, stat and sha256sum (busybox and
// Debian's coreutils have them). A cache counts as changed when its files,
// their contents, modes or owners changed; times alone do not count. The report's CacheMounts say, per
// cache, what was restored and saved, the sizes and the times. A missing,
// corrupt or unreachable artifact leaves the cache empty and the report
// says why, unless [Strict].
func PersistCacheMounts(store cache.MountStore, opts ...PersistOption) SolveOption {
	return func(o *solveOptions) error {
		if err := store.Validate(); err != nil {
			return fmt.Errorf("PersistCacheMounts: %w", err)
		}
		p := &persistOptions{store: store}
		for _, opt := range opts {
			if err := opt(p); err != nil {
				return fmt.Errorf("PersistCacheMounts: %w", err)
			}
		}
		o.persist = p
		return nil
	}
}

// MountReport says what persistence did with one cache mount.
type MountReport struct {
	// ID is the cache id; Target is where the first step using it mounts
	// it.
	ID, Target string
	// Artifact is the reference or directory the cache is kept in.
	Artifact string
	// Restored is true when the cache was filled from the artifact.
	Restored bool
	// RestoredBytes is the size of the cache as a tarball.
	RestoredBytes int64
	// RestoreTime covers finding the artifact and filling the cache from
	// it, which first builds the graph's steps up to the root filesystem
	// of the first step that uses the cache (the build then takes them
	// from cache).
	RestoreTime time.Duration
	// Exported is true when the cache was saved; false when it had not
	// changed since it was restored, or saving failed.
	Exported bool
	// ExportedBytes is the size of the tarball saved.
	ExportedBytes int64
	// ExportTime covers packing the cache, which happens whether or not
	// it changed, and saving it.
	ExportTime time.Duration
	// Notes say why nothing was restored or saved, or what failed.
	Notes []string
}
