// Package bench measures what Larder's caches buy and what Larder costs,
// against a real buildkitd and registry (internal/testenv), and reports each
// figure next to its target in one table. Timings are compared as ratios
// measured in the same run: samples of the two sides are interleaved, and a
// figure is the median of the ratios of samples taken next to each other,
// shown with each side's median time. Bytes and step counts are exact.
//
// The scenarios:
//
//  1. Rebuild after a changed install line: apt (gcc, then gcc and curl),
//     go (a go.mod's modules, then one more), and a node project
//     (testdata/node: express, lodash and typescript, then left-pad too)
//     installed from its lockfile by `npm ci` (the Docker docs' recipe),
//     yarn and pnpm, and by `npm install` without a lockfile; each written
//     the usual way (no cache mounts; apt's lists removed) and with
//     Larder's preset, and timed direct and through a Proxy that delivers
//     at a fixed rate (8 MB/s) and counts the bytes. For apt, the step's
//     time is split where dpkg starts unpacking, configuring and running
//     triggers, and the preset is also measured without its dpkg drop-in
//     (force-unsafe-io), as it was before it had one.
//  2. Ephemeral CI builders: the apt step built on fresh builders that
//     import (a) nothing, (b) the registry layer cache, (c) the layer cache
//     and the cache mounts persisted by build.PersistCacheMounts, on the
//     unchanged graph and with a changed install line.
//  3. Graph construction: a 5,000-step graph written and marshalled with
//     Larder and in raw llb (the same definition, byte for byte), with
//     testing.Benchmark; the same benchmarks are BenchmarkMarshalLarder and
//     BenchmarkMarshalRawLLB for go test -bench.
//  4. A no-change rebuild of a 20-step graph: Larder's Solve against buildctl
//     building the equivalent Dockerfile, and against the Dockerfile
//     frontend solved from the same client, on the same builder.
//  5. A fleet: a linux/amd64 and linux/arm64 build on two members at once
//     against the same two solves one after the other.
//
// A smoke run (Config.Smoke) runs every scenario once on tiny graphs, with
// busybox and a package server of its own in place of apt, go and node; the
// package's tests run it, so the benchmark can't rot.
package bench
