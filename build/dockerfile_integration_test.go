package build_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/internal/testenv"
	"github.com/larder-build/larder/remote"
)

func TestDockerfileBuilds(t *testing.T) {
	env, bb := setup(t)
	n := nonce()
	df := fmt.Sprintf("FROM %s AS base\nARG WHO=nobody\nRUN echo hello $WHO > /hi # %s\nFROM base\nENV A=1\nWORKDIR /w\nEXPOSE 8080/tcp\nHEALTHCHECK --interval=5s CMD cat /hi\nSTOPSIGNAL SIGINT\nCMD [\"cat\", \"/hi\"]\n", bb, n)
	ref := env.Registry + "/test/dockerfile:" + n
	// A Larder step follows the Dockerfile, in its working directory and
	// environment.
	img := build.Dockerfile([]byte(df), build.Scratch(), build.BuildArg("WHO", "larder")).
		Run("echo $A > a.txt").
		Env("B", "2")
	res, err := build.Solve(ctxT(t), env.Builder, img, build.Push(ref))
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + res.Report.String())
	pulled := testenv.Pull(t, ref)
	cf, err := pulled.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if strings.Join(c.Cmd, " ") != "cat /hi" || c.WorkingDir != "/w" || c.StopSignal != "SIGINT" || c.Healthcheck == nil || len(c.ExposedPorts) != 1 {
		t.Errorf("config %+v", c)
	}
	if got := testenv.ImageFiles(t, pulled)["hi"]; got != "hello larder\n" {
		t.Errorf("/hi = %q", got)
	}
	if got := testenv.ImageFiles(t, pulled)["w/a.txt"]; got != "1\n" {
		t.Errorf("/w/a.txt = %q, want the Dockerfile's $A", got)
	}
	if got := strings.Join(c.Env, " "); !strings.Contains(got, "A=1") || !strings.Contains(got, "B=2") || strings.Contains(got, "WHO") {
		t.Errorf("env %q, want A=1 and B=2 and no build argument", got)
	}
	if _, ok := res.Report.Find("[base 2/2] RUN"); !ok {
		t.Errorf("no step named as the frontend names it:\n%s", res.Report)
	}
}

func TestDockerfileErrors(t *testing.T) {
	env, bb := setup(t)
	_, err := build.Solve(ctxT(t), env.Builder, build.Dockerfile([]byte("FROM "+bb+"\nRUN true\nCOPY\n"), build.Scratch()))
	var de *build.DockerfileError
	if !errors.As(err, &de) || de.Line != 3 {
		t.Errorf("syntax error: %v (%+v)", err, de)
	}
	n := nonce()
	_, err = build.Solve(ctxT(t), env.Builder, build.Dockerfile([]byte(fmt.Sprintf("FROM %s\nRUN true\n\nRUN echo boom >&2; exit 4 # %s\n", bb, n)), build.Scratch(), build.DockerfileName("app/Dockerfile")))
	var se *build.StepError
	if !errors.As(err, &se) || se.File != "app/Dockerfile" || se.Line != 4 || se.ExitCode != 4 {
		t.Errorf("failing RUN: %v (%+v)", err, se)
	}
}

// A Dockerfile solved for two platforms on a fleet: each platform is
// converted for itself (TARGETARCH) on the member that runs it natively
// (BUILDARCH), and both are pushed as one index.
func TestDockerfileOnAFleet(t *testing.T) {
	env, bb := setup(t)
	ctx := ctxT(t)
	arm, err := env.Arm64(ctx)
	if err != nil {
		testenv.Unavailable(t, err)
	}
	fleet, err := remote.NewFleet(ctx, remote.FromBuilder(env.Builder), remote.FromBuilder(arm))
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Close()
	n := nonce()
	df := fmt.Sprintf("FROM %s\nARG TARGETARCH BUILDARCH\nRUN echo $TARGETARCH $BUILDARCH $(uname -m) > /arch # %s\n", bb, n)
	ref := env.Registry + "/test/dockerfile-fleet:" + n
	res, err := build.Solve(ctx, fleet, build.Dockerfile([]byte(df), build.Scratch()), build.Platforms("linux/amd64", "linux/arm64"), build.Push(ref))
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range res.Platforms {
		if want := map[string]string{"linux/amd64": "amd64", "linux/arm64": "arm64"}[pr.Platform]; pr.Builder != want {
			t.Errorf("%s built on %s, want %s", pr.Platform, pr.Builder, want)
		}
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := ggcrremote.Index(r)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 2 {
		t.Fatalf("the index holds %d manifests, want 2", len(im.Manifests))
	}
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"amd64": "amd64 amd64 x86_64\n", "arm64": "arm64 arm64 aarch64\n"}[d.Platform.Architecture]
		if got := testenv.ImageFiles(t, img)["arch"]; got != want {
			t.Errorf("%s: /arch = %q, want %q", d.Platform, got, want)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.Architecture != d.Platform.Architecture {
			t.Errorf("%s: config says %s", d.Platform, cf.Architecture)
		}
	}
}
