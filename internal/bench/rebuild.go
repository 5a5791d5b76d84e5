package bench

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/moby/buildkit/client/llb"

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
	// dpkg reports the first line dpkg writes, where the step stops
	// downloading and starts installing; nil when the step has no such
	// line.
	dpkg func(line string) bool
}

// variant is one way to write the install step with cache mounts.
type variant struct {
	name   string
	cmd    func(list string) string
	preset func(project string) llb.RunOption
}

// measurement is what one rebuild's install step did.
type measurement struct {
	step      time.Duration
	dpkg      time.Duration // from dpkg's first line to the step's end; 0 when not split
	bytes     int64         // through the throttling proxy; 0 for direct runs
	downloads int
	lines     []logLine // the step's output
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
		for _, name := range []string{"go", "npm"} {
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
				dpkg := ""
				if w.dpkg != nil {
					dpkg = " (dpkg " + secs(m.dpkg) + ")"
				}
				r.logf("%s rep %d %-9s %-26s step %s%s, %s, %d %s", w.name, rep+1, n.name, v.name,
					secs(m.step), dpkg, mb(m.bytes), m.downloads, w.unit)
			}
		}
	}
	rate := fmt.Sprintf("%g MB/s", float64(r.cfg.Rate)/1e6)
	sum := func(key string) (step, dpkg time.Duration, bytes int64, downloads int) {
		var dpkgs []time.Duration
		var bs []int64
		for _, m := range got[key] {
			dpkgs, bs = append(dpkgs, m.dpkg), append(bs, m.bytes)
			downloads = m.downloads
		}
		return median(steps(got[key])), median(dpkgs), medianInt(bs), downloads
	}
	paired := func(a, b string) float64 { return pairedRatio(steps(got[a]), steps(got[b])) }
	scen := "1 " + w.name
	bStep, bDpkg, bBytes, bDown := sum("throttled/baseline")
	dStep, dDpkg, _, _ := sum("direct/baseline")
	for _, v := range w.variants {
		vStep, vDpkg, vBytes, vDown := sum("throttled/" + v.name)
		share := ratio(float64(vBytes), float64(bBytes))
		r.table.add(Row{
			Scenario: scen,
			Figure:   "bytes the rebuild downloads: " + v.name + " / baseline",
			Value:    fmt.Sprintf("%s / %s = %.1f%%", mb(vBytes), mb(bBytes), 100*share),
			Target:   "≤ 10%",
			Verdict:  atMost(share, 0.10),
			Note:     fmt.Sprintf("proxy's count; %s's output: %d %s fetched vs %d", w.name, vDown, w.unit, bDown) + notes[v.name],
		})
		tr := paired("throttled/"+v.name, "throttled/baseline")
		r.table.add(Row{
			Scenario: scen,
			Figure:   "rebuild step at " + rate + ": " + v.name + " / baseline",
			Value:    timeRatio(tr, vStep, bStep),
			Target:   "≤ 0.5×",
			Verdict:  atMost(tr, 0.5),
			Note:     orElse(phases(w, vStep, vDpkg, bStep, bDpkg), fmt.Sprintf("%s vs %s through the proxy", mb(vBytes), mb(bBytes))),
		})
		xStep, xDpkg, _, _ := sum("direct/" + v.name)
		dr := paired("direct/"+v.name, "direct/baseline")
		r.table.add(Row{
			Scenario: scen,
			Figure:   "rebuild step, direct: " + v.name + " / baseline",
			Value:    timeRatio(dr, xStep, dStep),
			Target:   "≤ 1.0×",
			Verdict:  atMost(dr, 1.0),
			Note:     phases(w, xStep, xDpkg, dStep, dDpkg),
		})
	}
	return nil
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

// phases says how much of each step dpkg took, when the workload splits.
func phases(w workload, v, vDpkg, b, bDpkg time.Duration) string {
	if w.dpkg == nil {
		return ""
	}
	return fmt.Sprintf("dpkg %s of %s (%.0f%%); baseline: dpkg %s of %s", secs(vDpkg), secs(v),
		100*ratio(vDpkg.Seconds(), v.Seconds()), secs(bDpkg), secs(b))
}

