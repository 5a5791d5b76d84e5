package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/larder-build/larder/internal/testenv"
)

func TestMain(m *testing.M) { testenv.MainWithExports(m, false) }

func TestExample(t *testing.T) {
	testenv.NeedVars(t, testenv.EnvBuilder, testenv.EnvBusybox)
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"sources: 2 files", "lines of words.txt: 5", "longest word: immutable", "not in the image"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
