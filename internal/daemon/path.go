package daemon

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// CacheDir returns Larder's cache directory, where scripts/setup installs
// buildkitd and the tools the tests use, and where the integration tests
// keep the base images they make: $LARDER_CACHE when it is set, else
// "larder" in the user's cache directory (os.UserCacheDir, such as
// ~/.cache/larder on Linux). It fails only when $LARDER_CACHE is unset and
// the user has no cache directory. It does not create the directory.
func CacheDir() (string, error) {
	if d := os.Getenv("LARDER_CACHE"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("$LARDER_CACHE is unset and the user has no cache directory: %w", err)
	}
	return filepath.Join(d, "larder"), nil
}

// LookPath returns the path of the executable name, such as "buildkitd":
// the one exec.LookPath finds in PATH, else bin/name in [CacheDir], where
// scripts/setup installs it, when a file is there (whether it runs is for
// the caller to find out). A name that contains a path separator is only
// looked up as exec.LookPath does. When neither place has it, the error is
// exec.LookPath's, which wraps exec.ErrNotFound, with the other place it
// looked in.
func LookPath(name string) (string, error) {
	p, lerr := exec.LookPath(name)
	if lerr == nil || strings.ContainsRune(name, filepath.Separator) {
		return p, lerr
	}
	dir, err := CacheDir()
	if err != nil {
		return "", fmt.Errorf("%w, and there is no cache directory to look in: %w", lerr, err)
	}
	p = filepath.Join(dir, "bin", name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%w, nor at %s", lerr, p)
	}
	return p, nil
}
