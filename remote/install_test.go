package remote_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/larder-build/larder/internal/daemon"
	"github.com/larder-build/larder/internal/testenv"
	"github.com/larder-build/larder/remote"
)

// Install leaves binaries of the pinned version alone: scripts/setup builds
// them with it (through cmd/larder-install) on every new machine, so CI
// proves the build itself.
func TestInstallKeepsThePinnedVersion(t *testing.T) {
	p, err := daemon.LookPath("buildkitd")
	if err != nil {
		testenv.Unavailable(t, err)
	}
	start := time.Now()
	dir, err := remote.Install(context.Background(), filepath.Dir(p), nil)
	if err != nil || dir != filepath.Dir(p) {
		t.Fatalf("Install = %q, %v", dir, err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Install took %v with the binaries in place: it built them again", took)
	}
}
