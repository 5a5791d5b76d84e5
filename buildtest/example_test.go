package buildtest_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/buildkit/client/llb"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/buildtest"
	"github.com/larder-build/larder/mounts"
	"github.com/larder-build/larder/remote"
)

// The examples need a builder, so they only compile: none has output to
// check. Each stands for the body of a test, or of TestMain.

func ExampleBuild() {
	t := new(testing.T) // the test's *testing.T

	// The build fails the test with the failed step's command, exit code
	// and output.
	img := buildtest.Build(t, build.Image("golang:1.26").
		Dir("/src").
		Run("go version > /version"))
	if rep := img.Result().Report; rep.RanSteps() > 0 {
		t.Logf("built:\n%s", rep)
	}
}

func ExampleImage_Run() {
	t := new(testing.T) // the test's *testing.T

	img := buildtest.Build(t, build.Image("alpine:3.22").
		Run("apk add --no-cache jq"))
	r := img.Run(t, "jq", "-n", `{"a": 1} | .a`)
	if r.ExitCode != 0 || r.Stdout != "1\n" {
		t.Fatalf("jq: %+v", r)
	}
}

func ExampleImage_RunWith() {
	t := new(testing.T) // the test's *testing.T

	// A cache mount that earlier tests filled, seen from a command.
	pipCache := mounts.Cache("/root/.cache/pip", mounts.ID("pip"))
	img := buildtest.Build(t, build.Image("python:3.13-slim").
		Run("pip install requests", pipCache))
	r := img.RunWith(t, []string{"ls", "/root/.cache/pip"}, pipCache, llb.AddEnv("LC_ALL", "C"))
	if r.Stdout == "" {
		t.Error("pip left nothing in its cache")
	}
}

func ExampleImage_WithShell() {
	t := new(testing.T) // the test's *testing.T

	// An image holding one static program has no /bin/sh: its commands
	// start with busybox's shell.
	app := build.Image("golang:1.26").
		Dir("/src").
		Copy(build.Local("src"), ".", ".").
		Env("CGO_ENABLED", "0").
		Run("go build -o /app .")
	img := buildtest.Build(t, build.Scratch().Copy(app, "/app", "/app"), build.WithLocal("src", "."))
	r := img.WithShell(build.Image("busybox:1.37"), "/bin/sh").Run(t, "/app", "-h")
	if r.ExitCode != 0 {
		t.Errorf("/app -h: %+v", r)
	}
}

func ExampleReadFile() {
	t := new(testing.T) // the test's *testing.T

	s := build.Image("debian:bookworm").Run("echo 'Acquire::Retries \"3\";' > /etc/apt/apt.conf.d/80-retries")
	conf := buildtest.ReadFile(t, s, "/etc/apt/apt.conf.d/80-retries")
	if !strings.Contains(string(conf), "Retries") {
		t.Errorf("apt configuration = %q", conf)
	}
}

func ExampleExport() {
	t := new(testing.T) // the test's *testing.T

	s := build.Image("golang:1.26").
		Dir("/src").
		Copy(build.Local("src"), ".", ".").
		Run("go build -o /out/app .")
	dir := buildtest.Export(t, s, "/out", build.WithLocal("src", "."))
	if _, err := os.Stat(filepath.Join(dir, "app")); err != nil {
		t.Fatal(err)
	}
}

func ExampleMain() {
	var m *testing.M // TestMain's argument

	// The builder is a local buildkitd, which Main stops after the tests.
	// It pulls from a registry on the test's host over plain HTTP, and
	// keeps its cache in a directory of this package's that outlives the
	// run.
	buildtest.Configure(
		remote.InsecureRegistry("localhost:5000"),
		remote.StateDir(filepath.Join(os.TempDir(), "myproject-buildkit", "api")),
	)
	buildtest.Main(m)
}

func ExampleUseBuilder() {
	var m *testing.M // TestMain's argument

	// The tests use a builder the program dials, and close it after.
	b, err := remote.Dial(context.Background(), "tcp://buildkitd.internal:1234")
	if err != nil {
		os.Exit(1)
	}
	buildtest.UseBuilder(b)
	buildtest.Main(m)
	b.Close()
}
