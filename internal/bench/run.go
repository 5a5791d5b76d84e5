package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/buildkit/client/llb"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/internal/testenv"
)

// Config says what a run measures.
type Config struct {
	// Smoke runs every scenario once, on tiny graphs, with busybox and a
	// package server of the run's own in place of apt, go and node, so that
	// the benchmark itself is tested in well under a minute.
	Smoke bool
	// Reps is how many times each timed figure of scenarios 1, 4 and 5 is
	// measured; the table shows medians. The default is 2, 1 with Smoke.
	Reps int
	// Iterations is how many no-change rebuilds scenario 4 times per
	// side. The default is 10, 1 with Smoke.
	Iterations int
	// Rate is the throttling proxy's rate in bytes per second. The default
	// is 8 MB/s.
	Rate int64
	// Only limits the run to these scenarios, "1" to "5"; empty runs all.
	Only []string
	// Env is the environment to run in; nil starts one and stops it at
	// the end.
	Env *testenv.Env
	// Log receives a line per measurement; nil discards them.
	Log io.Writer
}

func (c *Config) defaults() {
	if c.Reps <= 0 {
		c.Reps = 2
		if c.Smoke {
			c.Reps = 1
		}
	}
	if c.Iterations <= 0 {
		c.Iterations = 10
		if c.Smoke {
			c.Iterations = 1
		}
	}
	if c.Rate <= 0 {
		c.Rate = 8_000_000
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
}

// runner holds what the scenarios of one run share.
type runner struct {
	cfg     Config
	env     *testenv.Env
	table   Table
	slow    *Proxy // throttled at cfg.Rate
	counter *Proxy // unthrottled, for byte counts only
	nonce   string // makes this run's steps its own, whatever ran before
	seq     int
	closers []func() // run when the run ends

	ws    []workload // scenarios 1 and 2's, made on first use
	wsErr error
	wsSet bool
	// toolsErr is why the go and node workloads could not be set up.
	toolsErr error
}

// unavailable is an error about the machine, not the benchmark: the
// scenario is reported as not run, and the run does not fail.
type unavailable struct{ err error }

func (u unavailable) Error() string { return u.err.Error() }

// Run measures the scenarios of cfg and returns the table. A scenario that
// fails is in the table as not run, with why, and its error is in the
// returned error too; the other scenarios still run.
func Run(ctx context.Context, cfg Config) (*Table, error) {
	cfg.defaults()
	r := &runner{cfg: cfg, env: cfg.Env, nonce: strconv.FormatInt(time.Now().UnixNano(), 36)}
	if r.env == nil {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		env, err := testenv.Start(sctx)
		cancel()
		if err != nil {
			return nil, err
		}
		defer env.Close()
		r.env = env
	}
	defer func() {
		for _, c := range r.closers {
			c()
		}
	}()
	var err error
	if r.slow, err = StartProxy(cfg.Rate); err != nil {
		return nil, err
	}
	defer r.slow.Close()
	if r.counter, err = StartProxy(0); err != nil {
		return nil, err
	}
	defer r.counter.Close()

	scenarios := []struct {
		id, name string
		run      func(context.Context) error
	}{
		{"1", "rebuild after a changed install line", r.rebuild},
		{"2", "ephemeral CI builders", r.ephemeral},
		{"3", "graph construction", r.marshal},
		{"4", "no-change rebuild", r.noChange},
		{"5", "fleet", r.fleet},
	}
	var errs []error
	for _, s := range scenarios {
		if len(cfg.Only) > 0 && !slices.Contains(cfg.Only, s.id) {
			continue
		}
		start := time.Now()
		r.logf("== scenario %s: %s", s.id, s.name)
		err := s.run(ctx)
		r.logf("== scenario %s took %s", s.id, time.Since(start).Round(time.Second))
		if err == nil {
			continue
		}
		var u unavailable
		if errors.As(err, &u) {
			r.table.notRun(s.id, s.name, "unavailable here: "+oneLine(u.err.Error()))
			continue
		}
		r.table.notRun(s.id, s.name, "failed: "+oneLine(err.Error()))
		errs = append(errs, fmt.Errorf("scenario %s (%s): %w", s.id, s.name, err))
		if ctx.Err() != nil {
			break
		}
	}
	return &r.table, errors.Join(errs...)
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.cfg.Log, time.Now().Format("15:04:05 ")+format+"\n", args...)
}

// tag returns an id no other step of this run has, for cache ids and for
// the variable that keeps a step from coming from cache.
func (r *runner) tag(what string) string {
	r.seq++
	return fmt.Sprintf("bench-%s-%s-%d", what, r.nonce, r.seq)
}

// fresh makes a step run even when an equal one ran before in this run or
// an earlier one: a variable set on that step only, which changes its cache
// key and nothing else.
func fresh(tag string) llb.RunOption { return llb.AddEnv("LARDER_BENCH_SAMPLE", tag) }

// through returns run options that send a step's HTTP and HTTPS traffic
// through p, as apt, go, npm, yarn, pnpm and busybox wget read them.
func through(p *Proxy) []llb.RunOption {
	if p == nil {
		return nil
	}
	u := p.URL()
	return []llb.RunOption{
		llb.AddEnv("http_proxy", u), llb.AddEnv("https_proxy", u),
		llb.AddEnv("HTTP_PROXY", u), llb.AddEnv("HTTPS_PROXY", u),
	}
}

// logLine is a line a step wrote, with when the builder received it.
type logLine struct {
	t    time.Time
	text string
}

// solved is what one measured solve gave.
type solved struct {
	res   *build.Result
	wall  time.Duration
	step  build.Step // the step named by the marker; zero without one
	lines []logLine  // what that step wrote
	bytes int64      // delivered by the proxy during the solve
}

// solve solves s on b and finds the step whose name holds marker. px, when
// not nil, is the proxy whose byte count the solve is charged with.
func (r *runner) solve(ctx context.Context, b build.Builder, s build.Stage, marker string, px *Proxy, opts ...build.SolveOption) (*solved, error) {
	var mu sync.Mutex
	partial := map[string][]byte{}
	lines := map[string][]logLine{}
	opts = append(opts, build.OnEvent(func(e build.Event) {
		if e.Kind != build.StepLog {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		k := e.Digest.String()
		buf := append(partial[k], e.Data...)
		for {
			i := bytes.IndexAny(buf, "\n\r")
			if i < 0 {
				break
			}
			if t := strings.TrimSpace(string(buf[:i])); t != "" {
				lines[k] = append(lines[k], logLine{e.Time, t})
			}
			buf = buf[i+1:]
		}
		partial[k] = buf
	}))
	if px != nil {
		px.Reset()
	}
	start := time.Now()
	res, err := build.Solve(ctx, b, s, opts...)
	out := &solved{res: res, wall: time.Since(start)}
	if px != nil {
		out.bytes = px.Reset()
	}
	if err != nil {
		return nil, err
	}
	if marker != "" {
		st, ok := res.Report.Find(marker)
		if !ok {
			return nil, fmt.Errorf("no step %q in the report:\n%s", marker, res.Report)
		}
		out.step = st
		mu.Lock()
		out.lines = lines[st.Digest.String()]
		mu.Unlock()
	}
	return out, nil
}

// oneLine keeps the first line of s, shortened, for a table cell.
func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}