// rebuildSample builds w with its first list and the variant's caches
// (not for the baseline, whose caches, if any, are in layers the change
// discards), then times the rebuild with the second list, through px.
func (r *runner) rebuildSample(ctx context.Context, w workload, v variant, px *Proxy) (measurement, error) {
	var preset []llb.RunOption
	if v.preset != nil {
		preset = append(preset, v.preset(r.tag(w.name)))
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
	m := measurement{step: s.step.Duration(), bytes: s.bytes, downloads: w.downloads(s.lines), lines: s.lines}
	if w.dpkg != nil {
		for _, l := range s.lines {
			if w.dpkg(l.text) {
				m.dpkg = s.step.Completed.Sub(l.t)
				break
			}
		}
	}
	return m, nil
}

func concat(lists ...[]llb.RunOption) []llb.RunOption {
	var out []llb.RunOption
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// workloads returns apt, go and npm on Debian, or, for a smoke run, a
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
	return append(ws, goWorkload(tools, ca), npmWorkload(tools, ca)), nil
}

// aptWorkload installs gcc, then gcc and curl, from Debian's mirror.
func aptWorkload(debian string) workload {
	install := func(flags string) func(string) string {
		return func(list string) string {
			return "apt-get update && apt-get install -y --no-install-recommends " + flags + list
		}
	}
	preset := func(project string) llb.RunOption { return cache.Apt(cache.Project(project)) }
	return workload{
		name: "apt", first: "gcc", second: "gcc curl",
		base:   build.Image(debian),
		marker: "apt-get install",
		baseline: func(list string) string {
			return install("")(list) + " && rm -rf /var/lib/apt/lists/*"
		},
		variants: []variant{
			{"preset", install(""), preset},
			{"preset + unsafe-io", install("-o Dpkg::Options::=--force-unsafe-io "), preset},
		},
		unit: "packages",
		// "Get:3 http://deb.debian.org/debian bookworm/main amd64 curl amd64 7.88.1-10 [315 kB]";
		// index downloads have fewer fields.
		downloads: countLines(func(l string) bool { return aptFetched(l) != "" }),
		fetched:   aptFetched,
		extras:    []string{"curl", "wget", "file"},
		dpkg: func(l string) bool {
			return strings.HasPrefix(l, "Selecting previously unselected package") || strings.HasPrefix(l, "Preparing to unpack")
		},
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

// npmTarball is npm itself, which the npm workload installs from the npm
// registry: Debian's npm package pulls in almost 400 packages.
const (
	npmTarball = "https://registry.npmjs.org/npm/-/npm-10.8.2.tgz"
	npmSHA256  = "sha256:c8c61ba0fa0ab3b5120efd5ba97fdaf0e0b495eef647a97c4413919eda0a878b"
)

// tools is Debian with go and node, on which the go and npm workloads run.
// It is built once, before any of them is timed.
func (r *runner) tools(ctx context.Context, debian string) (build.Stage, error) {
	s := build.Image(debian).
		Run("apt-get update && apt-get install -y --no-install-recommends -o Dpkg::Options::=--force-unsafe-io golang-go ca-certificates nodejs",
			cache.Apt(cache.Project("bench-tools"))).
		Run("mkdir -p /usr/local/lib/npm && tar -xzf /npm/npm-10.8.2.tgz -C /usr/local/lib/npm --strip-components=1 && "+
			"ln -s /usr/local/lib/npm/bin/npm-cli.js /usr/local/bin/npm && npm --version",
			mounts.Bind("/npm", build.HTTP(npmTarball, build.Checksum(npmSHA256))))
	start := time.Now()
	if _, err := r.solve(ctx, r.env.Builder, s, "", nil); err != nil {
		return build.Stage{}, fmt.Errorf("installing go and node: %w", err)
	}
	r.logf("go and node installed in %s", secs(time.Since(start)))
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
			{"preset", download, func(project string) llb.RunOption { return cache.Go(cache.Project(project)) }},
		},
		unit: "module zips",
		// "# get https://proxy.golang.org/github.com/google/uuid/@v/v1.6.0.zip"
		downloads: countLines(func(l string) bool { return strings.HasPrefix(l, "# get ") && strings.HasSuffix(l, ".zip") }),
	}
}

// npmWorkload installs three packages, then those and one more.
func npmWorkload(tools build.Stage, ca []llb.RunOption) workload {
	install := func(flags string) func(string) string {
		return func(list string) string {
			return "mkdir -p /app && cd /app && echo '{}' > package.json && npm install --no-audit --no-fund --loglevel=http " + flags + list
		}
	}
	preset := func(project string) llb.RunOption { return cache.Npm(cache.Project(project)) }
	return workload{
		name:     "npm",
		minReps:  3,
		first:    "lodash@4.17.21 express@4.19.2 typescript@5.4.5",
		second:   "lodash@4.17.21 express@4.19.2 typescript@5.4.5 left-pad@1.3.0",
		base:     tools,
		marker:   "npm install",
		opts:     ca,
		baseline: install(""),
		variants: []variant{
			{"preset", install(""), preset},
			{"preset + --prefer-offline", install("--prefer-offline "), preset},
		},
		unit: "tarballs",
		// "npm http fetch GET 200 https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz 359ms (cache miss)"
		downloads: countLines(func(l string) bool {
			return strings.HasPrefix(l, "npm http fetch GET 200 ") && strings.Contains(l, ".tgz") && !strings.Contains(l, "(cache hit)")
		}),
		// npm revalidates the metadata it has cached: "(cache revalidated)"
		// when the registry answers 304, "(cache updated)" when it sends
		// the metadata again.
		explain: func(lines []logLine) string {
			updated := countLines(func(l string) bool {
				return strings.HasPrefix(l, "npm http fetch GET 200 ") && !strings.Contains(l, ".tgz") && strings.Contains(l, "(cache updated)")
			})(lines)
			revalidated := countLines(func(l string) bool { return strings.Contains(l, "(cache revalidated)") })(lines)
			if updated+revalidated == 0 {
				return ""
			}
			return fmt.Sprintf("; revalidating cached metadata, npm got %d packages' metadata again in full and %d answers of 304", updated, revalidated)
		},
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
