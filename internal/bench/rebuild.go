package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/moby/buildkit/client/llb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/cache"
	"github.com/larder-build/larder/internal/testenv"
	"github.com/larder-build/larder/mounts"
)

// workload is a package manager's install step, the step that a change to
// the install line makes run again.
type workload struct {
	name string
	// first and second are the install lists before and after the change.
	first, second string
	// base is what the install step runs on.
	base build.Stage
	// minReps is how many samples a full run takes at least: cheap steps
	// take more, since a second's noise weighs more on them.
	minReps int
	// marker is a part of every install command, to find the step.
	marker string
	// opts go to every install step.
	opts []llb.RunOption
	// baseline is the install command written the usual way, without
	// cache mounts.
	baseline func(list string) string
	// variants are the step written with Larder's preset, and variations
	// of it.
	variants []variant
	// unit names what downloads counts, such as "packages".
	unit string
	// downloads counts what the step's output says it downloaded.
	downloads func([]logLine) int
	// fetched returns the package a line of the step's output says it
	// downloaded, "" for none.
	fetched func(line string) string
	// extras are packages that each add something of their own to what
	// the first list installs, for scenario 2's concurrent jobs.
	extras []string
	// explain, when not nil, says what else the step's output tells about
	// its downloads, as "; …".
	explain func([]logLine) string
	// split names the phases together, such as "dpkg".
	split string
	// phases split the end of the step at lines of its output, such as
	// dpkg's unpacking, configuring and triggers; the first phase starts
	// where the step stops downloading. None: the step is not split.
	phases []phase
	// targets are what the variants with targets aim for.
	targets targets
}

// phase is a part of a step that starts at the first line that matches
// start, after the previous phase started, and ends where the next one
// starts, or with the step.
type phase struct {
	name  string
	start func(line string) bool
}

// targets are the limits of a workload's figures, as fractions of the
// baseline's.
type targets struct {
	bytes, throttled, direct float64
}

// defaultTargets: the rebuild downloads at most a tenth of the bytes, and
// its step takes at most half the time through the proxy and no longer
// direct.
var defaultTargets = targets{bytes: 0.10, throttled: 0.5, direct: 1.0}

// variant is one way to write the install step with cache mounts.
type variant struct {
	name   string
	cmd    func(list string) string
	preset func(project string) llb.RunOption
	// context: the variant is measured for comparison, its time rows
	// shown without targets and its bytes not shown.
	context bool
}

// measurement is what one rebuild's install step did.
type measurement struct {
	step      time.Duration
	phases    []time.Duration // each of the workload's phases; 0 for a phase not seen
	bytes     int64           // through the throttling proxy; 0 for direct runs
	downloads int
	lines     []logLine // the step's output
}

// split is how long all phases took together: from the first phase's
// start to the step's end.
func (m measurement) split() time.Duration {
	var d time.Duration
	for _, p := range m.phases {
		d += p
	}
	return d
}

// rebuild is scenario 1: each workload built, then rebuilt after its
// install line changed, the usual way and with the preset, direct and
// through the throttling proxy.
func (r *runner) rebuild(ctx context.Context) error {
	ws, err := r.workloads(ctx)
	if err != nil {
		return err
	}
	if r.toolsErr != nil {
		for _, name := range []string{"go", "npm ci", "npm install", "yarn", "pnpm"} {
			r.table.notRun("1 "+name, "rebuild after a changed install line", "failed: "+oneLine(r.toolsErr.Error()))
		}
	}
	for _, w := range ws {
		if err := r.rebuildWorkload(ctx, w); err != nil {
			r.table.notRun("1 "+w.name, "rebuild after a changed install line", "failed: "+oneLine(err.Error()))
			r.logf("%s: %v", w.name, err)
		}
	}
	return nil
}

