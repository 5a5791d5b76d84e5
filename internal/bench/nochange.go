package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/buildkit/client"
	"github.com/tonistiigi/fsutil"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/internal/testenv"
)

// buildctl returns the buildctl binary: the one in PATH, else the one
// scripts/setup built.
func buildctl() string {
	if p, err := exec.LookPath("buildctl"); err == nil {
		return p
	}
	return filepath.Join(testenv.CacheDir(), "bin", "buildctl")
}

// noChange is scenario 4: a graph that is entirely in the builder's cache,
// solved with Larder and, written as a Dockerfile, with buildctl and with
// the Dockerfile frontend from this process, on the same builder.
func (r *runner) noChange(ctx context.Context) error {
	steps := 20
	if r.cfg.Smoke {
		steps = 3
	}
	bb, err := r.env.Busybox(ctx)
	if err != nil {
		return err
	}
	tag := r.tag("nochange")
	stage := build.Image(bb)
	var df strings.Builder
	fmt.Fprintf(&df, "FROM %s\n", bb)
	for i := range steps {
		cmd := fmt.Sprintf("echo %s step %d >> /steps", tag, i)
		stage = stage.Run(cmd)
		fmt.Fprintf(&df, "RUN %s\n", cmd)
	}
	dir, err := os.MkdirTemp("", "larder-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df.String()), 0o644); err != nil {
		return err
	}
	fs, err := fsutil.NewFS(dir)
	if err != nil {
		return err
	}
	bin := buildctl()
	if _, err := os.Stat(bin); err != nil {
		return unavailable{fmt.Errorf("no buildctl (run scripts/setup): %w", err)}
	}

	warm := false // the graph is in the builder's cache
	ways := []struct {
		name string
		run  func() error
	}{
		{"larder", func() error {
			res, err := build.Solve(ctx, r.env.Builder, stage)
			if err == nil && res.Report.RanSteps() != 0 && warm {
				err = fmt.Errorf("%d steps ran in a no-change rebuild:\n%s", res.Report.RanSteps(), res.Report)
			}
			return err
		}},
		{"buildctl", func() error {
			cmd := exec.CommandContext(ctx, bin, "--addr", r.env.Builder.Address(), "build", "--frontend", "dockerfile.v0",
				"--local", "context="+dir, "--local", "dockerfile="+dir, "--progress", "plain")
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("buildctl: %w\n%s", err, out.String())
			}
			return nil
		}},
		{"frontend", func() error {
			ch := make(chan *client.SolveStatus)
			done := make(chan struct{})
			go func() {
				for range ch {
				}
				close(done)
			}()
			_, err := r.env.Builder.Client().Solve(ctx, nil, client.SolveOpt{
				Frontend:    "dockerfile.v0",
				LocalMounts: map[string]fsutil.FS{"context": fs, "dockerfile": fs},
			}, ch)
			<-done
			return err
		}},
	}
	for _, w := range ways {
		if err := w.run(); err != nil {
			return fmt.Errorf("warming %s: %w", w.name, err)
		}
	}
	warm = true
	times := map[string][]time.Duration{}
	for i := range r.cfg.Iterations {
		for j := range ways {
			w := ways[(i+j)%len(ways)] // each way goes first in turn
			start := time.Now()
			if err := w.run(); err != nil {
				return fmt.Errorf("%s: %w", w.name, err)
			}
			times[w.name] = append(times[w.name], time.Since(start))
		}
	}
	l, c, f := median(times["larder"]), median(times["buildctl"]), median(times["frontend"])
	r.logf("no-change rebuilds, %d each: larder %v; buildctl %v; frontend in-process %v", r.cfg.Iterations, times["larder"], times["buildctl"], times["frontend"])
	scen := fmt.Sprintf("4 %d steps", steps)
	cr, fr := pairedRatio(times["larder"], times["buildctl"]), pairedRatio(times["larder"], times["frontend"])
	r.table.add(Row{
		Scenario: scen, Figure: "no-change rebuild: Larder Solve / buildctl build (Dockerfile)",
		Value:  timeRatio(cr, l, c),
		Target: "≤ 1.0×", Verdict: atMost(cr, 1.0),
		Note: fmt.Sprintf("%d each, interleaved; buildctl's time includes starting the process", r.cfg.Iterations),
	})
	r.table.add(Row{
		Scenario: scen, Figure: "no-change rebuild: Larder Solve / Dockerfile frontend from this process",
		Value:  timeRatio(fr, l, f),
		Target: "≤ 1.0×", Verdict: atMost(fr, 1.0),
		Note: "same client and connection; dockerfile.v0 built into buildkitd",
	})
	return nil
}
