// Command bench runs Larder's benchmarks against a local builder and
// registry that it starts and stops itself, and prints one table: each
// figure, its target, and whether it is met. Timings are ratios measured in
// the same run; bytes and step counts are exact. Package internal/bench
// describes the scenarios.
//
//	scripts/bench                # everything, about 14 minutes on 2 cores
//	scripts/bench -only 3,4      # some scenarios
//	scripts/bench -smoke         # every scenario once, tiny, in seconds
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/larder-build/larder/internal/bench"
)

func main() {
	testing.Init() // scenario 3 runs benchmarks with testing.Benchmark
	smoke := flag.Bool("smoke", false, "run every scenario once, on tiny graphs, with busybox in place of apt, go and node")
	reps := flag.Int("reps", 0, "measurements per timed figure of scenarios 1, 4 and 5 (default 2; 1 with -smoke)")
	iterations := flag.Int("iterations", 0, "no-change rebuilds per side in scenario 4 (default 10; 1 with -smoke)")
	rate := flag.Float64("rate", 8, "the throttling proxy's rate, in MB/s")
	only := flag.String("only", "", "comma-separated scenarios to run, such as 1,3 (default all)")
	benchtime := flag.String("benchtime", "", "scenario 3's -test.benchtime per round (default 2x; testing's 1s with -smoke)")
	quiet := flag.Bool("q", false, "do not log each measurement to stderr")
	flag.Parse()

	if *benchtime == "" && !*smoke {
		*benchtime = "2x"
	}
	if *benchtime != "" {
		if err := flag.Set("test.benchtime", *benchtime); err != nil {
			fmt.Fprintln(os.Stderr, "bench: -benchtime:", err)
			os.Exit(2)
		}
	}
	cfg := bench.Config{
		Smoke:      *smoke,
		Reps:       *reps,
		Iterations: *iterations,
		Rate:       int64(*rate * 1e6),
		Log:        os.Stderr,
	}
	if *only != "" {
		cfg.Only = strings.Split(*only, ",")
	}
	if *quiet {
		cfg.Log = io.Discard
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start, load := time.Now(), loadAverage()
	table, err := bench.Run(ctx, cfg)
	if table != nil {
		table.Write(os.Stdout)
		fmt.Printf("\n%d met, %d not met, %d not run; %d CPUs, load average %s at the start, %s at the end; ran in %s\n",
			table.Count(bench.Met), table.Count(bench.NotMet), table.Count(bench.NotRun),
			runtime.NumCPU(), load, loadAverage(), time.Since(start).Round(time.Second))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// loadAverage returns the machine's load averages, which say how shared
// it was during the run.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