func (r *runner) rebuildWorkload(ctx context.Context, w workload) error {
	type network struct {
		name string
		px   *Proxy
	}
	nets := []network{{"direct", nil}, {"throttled", r.slow}}
	all := append([]variant{{name: "baseline", cmd: w.baseline}}, w.variants...)
	got := map[string][]measurement{}
	notes := map[string]string{} // what the output says besides downloads, by variant
	reps := r.cfg.Reps
	if !r.cfg.Smoke {
		reps = max(reps, w.minReps)
	}
	for rep := range reps {
		for _, n := range nets {
			for _, v := range all {
				m, err := r.rebuildSample(ctx, w, v, n.px)
				if err != nil {
					return fmt.Errorf("%s, %s, %s: %w", w.name, v.name, n.name, err)
				}
				got[n.name+"/"+v.name] = append(got[n.name+"/"+v.name], m)
				if w.explain != nil && n.px != nil {
					notes[v.name] = w.explain(m.lines)
				}
				r.logf("%s rep %d %-9s %-26s step %s%s, %s, %d %s", w.name, rep+1, n.name, v.name,
					secs(m.step), logPhases(w, m), mb(m.bytes), m.downloads, w.unit)
			}
		}
	}
	rate := fmt.Sprintf("%g MB/s", float64(r.cfg.Rate)/1e6)
	sum := func(key string) (s summary, bytes int64, downloads int) {
		var bs []int64
		for _, m := range got[key] {
			bs = append(bs, m.bytes)
			downloads = m.downloads
		}
		return summarize(w, got[key]), medianInt(bs), downloads
	}
	paired := func(a, b string) float64 { return pairedRatio(steps(got[a]), steps(got[b])) }
	scen := "1 " + w.name
	t := w.targets
	if t == (targets{}) {
		t = defaultTargets
	}
	bSum, bBytes, bDown := sum("throttled/baseline")
	baselineNote := ""
	if n := notes["baseline"]; n != "" {
		baselineNote = "; baseline: " + strings.TrimPrefix(n, "; ")
	}
	dSum, _, _ := sum("direct/baseline")
	for _, v := range w.variants {
		vSum, vBytes, vDown := sum("throttled/" + v.name)
		limit := func(target float64, value float64) (string, Verdict) {
			if v.context {
				return "", NoTarget
			}
			return "≤ " + decimal(target) + "×", atMost(value, target)
		}
		if !v.context {
			share := ratio(float64(vBytes), float64(bBytes))
			r.table.add(Row{
				Scenario: scen,
				Figure:   "bytes the rebuild downloads: " + v.name + " / baseline",
				Value:    fmt.Sprintf("%s / %s = %.1f%%", mb(vBytes), mb(bBytes), 100*share),
				Target:   "≤ " + strconv.FormatFloat(100*t.bytes, 'f', -1, 64) + "%",
				Verdict:  atMost(share, t.bytes),
				Note:     fmt.Sprintf("proxy's count; %s's output: %d %s fetched vs %d", w.name, vDown, w.unit, bDown) + notes[v.name] + baselineNote,
			})
		}
		tr := paired("throttled/"+v.name, "throttled/baseline")
		target, verdict := limit(t.throttled, tr)
		r.table.add(Row{
			Scenario: scen,
			Figure:   "rebuild step at " + rate + ": " + v.name + " / baseline",
			Value:    timeRatio(tr, vSum.step, bSum.step),
			Target:   target,
			Verdict:  verdict,
			Note:     orElse(phaseNote(w, vSum, bSum), fmt.Sprintf("%s vs %s through the proxy", mb(vBytes), mb(bBytes))),
		})
		xSum, _, _ := sum("direct/" + v.name)
		dr := paired("direct/"+v.name, "direct/baseline")
		target, verdict = limit(t.direct, dr)
		r.table.add(Row{
			Scenario: scen,
			Figure:   "rebuild step, direct: " + v.name + " / baseline",
			Value:    timeRatio(dr, xSum.step, dSum.step),
			Target:   target,
			Verdict:  verdict,
			Note:     phaseNote(w, xSum, dSum),
		})
	}
	return nil
}

