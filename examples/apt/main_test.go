package main

import (
	"bytes"
	"context"
	"slices"
	"testing"

	"github.com/larder-build/larder/internal/testenv"
)

func TestMain(m *testing.M) { testenv.MainWithExports(m, false) }

// The demo end to end on real apt: the usual way downloads gcc's packages
// again on the rebuild; with the preset, only what curl adds.
func TestExample(t *testing.T) {
	testenv.NeedVars(t, testenv.EnvBuilder, testenv.EnvDebian, testenv.EnvRegistry)
	var out bytes.Buffer
	rebuilds, err := run(context.Background(), &out)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	usual, preset := rebuilds[0], rebuilds[1]
	if usual.Cached || preset.Cached {
		t.Fatalf("a rebuild came from cache: %+v", rebuilds)
	}
	for _, gccPkg := range []string{"gcc-12", "cpp-12", "binutils"} {
		if !slices.Contains(usual.Packages, gccPkg) {
			t.Errorf("the usual rebuild did not download %s again: %v", gccPkg, usual.Packages)
		}
		if slices.Contains(preset.Packages, gccPkg) {
			t.Errorf("the rebuild with the preset downloaded %s again: %v", gccPkg, preset.Packages)
		}
	}
	if !slices.Contains(preset.Packages, "curl") || len(preset.Packages) >= len(usual.Packages) {
		t.Errorf("with the preset the rebuild should download curl and less than the usual way: %v vs %v", preset.Packages, usual.Packages)
	}
}
