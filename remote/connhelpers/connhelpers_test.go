package connhelpers_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/larder-build/larder/remote"
	_ "github.com/larder-build/larder/remote/connhelpers"
)

// With the package imported, Dial accepts the helpers' schemes and checks
// their addresses as BuildKit does.
func TestHelpersAreRegistered(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		addr string
		want string
	}{
		{"docker-container://", "lacks container name"},
		{"podman-container://", "lacks container name"},
		{"nerdctl-container://", "lacks container name"},
		{"kube-pod://", "lacks pod name"},
		{"ssh://me:secret@builder.example", "plain-text password"},
		{"docker-container://", "such as docker-container://buildkitd"},
		{"ssh://me:secret@builder.example", `"ssh://me:xxxxx@builder.example"`},
		{"ssh://me:secret@builder.example", "your keys or agent"},
	} {
		_, err := remote.Dial(ctx, tc.addr)
		var ae *remote.AddressError
		if !errors.As(err, &ae) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Dial(%q) = %v, want an *AddressError saying %q", tc.addr, err, tc.want)
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("Dial(%q) = %v, which shows the password", tc.addr, err)
		}
	}
	// A well-formed address is no longer refused: the helper runs its
	// command, which this machine may not have, and the builder does not
	// answer.
	_, err := remote.Dial(ctx, "docker-container://larder-no-such-container", remote.WithWait(time.Second))
	var ae *remote.AddressError
	var ue *remote.UnreachableError
	if errors.As(err, &ae) || !errors.As(err, &ue) {
		t.Errorf("Dial(docker-container://…) = %v, want an *UnreachableError", err)
	}
	// The docker-container helper ignores a password; it never shows.
	_, err = remote.Dial(ctx, "docker-container://me:secret@larder-no-such-container", remote.WithWait(time.Second))
	if !errors.As(err, &ue) || ue.Address != "docker-container://me:xxxxx@larder-no-such-container" || strings.Contains(err.Error(), "secret") {
		t.Errorf("Dial(docker-container://me:secret@…) = %v, want an *UnreachableError without the password", err)
	}
}
