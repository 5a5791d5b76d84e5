package build_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/internal/testenv"
)

// An image's configuration holds what the Stage's settings say, and its
// history one entry per step and setting, each step's entry on its own
// layer; settings that only change the configuration run no step again.
func TestImageConfigAndHistory(t *testing.T) {
	env, bb := setup(t)
	n := nonce()
	steps := build.Image(bb).
		Run("echo one > /one # "+n).
		Env("MODE", "prod").
		Dir("/app").
		Copy(build.Image(bb).Run("echo two > /two # "+n), "/two", "two").
		User("1000:1000")
	img := steps.
		Expose("8080", "53/udp").
		Volume("/data").
		Healthcheck(build.Health{Test: []string{"CMD", "cat", "/one"}, Interval: 10 * time.Second, Retries: 2}).
		StopSignal("SIGINT").
		Cmd("cat", "/one")
	ref := env.Registry + "/test/image-config:" + n
	if _, err := build.Solve(ctxT(t), env.Builder, img, build.Push(ref)); err != nil {
		t.Fatal(err)
	}
	pulled := testenv.Pull(t, ref)
	if err := validate.Image(pulled); err != nil {
		t.Errorf("validate.Image: %v", err)
	}
	cf, err := pulled.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if _, ok := c.ExposedPorts["8080/tcp"]; !ok || len(c.ExposedPorts) != 2 {
		t.Errorf("ExposedPorts %v", c.ExposedPorts)
	}
	if _, ok := c.Volumes["/data"]; !ok {
		t.Errorf("Volumes %v", c.Volumes)
	}
	if h := c.Healthcheck; h == nil || strings.Join(h.Test, " ") != "CMD cat /one" || h.Interval != 10*time.Second || h.Retries != 2 {
		t.Errorf("Healthcheck %+v", h)
	}
	if c.StopSignal != "SIGINT" || c.User != "1000:1000" || c.WorkingDir != "/app" {
		t.Errorf("config %+v", c)
	}

	var got []string
	layers := 0
	for _, h := range cf.History {
		got = append(got, fmt.Sprintf("%s (empty %v)", h.CreatedBy, h.EmptyLayer))
		if !h.EmptyLayer {
			layers++
		}
	}
	t.Logf("history:\n%s", strings.Join(got, "\n"))
	if ls, _ := pulled.Layers(); layers != len(ls) {
		t.Errorf("%d history entries with a layer, %d layers", layers, len(ls))
	}
	want := []string{
		"RUN /bin/sh -c echo one > /one # " + n + " # buildkit (empty false)",
		"ENV MODE=prod (empty true)",
		"WORKDIR /app (empty true)",
		"COPY /two two # buildkit (empty false)",
		"USER 1000:1000 (empty true)",
		"EXPOSE [8080/tcp 53/udp] (empty true)",
		"VOLUME [/data] (empty true)",
		"STOPSIGNAL SIGINT (empty true)",
		`CMD ["cat" "/one"] (empty true)`,
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("history has no %q:\n%s", w, strings.Join(got, "\n"))
		}
	}
	if i, j := slices.Index(got, want[0]), slices.Index(got, want[len(want)-1]); i < 0 || j < i {
		t.Errorf("history out of order:\n%s", strings.Join(got, "\n"))
	}

	// The same steps with other settings: every step comes from cache.
	res, err := build.Solve(ctxT(t), env.Builder, steps.Expose("+9090", "09091-9092/udp").StopSignal("SIGTERM").Label("a", "b"), build.Push(ref+"-2"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Report.RanSteps() != 0 {
		t.Errorf("changing only the configuration ran %d steps:\n%s", res.Report.RanSteps(), res.Report)
	}
	cf2, err := testenv.Pull(t, ref+"-2").ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cf2.Config.ExposedPorts["9090/tcp"]; !ok || cf2.Config.StopSignal != "SIGTERM" || cf2.Config.Labels["a"] != "b" {
		t.Errorf("second config %+v", cf2.Config)
	}
	// Ports are written as engines parse them: numbers without signs or
	// leading zeros.
	if _, ok := cf2.Config.ExposedPorts["9091-9092/udp"]; !ok || len(cf2.Config.ExposedPorts) != 2 {
		t.Errorf("second config's ports %v", cf2.Config.ExposedPorts)
	}
	if cf2.RootFS.DiffIDs[len(cf2.RootFS.DiffIDs)-1] != cf.RootFS.DiffIDs[len(cf.RootFS.DiffIDs)-1] {
		t.Error("the layers differ")
	}

	// Cmd and Entrypoint with no arguments clear the base image's.
	for _, c := range []struct {
		from, to string
		stage    func(base build.Stage) build.Stage
	}{
		{ref, ref + "-3", func(b build.Stage) build.Stage { return b.Cmd() }},
		{ref, ref + "-4", func(b build.Stage) build.Stage { return b.Entrypoint("/bin/sh", "-c").Cmd("true") }},
		{ref + "-4", ref + "-5", func(b build.Stage) build.Stage { return b.Entrypoint() }},
	} {
		if _, err := build.Solve(ctxT(t), env.Builder, c.stage(build.Image(c.from)), build.Push(c.to)); err != nil {
			t.Fatal(err)
		}
	}
	config := func(ref string) string {
		cf, err := testenv.Pull(t, ref).ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("Entrypoint %q Cmd %q", cf.Config.Entrypoint, cf.Config.Cmd)
	}
	for r, want := range map[string]string{
		ref + "-3": `Entrypoint [] Cmd []`,
		ref + "-4": `Entrypoint ["/bin/sh" "-c"] Cmd ["true"]`,
		ref + "-5": `Entrypoint [] Cmd []`,
	} {
		if got := config(r); got != want {
			t.Errorf("%s: %s, want %s", r, got, want)
		}
	}
}
