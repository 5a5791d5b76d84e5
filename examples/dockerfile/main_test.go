package main

import (
	"bytes"
	"context"
	"slices"
	"testing"

	"github.com/larder-build/larder/internal/testenv"
)

func TestMain(m *testing.M) { testenv.MainWithExports(m, false) }

// End to end on real apt, through the Dockerfile: the second job's fresh
// builder downloads wget's packages and none of curl's.
func TestExample(t *testing.T) {
	testenv.NeedVars(t, testenv.EnvRegistry, testenv.EnvDebian)
	var out bytes.Buffer
	got, err := run(context.Background(), &out)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(got[0], "curl") || !slices.Contains(got[1], "wget") {
		t.Fatalf("downloads %q", got)
	}
	for _, p := range got[0] {
		if slices.Contains(got[1], p) {
			t.Errorf("the second job downloaded %s again", p)
		}
	}
}
