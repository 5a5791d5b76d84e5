package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/remote"
)

// fleetWork is the command of scenario 5's step on each platform: a fixed
// wait, standing for the network and disk waits of a real step, and a
// little CPU work, which emulation slows about twelvefold.
const fleetWork = "sleep 2; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done"

// fleet is scenario 5: a linux/amd64 and linux/arm64 build of one graph on
// a fleet of two members, one per platform, at once, against the same two
// solves one after the other on the same members.
func (r *runner) fleet(ctx context.Context) error {
	arm, err := r.env.Arm64(ctx)
	if err != nil {
		return unavailable{err}
	}
	defer arm.Close()
	f, err := remote.NewFleet(ctx, remote.FromBuilder(r.env.Builder), remote.FromBuilder(arm))
	if err != nil {
		return err
	}
	defer f.Close()
	bb, err := r.env.Busybox(ctx)
	if err != nil {
		return err
	}
	work := fleetWork
	if r.cfg.Smoke {
		work = "true"
	}
	graph := func() build.Stage { return build.Image(bb).Run(work, fresh(r.tag("fleet"))) }
	const amd, arm64 = "linux/amd64", "linux/arm64"

	// Both members pull the image first, so that no side pays for it.
	if _, err := build.Solve(ctx, f, graph(), build.Platforms(amd, arm64)); err != nil {
		return err
	}
	stepTime := func(res *build.Result, p string) time.Duration {
		for _, s := range res.Report.Steps {
			if s.Platform == p && s.Kind == "exec" {
				return s.Duration()
			}
		}
		return 0
	}
	var seq, conc, amdStep, armStep []time.Duration
	sequential := func() error {
		g := graph()
		start := time.Now()
		a, err := build.Solve(ctx, r.env.Builder, g, build.Platforms(amd))
		if err != nil {
			return err
		}
		b, err := build.Solve(ctx, arm, g, build.Platforms(arm64))
		if err != nil {
			return err
		}
		seq = append(seq, time.Since(start))
		amdStep, armStep = append(amdStep, stepTime(a, amd)), append(armStep, stepTime(b, arm64))
		return nil
	}
	concurrent := func() error {
		start := time.Now()
		res, err := build.Solve(ctx, f, graph(), build.Platforms(amd, arm64))
		if err != nil {
			return err
		}
		conc = append(conc, time.Since(start))
		if len(res.Platforms) != 2 || res.Platforms[0].Builder == res.Platforms[1].Builder {
			return fmt.Errorf("the fleet did not send the platforms to two members: %+v", res.Platforms)
		}
		return nil
	}
	reps := r.cfg.Reps
	if !r.cfg.Smoke {
		reps = max(reps, 3)
	}
	for i := range reps {
		first, second := sequential, concurrent
		if i%2 == 1 {
			first, second = concurrent, sequential
		}
		if err := first(); err != nil {
			return err
		}
		if err := second(); err != nil {
			return err
		}
	}
	s, c := median(seq), median(conc)
	a, b := median(amdStep), median(armStep)
	r.logf("fleet: sequential %v, concurrent %v; steps amd64 %v, arm64 %v", seq, conc, amdStep, armStep)
	cr := pairedRatio(conc, seq)
	r.table.add(Row{
		Scenario: "5 fleet",
		Figure:   "amd64 + arm64 build: two members at once / one after the other",
		Value:    timeRatio(cr, c, s),
		Target:   "≤ 0.65×",
		Verdict:  atMost(cr, 0.65),
		Note: fmt.Sprintf("step: %q; amd64 step %s, arm64 (qemu) step %s, so at best %.2f×; %d pairs",
			work, secs(a), secs(b), ratio(max(a, b).Seconds(), (a+b).Seconds()), len(seq)),
	})
	return nil
}
