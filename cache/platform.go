package cache

import (
	"path/filepath"
	"strings"
)

// ForPlatform returns a copy of b whose cache is kept apart for platform
// (such as "linux/arm64"), so that the platforms of a multi-platform build
// do not overwrite each other's cache (the last one written would win):
//
//   - Registry: the tag gets the suffix "-linux-arm64" (a ref without a tag
//     becomes "latest-linux-arm64"); a digest ref is kept as it is.
//   - Local: the directory gets a subdirectory "linux-arm64".
//   - GHA: the scope gets the suffix "-linux-arm64" ("buildkit" when unset).
//   - S3: each manifest name gets the suffix ("buildkit" when unset).
//   - Inline and unknown backends are returned as they are.
//
// build.Solve applies it to each CacheTo and CacheFrom backend when it
// builds more than one platform.
func ForPlatform(b Backend, platform string) Backend {
	suffix := strings.NewReplacer("/", "-", ":", "-").Replace(platform)
	switch v := b.(type) {
	case *registryBackend:
		if v.digestRef {
			return v
		}
		c := *v
		c.ref = tagSuffix(v.ref, suffix)
		return &c
	case *localBackend:
		c := *v
		c.dir = filepath.Join(v.dir, suffix)
		return &c
	case *ghaBackend:
		c := *v
		scope := v.scope
		if scope == "" {
			scope = "buildkit"
		}
		c.scope = scope + "-" + suffix
		return &c
	case *s3Backend:
		c := *v
		names := v.names
		if len(names) == 0 {
			names = []string{"buildkit"}
		}
		c.names = make([]string, len(names))
		for i, n := range names {
			c.names[i] = n + "-" + suffix
		}
		return &c
	}
	return b
}

// tagSuffix appends suffix to ref's tag, or adds the tag "latest-suffix".
func tagSuffix(ref, suffix string) string {
	slash := strings.LastIndex(ref, "/")
	if colon := strings.LastIndex(ref, ":"); colon > slash {
		return ref + "-" + suffix
	}
	return ref + ":latest-" + suffix
}
