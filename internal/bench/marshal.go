package bench

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/moby/buildkit/client/llb"

	"github.com/larder-build/larder/build"
)

// marshalRef is the base image of the marshalled graphs, fully qualified so
// that Larder and raw llb name it the same way.
const marshalRef = "docker.io/library/debian:bookworm"

// stepCommand is the command of step i of a marshalled graph.
func stepCommand(i int) string { return "echo step " + strconv.Itoa(i) + " >> /steps" }

// LarderGraph returns an image with n steps on it, written with Larder.
func LarderGraph(n int) build.Stage {
	s := build.Image(marshalRef)
	for i := range n {
		s = s.Run(stepCommand(i))
	}
	return s
}

// RawGraph returns the same graph as LarderGraph, written in raw llb.
func RawGraph(n int) llb.State {
	s := llb.Image(marshalRef)
	for i := range n {
		s = s.Run(llb.Args([]string{"/bin/sh", "-c", stepCommand(i)})).Root()
	}
	return s
}

// MarshalLarder writes the n-step graph with Larder and marshals it.
func MarshalLarder(ctx context.Context, n int) (*llb.Definition, error) {
	return LarderGraph(n).Marshal(ctx, "linux/amd64")
}

// MarshalRaw writes the n-step graph in raw llb and marshals it as
// Stage.Marshal does: for linux/amd64, with local sources' ids pinned.
func MarshalRaw(ctx context.Context, n int) (*llb.Definition, error) {
	return RawGraph(n).Marshal(ctx, llb.LinuxAmd64, llb.LocalUniqueID("larder"))
}

// SameDefinition reports whether Larder and raw llb give byte-identical
// definitions of the n-step graph, so that the benchmarks compare the same
// work.
func SameDefinition(ctx context.Context, n int) error {
	a, err := MarshalLarder(ctx, n)
	if err != nil {
		return err
	}
	b, err := MarshalRaw(ctx, n)
	if err != nil {
		return err
	}
	if len(a.Def) != len(b.Def) {
		return fmt.Errorf("larder's definition has %d operations, raw llb's %d", len(a.Def), len(b.Def))
	}
	for i := range a.Def {
		if !bytes.Equal(a.Def[i], b.Def[i]) {
			return fmt.Errorf("operation %d differs between Larder and raw llb", i)
		}
	}
	return nil
}

// BenchMarshalLarder is the body of BenchmarkMarshalLarder: write and
// marshal an n-step graph with Larder, b.N times.
func BenchMarshalLarder(b *testing.B, n int) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := MarshalLarder(ctx, n); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchMarshalRaw is the body of BenchmarkMarshalRawLLB: the same in raw
// llb.
func BenchMarshalRaw(b *testing.B, n int) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := MarshalRaw(ctx, n); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchRemarshalLarder marshals an n-step Larder graph written once, b.N
// times: what a program that solves one graph several times pays.
func BenchRemarshalLarder(b *testing.B, n int) {
	ctx := context.Background()
	g := LarderGraph(n)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := g.Marshal(ctx, "linux/amd64"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchRemarshalRaw is BenchRemarshalLarder in raw llb.
func BenchRemarshalRaw(b *testing.B, n int) {
	ctx := context.Background()
	g := RawGraph(n)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := g.Marshal(ctx, llb.LinuxAmd64, llb.LocalUniqueID("larder")); err != nil {
			b.Fatal(err)
		}
	}
}

// benchPair runs two benchmarks in alternating rounds and returns each
// one's totals, so that a machine that slows down during the run slows
// both.
func benchPair(rounds int, a, b func(*testing.B)) (testing.BenchmarkResult, testing.BenchmarkResult) {
	var ra, rb testing.BenchmarkResult
	add := func(sum *testing.BenchmarkResult, r testing.BenchmarkResult) {
		sum.N += r.N
		sum.T += r.T
		sum.MemAllocs += r.MemAllocs
		sum.MemBytes += r.MemBytes
	}
	for range rounds {
		add(&ra, testing.Benchmark(a))
		add(&rb, testing.Benchmark(b))
	}
	return ra, rb
}

// marshal is scenario 3: the same graph written and marshalled with Larder
// and with raw llb, compared in time and allocations.
func (r *runner) marshal(ctx context.Context) error {
	n, rounds := 5000, 2
	if r.cfg.Smoke {
		n, rounds = 50, 1
	}
	if err := SameDefinition(ctx, n); err != nil {
		return err
	}
	scen := fmt.Sprintf("3 %d steps", n)
	for _, c := range []struct {
		what       string
		larder     func(*testing.B)
		raw        func(*testing.B)
		target     bool
		targetNote string
	}{
		{"write and marshal", func(b *testing.B) { BenchMarshalLarder(b, n) }, func(b *testing.B) { BenchMarshalRaw(b, n) }, true,
			"BenchmarkMarshalLarder / BenchmarkMarshalRawLLB; byte-identical definitions"},
		{"marshal again", func(b *testing.B) { BenchRemarshalLarder(b, n) }, func(b *testing.B) { BenchRemarshalRaw(b, n) }, false,
			"BenchmarkRemarshalLarder / BenchmarkRemarshalRawLLB: a graph written once, marshalled again"},
	} {
		l, raw := benchPair(rounds, c.larder, c.raw)
		if l.N == 0 || raw.N == 0 {
			return fmt.Errorf("%s: a benchmark failed", c.what)
		}
		ns := func(r testing.BenchmarkResult) time.Duration { return time.Duration(r.T.Nanoseconds() / int64(r.N)) }
		tr := ratio(float64(ns(l)), float64(ns(raw)))
		ar := ratio(float64(l.AllocsPerOp()), float64(raw.AllocsPerOp()))
		br := ratio(float64(l.AllocedBytesPerOp()), float64(raw.AllocedBytesPerOp()))
		r.logf("%s: larder %s/op %d allocs/op %d B/op (%d runs); raw llb %s/op %d allocs/op %d B/op (%d runs)", c.what,
			ns(l), l.AllocsPerOp(), l.AllocedBytesPerOp(), l.N, ns(raw), raw.AllocsPerOp(), raw.AllocedBytesPerOp(), raw.N)
		target, vt, va := "-", NoTarget, NoTarget
		if c.target {
			target, vt, va = "≤ 1.2×", atMost(tr, 1.2), atMost(max(ar, br), 1.2)
		}
		r.table.add(Row{
			Scenario: scen, Figure: c.what + ": time, Larder / raw llb",
			Value:  fmt.Sprintf("%s / %s = %.2f×", secs(ns(l)), secs(ns(raw)), tr),
			Target: target, Verdict: vt,
			Note: fmt.Sprintf("%s; %d+%d runs", c.targetNote, l.N, raw.N),
		})
		r.table.add(Row{
			Scenario: scen, Figure: c.what + ": allocations, Larder / raw llb",
			Value:  fmt.Sprintf("%d / %d = %.2f×; bytes %.2f×", l.AllocsPerOp(), raw.AllocsPerOp(), ar, br),
			Target: target, Verdict: va,
		})
	}
	return nil
}
