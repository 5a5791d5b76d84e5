package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/larder-build/larder/internal/testenv"
)

func TestMain(m *testing.M) { testenv.MainWithExports(m, true) }

func TestExample(t *testing.T) {
	testenv.NeedVars(t, testenv.EnvBuilder, testenv.EnvArm64Builder, testenv.EnvRegistry, testenv.EnvBusybox)
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"linux/amd64 built on amd64-builder", "linux/arm64 built on arm64-builder", "one index of both"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