// decimal formats a target with as many decimals as it has, at least one:
// "1.0", "0.5", "0.45".
func decimal(v float64) string {
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

// summary is the medians of one side's samples: the step's time and each
// phase's.
type summary struct {
	step, split time.Duration
	phases      []time.Duration
}

func summarize(w workload, ms []measurement) summary {
	s := summary{step: median(steps(ms))}
	var splits []time.Duration
	for _, m := range ms {
		splits = append(splits, m.split())
	}
	s.split = median(splits)
	for i := range w.phases {
		var ds []time.Duration
		for _, m := range ms {
			ds = append(ds, m.phases[i])
		}
		s.phases = append(s.phases, median(ds))
	}
	return s
}

// steps returns the step times of ms.
func steps(ms []measurement) []time.Duration {
	var ds []time.Duration
	for _, m := range ms {
		ds = append(ds, m.step)
	}
	return ds
}

func orElse(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

// phaseNote says how much of each side's step its phases took, medians,
// when the workload splits its step: "dpkg 3.90 s of 5.50 s (71%: unpack
// 3.40 s, configure 211 ms, triggers 290 ms); baseline: dpkg …".
func phaseNote(w workload, v, b summary) string {
	if len(w.phases) == 0 {
		return ""
	}
	side := func(s summary) string {
		var parts []string
		for i, p := range w.phases {
			parts = append(parts, p.name+" "+secs(s.phases[i]))
		}
		return fmt.Sprintf("%s %s of %s (%.0f%%: %s)", w.split, secs(s.split), secs(s.step),
			100*ratio(s.split.Seconds(), s.step.Seconds()), strings.Join(parts, ", "))
	}
	return side(v) + "; baseline: " + side(b)
}

// logPhases is the phases of one sample for the log: " (dpkg 3.90 s:
// unpack 3.40 s, …)".
func logPhases(w workload, m measurement) string {
	if len(w.phases) == 0 {
		return ""
	}
	var parts []string
	for i, p := range w.phases {
		parts = append(parts, p.name+" "+secs(m.phases[i]))
	}
	return fmt.Sprintf(" (%s %s: %s)", w.split, secs(m.split()), strings.Join(parts, ", "))
}

// splitPhases returns how long each of w's phases took in a step that
// wrote lines and completed at end.
func splitPhases(w workload, lines []logLine, end time.Time) []time.Duration {
	if len(w.phases) == 0 {
		return nil
	}
	starts := make([]time.Time, len(w.phases))
	next := 0
	for _, l := range lines {
		for i := next; i < len(w.phases); i++ {
			if w.phases[i].start(l.text) {
				starts[i], next = l.t, i+1
				break
			}
		}
	}
	out := make([]time.Duration, len(w.phases))
	for i, t := range starts {
		if t.IsZero() {
			continue
		}
		stop := end
		for _, u := range starts[i+1:] {
			if !u.IsZero() {
				stop = u
				break
			}
		}
		out[i] = stop.Sub(t)
	}
	return out
}

// rebuildSample builds w with its first list and the variant's caches
// (not for the baseline, whose caches, if any, are in layers the change
// discards), then times the rebuild with the second list, through px.
func (r *runner) rebuildSample(ctx context.Context, w workload, v variant, px *Proxy) (measurement, error) {
	var preset []llb.RunOption
	if v.preset != nil {
		preset = append(preset, v.preset(r.tag(strings.ReplaceAll(w.name, " ", "-"))))
		warm := w.base.Run(v.cmd(w.first), concat(w.opts, preset, []llb.RunOption{fresh(r.tag("warm"))})...)
		if _, err := r.solve(ctx, r.env.Builder, warm, w.marker, nil); err != nil {
			return measurement{}, fmt.Errorf("the build before the change: %w", err)
		}
	}
	step := w.base.Run(v.cmd(w.second), concat(w.opts, preset, through(px), []llb.RunOption{fresh(r.tag("rebuild"))})...)
	s, err := r.solve(ctx, r.env.Builder, step, w.marker, px)
	if err != nil {
		return measurement{}, err
	}
	if s.step.Cached {
		return measurement{}, fmt.Errorf("the rebuild's install step came from cache")
	}
	return measurement{
		step:      s.step.Duration(),
		phases:    splitPhases(w, s.lines, s.step.Completed),
		bytes:     s.bytes,
		downloads: w.downloads(s.lines),
		lines:     s.lines,
	}, nil
}

func concat(lists ...[]llb.RunOption) []llb.RunOption {
	var out []llb.RunOption
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// workloads returns apt, go and the node workloads on Debian, or, for a
// package manager made of busybox's wget and a server of the run's own.
// The first call makes them.
func (r *runner) workloads(ctx context.Context) ([]workload, error) {
	if !r.wsSet {
		r.ws, r.wsErr = r.makeWorkloads(ctx)
		r.wsSet = true
	}
	return r.ws, r.wsErr
}

func (r *runner) makeWorkloads(ctx context.Context) ([]workload, error) {
	if r.cfg.Smoke {
		w, err := r.pkgWorkload(ctx)
		if err != nil {
			return nil, err
		}
		return []workload{w}, nil
	}
	debian, err := r.env.Debian(ctx)
	if err != nil {
		return nil, err
	}
	ws := []workload{aptWorkload(debian)}
	ca, err := testenv.HostCA()
	if err != nil {
		return nil, err
	}
	tools, err := r.tools(ctx, debian)
	if err != nil {
		r.toolsErr = err
		return ws, nil
	}
	node, err := nodeWorkloads(tools, ca)
	if err != nil {
		return nil, err
	}
	return append(append(ws, goWorkload(tools, ca)), node...), nil
}

// aptWorkload installs gcc, then gcc and curl, from Debian's mirror. Its
// step is split where dpkg starts unpacking, configuring and running
// triggers (libc-bin's, ldconfig, here: the base image has no man-db); the
// triggers' phase runs to the step's end, BuildKit's part of it included.
func aptWorkload(debian string) workload {
	install := func(list string) string {
		return "apt-get update && apt-get install -y --no-install-recommends " + list
	}
	preset := func(project string) llb.RunOption { return cache.Apt(cache.Project(project)) }
	return workload{
		name: "apt", first: "gcc", second: "gcc curl",
		base: build.Image(debian),
		// With two samples the median is their mean, and one slow dpkg
		// run (a baseline once unpacked in 9.0 s, then 4.1 s) moves it by
		// a third; three take the middle one.
		minReps: 3,
		marker:  "apt-get install",
		baseline: func(list string) string {
			return install(list) + " && rm -rf /var/lib/apt/lists/*"
		},
		variants: []variant{
			{name: "preset", cmd: install, preset: preset},
			{name: "preset without " + cache.AptUnsafeIOFile, cmd: install, preset: aptPresetWithout(cache.AptUnsafeIOFile), context: true},
		},
		targets: targets{bytes: 0.10, throttled: 0.45, direct: 0.7},
		unit:    "packages",
		// "Get:3 http://deb.debian.org/debian bookworm/main amd64 curl amd64 7.88.1-10 [315 kB]";
		// index downloads have fewer fields.
		downloads: countLines(func(l string) bool { return aptFetched(l) != "" }),
		fetched:   aptFetched,
		extras:    []string{"curl", "wget", "file"},
		split:     "dpkg",
		phases: []phase{
			{"unpack", func(l string) bool {
				return strings.HasPrefix(l, "Selecting previously unselected package") || strings.HasPrefix(l, "Preparing to unpack")
			}},
			{"configure", func(l string) bool { return strings.HasPrefix(l, "Setting up ") }},
			{"triggers", func(l string) bool { return strings.HasPrefix(l, "Processing triggers for ") }},
		},
	}
}

// aptPresetWithout is the apt preset for linux/amd64 without its file at
// path: the preset as it was before that file, to measure what the file
// buys in the same run.
func aptPresetWithout(path string) func(project string) llb.RunOption {
	return func(project string) llb.RunOption {
		var opts runOptions
		for _, m := range cache.Apt(cache.Project(project)).For(ocispecs.Platform{OS: "linux", Architecture: "amd64"}).Mounts() {
			if m.Target() != path {
				opts = append(opts, m)
			}
		}
		return opts
	}
}

// aptFetched returns the package an apt output line says it downloaded,
// such as "curl" of "Get:3 http://deb.debian.org/debian bookworm/main
// amd64 curl amd64 7.88.1-10 [315 kB]"; index downloads have fewer fields.
func aptFetched(l string) string {
	if f := strings.Fields(l); strings.HasPrefix(l, "Get:") && len(f) >= 9 {
		return f[4]
	}
	return ""
}

// npmTarball is npm itself, which the tools stage installs from the npm
// registry: Debian's npm package pulls in almost 400 packages.
const (
	npmTarball = "https://registry.npmjs.org/npm/-/npm-10.8.2.tgz"
	npmSHA256  = "sha256:c8c61ba0fa0ab3b5120efd5ba97fdaf0e0b495eef647a97c4413919eda0a878b"
)

// yarnTarball and pnpmTarball are yarn (classic) and pnpm, which the
// tools stage installs with npm from the npm registry's tarballs, checked
// by their digests; the lockfiles in testdata/node were made by them. Both
// packages bundle their dependencies, so npm installs them without asking
// the registry about them.
const (
	yarnTarball = "https://registry.npmjs.org/yarn/-/yarn-1.22.22.tgz"
	yarnSHA256  = "sha256:c17d3797fb9a9115bf375e31bfd30058cac6bc9c3b8807a3d8cb2094794b51ca"
	pnpmTarball = "https://registry.npmjs.org/pnpm/-/pnpm-9.15.9.tgz"
	pnpmSHA256  = "sha256:cf86a7ad764406395d4286a6d09d730711720acc6d93e9dce9ac7ac4dc4a28a7"
)

// tools is Debian with go, node, npm, yarn and pnpm, on which the go and
// node workloads run. It is built once, before any of them is timed.
func (r *runner) tools(ctx context.Context, debian string) (build.Stage, error) {
	s := build.Image(debian).
		Run("apt-get update && apt-get install -y --no-install-recommends golang-go ca-certificates nodejs",
			cache.Apt(cache.Project("bench-tools"))).
		Run("mkdir -p /usr/local/lib/npm && tar -xzf /npm/npm-10.8.2.tgz -C /usr/local/lib/npm --strip-components=1 && "+
			"ln -s /usr/local/lib/npm/bin/npm-cli.js /usr/local/bin/npm && npm --version",
			mounts.Bind("/npm", build.HTTP(npmTarball, build.Checksum(npmSHA256)))).
		// npm's cache for this install is a directory of its own, removed
		// after, so that the image's /root/.npm stays empty.
		Run("npm install --global --no-audit --no-fund --cache /tmp/npm-tools /yarn/yarn-1.22.22.tgz /pnpm/pnpm-9.15.9.tgz && "+
			"rm -rf /tmp/npm-tools && yarn --version && pnpm --version",
			mounts.Bind("/yarn", build.HTTP(yarnTarball, build.Checksum(yarnSHA256))),
			mounts.Bind("/pnpm", build.HTTP(pnpmTarball, build.Checksum(pnpmSHA256))))
	start := time.Now()
	if _, err := r.solve(ctx, r.env.Builder, s, "", nil); err != nil {
		return build.Stage{}, fmt.Errorf("installing go, node, yarn and pnpm: %w", err)
	}
	r.logf("go, node, yarn and pnpm installed in %s", secs(time.Since(start)))
	return s, nil
}

// goWorkload downloads a go.mod's modules, then those and one more.
func goWorkload(tools build.Stage, ca []llb.RunOption) workload {
	download := func(list string) string {
		var req strings.Builder
		for _, m := range strings.Fields(list) {
			path, version, _ := strings.Cut(m, "@")
			req.WriteString("\\t" + path + " " + version + "\\n")
		}
		return "mkdir -p /src && cd /src && printf 'module bench\\n\\ngo 1.19\\n\\nrequire (\\n" + req.String() + ")\\n' > go.mod && go mod download -x"
	}
	return workload{
		name:     "go",
		minReps:  3,
		first:    "golang.org/x/text@v0.14.0 golang.org/x/net@v0.21.0 golang.org/x/sys@v0.17.0 golang.org/x/tools@v0.18.0",
		second:   "golang.org/x/text@v0.14.0 golang.org/x/net@v0.21.0 golang.org/x/sys@v0.17.0 golang.org/x/tools@v0.18.0 github.com/sirupsen/logrus@v1.9.3",
		base:     tools,
		marker:   "go mod download",
		opts:     append(ca[:len(ca):len(ca)], llb.AddEnv("GOFLAGS", "-mod=mod")),
		baseline: download,
		variants: []variant{
			{name: "preset", cmd: download, preset: func(project string) llb.RunOption { return cache.Go(cache.Project(project)) }},
		},
		unit: "module zips",
		// "# get https://proxy.golang.org/github.com/google/uuid/@v/v1.6.0.zip"
		downloads: countLines(func(l string) bool { return strings.HasPrefix(l, "# get ") && strings.HasSuffix(l, ".zip") }),
	}
}

func countLines(match func(string) bool) func([]logLine) int {
	return func(lines []logLine) int {
		n := 0
		for _, l := range lines {
			if match(l.text) {
				n++
			}
		}
		return n
	}
}
