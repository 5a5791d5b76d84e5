package mounts_test

import (
	"strings"
	"testing"

	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/larder-build/larder/mounts"
)

// Every mount is a StepOption that describes itself and is the same for
// every step.
func TestMountsAreStepOptions(t *testing.T) {
	step := mounts.Step{Args: []string{"/bin/sh", "-c", "make"}, Platform: ocispecs.Platform{OS: "linux", Architecture: "arm64"}}
	for _, m := range []mounts.Mount{
		mounts.Cache("/c"), mounts.Bind("/b", buildContext), mounts.Tmpfs("/t"), mounts.Secret("s"), mounts.SSH(),
	} {
		so, ok := m.(mounts.StepOption)
		if !ok {
			t.Fatalf("%s is not a StepOption", m)
		}
		if got := so.Mounts(); len(got) != 1 || got[0] != m {
			t.Errorf("%s: Mounts() = %v, want the mount itself", m, got)
		}
		if so.ForStep(step) != so {
			t.Errorf("%s: ForStep changed the mount", m)
		}
		if w := so.Warnings(step.Args); w != nil {
			t.Errorf("%s: Warnings = %q", m, w)
		}
	}
}

func TestRegenerable(t *testing.T) {
	m := mounts.Cache("/var/cache/apt", mounts.Regenerable("pkgcache.bin"), mounts.Regenerable("srcpkgcache.bin")).(*mounts.CacheMount)
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := m.Regenerable(); strings.Join(got, ",") != "pkgcache.bin,srcpkgcache.bin" {
		t.Errorf("Regenerable() = %q", got)
	}
	if s := m.String(); strings.Contains(s, "pkgcache") {
		t.Errorf("String() writes the regenerable files: %s", s)
	}
	got := m.Regenerable()
	got[0] = "changed"
	if m.Regenerable()[0] != "pkgcache.bin" {
		t.Error("changing the returned slice changed the mount")
	}
	for _, bad := range []string{"", ".", "/abs", "../up", "a/../b", "a//b", "x\x00"} {
		err := mounts.Cache("/c", mounts.Regenerable(bad)).Validate()
		if err == nil || !strings.Contains(err.Error(), "regenerable file") {
			t.Errorf("Regenerable(%q): Validate() = %v, want it rejected", bad, err)
		}
	}
}
