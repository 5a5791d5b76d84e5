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
			return errors.New("Namespace: empty (give the project's name, such as \"team-app\", or leave the option out for the solve's Key)")
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
// store, so that a fresh builder starts with the caches earlier builds
// left. The graph is not changed: its definition, and so its layer cache
// keys, are the same with and without persistence.
//
// Only the caches of steps that run are restored: the graph is first
// probed for the steps that will come from cache, and a cache whose every
// step does is neither restored nor saved. A cache whose id is its target
// and whose sharing is shared (mounts.Cache's defaults) can't be probed
// (BuildKit keeps such an id in the step's cache key) and is restored
// whenever the builder reaches its step; give it an id with mounts.ID.
//
// A cache is restored before the graph is solved, with the files of its
// artifact that it does not hold already, and saved after, as a new layer
// of the files that changed (by size, modification time, mode, owner or
// type); nothing is saved when none did. Restoring and saving run Larder's
// own helper program, in a root filesystem of its own on the builder's
// platform, so they need nothing from the graph's images (scratch will do).
// Files a preset marks regenerable (apt's binary caches) are left out.
//
// Several builders may save the same cache at once: each save adds a head
// to the store and none replaces another's, so the next restore merges
// them all. A file deleted from a cache is not deleted from the stored
// artifact until the artifact is compacted: when a save would leave more
// than 8 layers, or layers holding more than twice the cache's size, it
// saves the whole cache as one layer instead, which replaces the heads it
// restored. A restore that fails or was skipped never shrinks what is
// stored: the save that follows replaces nothing.
//
// Each cache is kept per namespace, id and platform, under the key
// cache.MountKey gives. Nothing read from the store is trusted: a head must
// be an artifact of Larder's form, each layer must have the digest and size
// its head gives, and no value read is ever a command or a path outside the
// cache. A head that is not, or a store that can't be read, leaves the
// cache empty (or without that head's files) and the report's CacheMounts
// say why, unless [Strict]; they also give, per cache, what was restored
// and saved, the sizes and the times.
func PersistCacheMounts(store cache.MountStore, opts ...PersistOption) SolveOption {
	return func(o *solveOptions) error {
		if store == nil {
			return errors.New("PersistCacheMounts: nil store (pass one such as cache.RegistryStore(\"registry.example.com/team/app-caches\"))")
		}
		if err := store.Validate(); err != nil {
			return fmt.Errorf("PersistCacheMounts: %w", err)
		}
		p := &persistOptions{store: store}
		for i, opt := range opts {
			if opt == nil {
				return fmt.Errorf("PersistCacheMounts: option %d is nil (leave it out)", i+1)
			}
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
	// Artifact names the store and the key the cache is kept under.
	Artifact string
	// Restored is true when the cache was filled from the artifact.
	Restored bool
	// RestoredBytes is how many bytes of layers were read from the store,
	// compressed.
	RestoredBytes int64
	// RestoredLayers is how many layers were read from the store.
	RestoredLayers int
	// MergedHeads is how many heads the restore merged when more than
	// one: saves of other builds that ran at the same time.
	MergedHeads int
	// RestoreTime covers reading the artifact, fetching its layers and
	// filling the cache from them.
	RestoreTime time.Duration
	// Exported is true when a new layer was saved; false when the cache
	// had not changed since it was restored, no step that mounts it ran,
	// or saving failed.
	Exported bool
	// ExportedBytes is how many bytes were written to the store: the new
	// layer, compressed; 0 when the store held it already.
	ExportedBytes int64
	// SavedFiles and SavedBytes are the entries in the new layer and the
	// size of its files.
	SavedFiles, SavedBytes int64
	// Compacted is true when the new layer holds the whole cache and
	// replaces the artifact's older layers.
	Compacted bool
	// ConcurrentSaves is how many heads other builds saved between this
	// build's restore and its save; the next restore merges them.
	ConcurrentSaves int
	// ExportTime covers packing the cache, which happens whether or not
	// it changed, and writing what changed to the store.
	ExportTime time.Duration
	// Notes say why nothing was restored or saved, or what failed.
	Notes []string
}
