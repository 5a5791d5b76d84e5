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
	testenv.NeedVars(t, testenv.EnvBuilder, testenv.EnvRegistry, testenv.EnvBusybox)
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "4 steps ran, 0 from cache") || !strings.Contains(out.String(), "fresh builder importing it: 0 steps ran, 4 from cache") {
		t.Errorf("output:\n%s", out.String())
	}
}
