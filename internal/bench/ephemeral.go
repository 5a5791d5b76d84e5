package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moby/buildkit/client/llb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/cache"
)

// ciRun is what one CI job on a fresh builder did.
type ciRun struct {
	wall          time.Duration
	step          time.Duration // the install step's own
	ran, cached   int
	bytes         int64 // package downloads, through the job's proxy
	restoredBytes int64
	restore       time.Duration
	saved         bool
	savedBytes    int64
	save          time.Duration
	fetched       []string // the packages the step downloaded
	ids           []string // the ids of the cache mounts persisted
}

// ephemeral is scenario 2: the first workload's install step with the
// preset, built by a CI job on a fresh builder that exports its layer
// cache and persists its cache mounts (the seed), then built again by jobs
// on fresh builders of their own, unchanged and with a changed install
// line, which import (b) the layer cache, or (c) the layer cache and the
// cache mounts. Each (c) job starts from a copy of the seed's cache mounts,
// so that every repetition restores the same artifact. Last, three jobs
// add a package each to the same cache at once, and a fourth installs all
// three: a package it downloads again is an addition the store lost.
func (r *runner) ephemeral(ctx context.Context) error {
	ws, err := r.workloads(ctx)
	if err != nil {
		return err
	}
	w := ws[0]
	v := w.variants[0]
	project := r.tag("ci")
	graph := func(list string, px *Proxy) build.Stage {
		return w.base.Run(v.cmd(list), concat(w.opts, []llb.RunOption{v.preset(project)}, through(px))...)
	}
	layers := cache.Registry(r.env.Registry+"/bench/ci-layers:"+project, cache.ModeMax)
	store := cache.RegistryStore(r.env.Registry + "/bench/ci-caches-" + project)
	persisted := func(ns string) build.SolveOption { return build.PersistCacheMounts(store, build.Namespace(ns)) }

	job := func(s build.Stage, px *Proxy, opts ...build.SolveOption) (ciRun, error) {
		b, err := r.env.NewBuilder(ctx)
		if err != nil {
			return ciRun{}, err
		}
		defer b.Close()
		got, err := r.solve(ctx, b, s, w.marker, px, opts...)
		if err != nil {
			return ciRun{}, err
		}
		rep := got.res.Report
		c := ciRun{wall: got.wall, step: got.step.Duration(), ran: rep.RanSteps(), cached: rep.CachedSteps(), bytes: got.bytes}
		for _, l := range got.lines {
			if name := w.fetched(l.text); name != "" {
				c.fetched = append(c.fetched, name)
			}
		}
		for _, m := range rep.CacheMounts {
			c.ids = append(c.ids, m.ID)
			c.restoredBytes += m.RestoredBytes
			c.restore += m.RestoreTime
			c.saved = c.saved || m.Exported
			c.savedBytes += m.ExportedBytes
			c.save += m.ExportTime
		}
		return c, nil
	}
	logJob := func(what string, c ciRun) {
		r.logf("ci %-22s %s (step %s), %d ran, %d cached, %s downloaded (%d %s), restored %s in %s, saved %v %s in %s",
			what, secs(c.wall), secs(c.step), c.ran, c.cached, mb(c.bytes), len(c.fetched), w.unit, mb(c.restoredBytes), secs(c.restore), c.saved, mb(c.savedBytes), secs(c.save))
	}

	seedNS := project + "-seed"
	r.counter.Reset()
	seed, err := job(graph(w.first, r.counter), r.counter, build.CacheTo(layers), persisted(seedNS))
	if err != nil {
		return fmt.Errorf("the job that exports: %w", err)
	}
	logJob("seed", seed)
	ids := seed.ids
	forks := 0
	fork := func() (build.SolveOption, error) {
		forks++
		ns := fmt.Sprintf("%s-%d", project, forks)
		for _, id := range ids {
			if err := copyArtifact(ctx, store, cache.MountKey(seedNS, id, "linux/amd64"), cache.MountKey(ns, id, "linux/amd64")); err != nil {
				return nil, err
			}
		}
		return persisted(ns), nil
	}

	type pair struct{ b, c []ciRun }
	runs := map[string]*pair{"unchanged": {}, "changed": {}, "throttled": {}}
	reps := r.cfg.Reps
	if !r.cfg.Smoke {
		reps = max(reps, 3)
	}
	for rep := range reps {
		for _, k := range []struct {
			name, list string
			px         *Proxy
		}{{"unchanged", w.first, r.counter}, {"changed", w.second, r.counter}, {"throttled", w.second, r.slow}} {
			b, err := job(graph(k.list, k.px), k.px, build.CacheFrom(layers))
			if err != nil {
				return fmt.Errorf("(b) on the %s graph: %w", k.name, err)
			}
			logJob(fmt.Sprintf("rep %d %s (b)", rep+1, k.name), b)
			p, err := fork()
			if err != nil {
				return err
			}
			c, err := job(graph(k.list, k.px), k.px, build.CacheFrom(layers), p)
			if err != nil {
				return fmt.Errorf("(c) on the %s graph: %w", k.name, err)
			}
			logJob(fmt.Sprintf("rep %d %s (c)", rep+1, k.name), c)
			runs[k.name].b = append(runs[k.name].b, b)
			runs[k.name].c = append(runs[k.name].c, c)
		}
	}

	scen := "2 " + w.name
	walls := func(cs []ciRun) []time.Duration {
		var ds []time.Duration
		for _, c := range cs {
			ds = append(ds, c.wall)
		}
		return ds
	}
	medianBy := func(cs []ciRun, f func(ciRun) int64) int64 {
		var xs []int64
		for _, c := range cs {
			xs = append(xs, f(c))
		}
		return medianInt(xs)
	}

	ch := runs["changed"]
	saved := medianBy(ch.c, func(c ciRun) int64 { return c.savedBytes })
	downloaded := medianBy(ch.c, func(c ciRun) int64 { return c.bytes })
	bb := medianBy(ch.b, func(c ciRun) int64 { return c.bytes })
	share := ratio(float64(downloaded), float64(bb))
	r.table.add(Row{
		Scenario: scen,
		Figure:   "changed install line: bytes downloaded, (c) / (b)",
		Value:    fmt.Sprintf("%s / %s = %.1f%%", mb(downloaded), mb(bb), 100*share),
		Target:   "≤ 10%",
		Verdict:  atMost(share, 0.10),
		Note:     fmt.Sprintf("proxy's count; (c) restored %s of cache mounts", mb(medianBy(ch.c, func(c ciRun) int64 { return c.restoredBytes }))),
	})
	over := ratio(float64(saved), float64(downloaded))
	r.table.add(Row{
		Scenario: scen,
		Figure:   "changed install line: bytes saved / bytes downloaded, (c)",
		Value:    fmt.Sprintf("%s / %s = %.2f×", mb(saved), mb(downloaded), over),
		Target:   "≤ 2×",
		Verdict:  atMost(over, 2),
		Note:     fmt.Sprintf("the new layer, compressed; %d %s downloaded", len(ch.c[0].fetched), w.unit),
	})
	rate := fmt.Sprintf("%g MB/s", float64(r.cfg.Rate)/1e6)
	for _, t := range []struct {
		key, figure string
		target      float64
	}{{"changed", "changed install line, direct: job time (c) / (b)", 0.9}, {"throttled", "changed install line at " + rate + ": job time (c) / (b)", 0.5}} {
		p := runs[t.key]
		tr := pairedRatio(walls(p.c), walls(p.b))
		r.table.add(Row{
			Scenario: scen,
			Figure:   t.figure,
			Value:    timeRatio(tr, median(walls(p.c)), median(walls(p.b))),
			Target:   fmt.Sprintf("≤ %.1f×", t.target),
			Verdict:  atMost(tr, t.target),
			Note: fmt.Sprintf("install step alone: (c) %s vs (b) %s; (c) restores in %s (beside the probe) and saves in %s; medians of %d paired runs",
				secs(median(stepTimes(p.c))), secs(median(stepTimes(p.b))), secs(median(restores(p.c))), secs(median(saves(p.c))), len(p.c)),
		})
	}
	un := runs["unchanged"]
	var diffs []time.Duration
	for i := range un.c {
		diffs = append(diffs, un.c[i].wall-un.b[i].wall)
	}
	extra := median(diffs)
	r.table.add(Row{
		Scenario: scen,
		Figure:   "unchanged graph, fresh builder: job time (c) − (b)",
		Value:    fmt.Sprintf("%+.2f s (%s vs %s)", extra.Seconds(), secs(median(walls(un.c))), secs(median(walls(un.b)))),
		Target:   "≤ +0.5 s",
		Verdict:  atMost(extra.Seconds(), 0.5),
		Note:     fmt.Sprintf("(c) restored %s; steps run: (b) %d, (c) %d", mb(un.c[0].restoredBytes), un.b[0].ran, un.c[0].ran),
	})

	lost, err := r.concurrentSaves(ctx, w, graph, job, fork)
	if err != nil {
		return fmt.Errorf("concurrent saves: %w", err)
	}
	r.table.add(Row{
		Scenario: scen,
		Figure:   "jobs saving the same cache at once whose additions are lost",
		Value:    fmt.Sprintf("%d of %d", len(lost), len(w.extras)),
		Target:   "0 of 3",
		Verdict:  atMost(float64(len(lost)), 0),
		Note:     fmt.Sprintf("each job adds %s; a fourth installs them all and downloads again %q", strings.Join(w.extras, ", "), lost),
	})
	return nil
}

