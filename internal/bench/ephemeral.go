package bench

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/moby/buildkit/client/llb"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/cache"
)

// ciRun is what one CI job on a fresh builder did.
type ciRun struct {
	wall          time.Duration
	ran, cached   int
	bytes         int64 // package downloads, through the counting proxy
	restoredBytes int64
	restore       time.Duration
	saved         bool
	savedBytes    int64
	save          time.Duration
}

// ephemeral is scenario 2: the first workload's install step with the
// preset, built by a CI job on a fresh builder that exports its layer
// cache and persists its cache mounts, then built again, unchanged and
// with a changed install line, each by a job on a fresh builder of its own
// that imports (a) nothing, (b) the layer cache, (c) the layer cache and
// the cache mounts.
func (r *runner) ephemeral(ctx context.Context) error {
	ws, err := r.workloads(ctx)
	if err != nil {
		return err
	}
	w := ws[0]
	v := w.variants[0]
	project := r.tag("ci")
	graph := func(list string) build.Stage {
		return w.base.Run(v.cmd(list), concat(w.opts, []llb.RunOption{v.preset(project)}, through(r.counter))...)
	}
	layers := cache.Registry(r.env.Registry+"/bench/ci-layers:"+project, cache.ModeMax)
	store := build.PersistCacheMounts(cache.RegistryStore(r.env.Registry+"/bench/ci-caches-"+project), build.Namespace(project))

	job := func(s build.Stage, opts ...build.SolveOption) (ciRun, error) {
		b, err := r.env.NewBuilder(ctx)
		if err != nil {
			return ciRun{}, err
		}
		defer b.Close()
		got, err := r.solve(ctx, b, s, w.marker, r.counter, opts...)
		if err != nil {
			return ciRun{}, err
		}
		rep := got.res.Report
		c := ciRun{wall: got.wall, ran: rep.RanSteps(), cached: rep.CachedSteps(), bytes: got.bytes}
		for _, m := range rep.CacheMounts {
			c.restoredBytes += m.RestoredBytes
			c.restore += m.RestoreTime
			c.saved = c.saved || m.Exported
			c.savedBytes += m.ExportedBytes
			c.save += m.ExportTime
		}
		return c, nil
	}

	seed, err := job(graph(w.first), build.CacheTo(layers), store)
	if err != nil {
		return fmt.Errorf("the job that exports: %w", err)
	}
	r.logf("ci seed: %s, %d ran, %s downloaded, cache mounts saved %s in %s", secs(seed.wall), seed.ran, mb(seed.bytes), mb(seed.savedBytes), secs(seed.save))

	kinds := []struct {
		name string
		opts []build.SolveOption
	}{
		{"a", nil},
		{"b", []build.SolveOption{build.CacheFrom(layers)}},
		{"c", []build.SolveOption{build.CacheFrom(layers), store}},
	}
	got := map[string]ciRun{}
	for _, g := range []struct{ name, list string }{{"unchanged", w.first}, {"changed", w.second}} {
		for _, k := range kinds {
			c, err := job(graph(g.list), k.opts...)
			if err != nil {
				return fmt.Errorf("(%s) on the %s graph: %w", k.name, g.name, err)
			}
			got[g.name+"/"+k.name] = c
			r.logf("ci %-9s (%s): %s, %d ran, %d cached, %s downloaded, restored %s in %s, saved %v %s in %s",
				g.name, k.name, secs(c.wall), c.ran, c.cached, mb(c.bytes), mb(c.restoredBytes), secs(c.restore), c.saved, mb(c.savedBytes), secs(c.save))
		}
	}

	summary := func(g string) string {
		var parts []string
		for _, k := range kinds {
			c := got[g+"/"+k.name]
			parts = append(parts, fmt.Sprintf("(%s) %s, %d ran", k.name, secs(c.wall), c.ran))
		}
		return strings.Join(parts, "; ")
	}
	scen := "2 " + w.name
	u := got["unchanged/c"]
	r.table.add(Row{
		Scenario: scen,
		Figure:   "unchanged graph, fresh builder: job time, steps run",
		Value:    summary("unchanged"),
		Target:   "-",
		Note:     fmt.Sprintf("(c) includes restoring %s of cache mounts from the registry in %s", mb(u.restoredBytes), secs(u.restore)),
	})
	b, c := got["changed/b"], got["changed/c"]
	share := ratio(float64(c.bytes), float64(b.bytes))
	r.table.add(Row{
		Scenario: scen,
		Figure:   "changed install line: bytes downloaded, (c) / (b)",
		Value:    fmt.Sprintf("%s / %s = %.1f%%", mb(c.bytes), mb(b.bytes), 100*share),
		Target:   "≤ 10%",
		Verdict:  atMost(share, 0.10),
		Note:     fmt.Sprintf("proxy's count; (a) %s; (c) also restored %s of cache mounts from the registry", mb(got["changed/a"].bytes), mb(c.restoredBytes)),
	})
	r.table.add(Row{
		Scenario: scen,
		Figure:   "changed install line: job time, steps run",
		Value:    summary("changed"),
		Target:   "-",
		Note:     fmt.Sprintf("(c) includes restoring in %s and saving %s in %s", secs(c.restore), mb(c.savedBytes), secs(c.save)),
	})
	return nil
}
