package main

import (
	"bytes"
	"context"
	"slices"
	"testing"

	"github.com/larder-build/larder/internal/testenv"
)

func TestMain(m *testing.M) { testenv.MainWithExports(m, false) }

// The example end to end with the real go command and module proxy: the
// rebuild downloads only the added module.
func TestExample(t *testing.T) {
	testenv.NeedVars(t, testenv.EnvBuilder, testenv.EnvDebian)
	ca, err := testenv.HostCA()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	got, err := run(context.Background(), &out, ca...)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got[0], []string{"github.com/google/uuid"}) || !slices.Equal(got[1], []string{"github.com/pkg/errors"}) {
		t.Errorf("downloads %q, want uuid, then only errors", got)
	}
}