// concurrentSaves runs a job per extra package of w at once, each adding
// it to the same persisted cache, then a fourth that installs them all,
// and returns the extras the fourth downloaded again.
func (r *runner) concurrentSaves(ctx context.Context, w workload,
	graph func(string, *Proxy) build.Stage,
	job func(build.Stage, *Proxy, ...build.SolveOption) (ciRun, error),
	fork func() (build.SolveOption, error)) ([]string, error) {
	p, err := fork()
	if err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	errs := make([]error, len(w.extras))
	for i, extra := range w.extras {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := job(graph(w.first+" "+extra, nil), nil, p)
			if err == nil && !c.saved {
				err = fmt.Errorf("the job adding %s saved nothing", extra)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	all, err := job(graph(w.first+" "+strings.Join(w.extras, " "), nil), nil, p)
	if err != nil {
		return nil, err
	}
	var lost []string
	for _, e := range w.extras {
		if slices.Contains(all.fetched, e) {
			lost = append(lost, e)
		}
	}
	r.logf("ci concurrent: the fourth job downloaded %q", all.fetched)
	return lost, nil
}

func stepTimes(cs []ciRun) []time.Duration {
	var ds []time.Duration
	for _, c := range cs {
		ds = append(ds, c.step)
	}
	return ds
}

func restores(cs []ciRun) []time.Duration {
	var ds []time.Duration
	for _, c := range cs {
		ds = append(ds, c.restore)
	}
	return ds
}

func saves(cs []ciRun) []time.Duration {
	var ds []time.Duration
	for _, c := range cs {
		ds = append(ds, c.save)
	}
	return ds
}

// copyArtifact copies the heads of from, and the blobs they name, to to in
// s, so that a job starts from the same cache as another.
func copyArtifact(ctx context.Context, s cache.MountStore, from, to string) error {
	heads, err := s.Heads(ctx, from)
	if err != nil {
		return err
	}
	for _, h := range heads {
		raw, err := s.ReadHead(ctx, from, h)
		if err != nil {
			return err
		}
		var m ocispecs.Manifest
		if err := json.Unmarshal(raw, &m); err != nil {
			return err
		}
		for _, d := range append([]ocispecs.Descriptor{m.Config}, m.Layers...) {
			rc, err := s.ReadBlob(ctx, from, d)
			if err != nil {
				return err
			}
			err = s.WriteBlob(ctx, to, d, rc)
			rc.Close()
			if err != nil {
				return err
			}
		}
		if err := s.CommitHead(ctx, to, h, raw); err != nil {
			return err
		}
	}
	return nil
}
