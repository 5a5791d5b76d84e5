package bench

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/moby/buildkit/client/llb"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/cache"
	"github.com/larder-build/larder/mounts"
)

// nodeProject is a small node project in two versions: v1 depends on
// express, lodash and typescript, v2 on those and left-pad, every version
// pinned. Each version has the lockfiles of npm (package-lock.json), yarn
// classic (yarn.lock) and pnpm (pnpm-lock.yaml), made once from its
// package.json in the tools stage (npm 10.8.2, yarn 1.22.22, pnpm 9.15.9)
// by `npm install --package-lock-only`, `yarn install` and
// `pnpm install --lockfile-only`, v2's from v1's, so that v2 adds left-pad
// and changes nothing else. They resolve the same 73 packages, 74 in v2.
//
//go:embed testdata/node
var nodeProject embed.FS

// projectDir is where the node workloads' steps see nodeProject: its
// versions are /project/v1 and /project/v2.
const projectDir = "/project"

// projectMount shows nodeProject to a step at projectDir, read-only: a
// scratch filesystem that the definition carries.
func projectMount() (llb.RunOption, error) {
	var fa *llb.FileAction
	err := fs.WalkDir(nodeProject, "testdata/node", func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == "testdata/node" {
			return err
		}
		rel := "/" + strings.TrimPrefix(p, "testdata/node/")
		if d.IsDir() {
			if fa == nil {
				fa = llb.Mkdir(rel, 0o755)
			} else {
				fa = fa.Mkdir(rel, 0o755)
			}
			return nil
		}
		data, err := nodeProject.ReadFile(p)
		if err != nil {
			return err
		}
		if fa == nil {
			fa = llb.Mkfile(rel, 0o644, data)
		} else {
			fa = fa.Mkfile(rel, 0o644, data)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("the node project: %w", err)
	}
	st := llb.Scratch().File(fa, llb.WithCustomName("[bench] node project"))
	return mounts.Bind(projectDir, mounts.Named("node-project", mounts.FromState(st))), nil
}

// fromProject returns the start of a node workload's command: /app holds
// the version's package.json and lockfile, as after Docker's
// `COPY package.json <lockfile> ./`.
func fromProject(version, lockfile string) string {
	dir := path.Join(projectDir, version)
	return fmt.Sprintf("mkdir -p /app && cd /app && cp %s/package.json %s/%s . && ", dir, dir, lockfile)
}

// nodeWorkloads are the node package managers' rebuilds, on tools (which
// has node, npm, yarn and pnpm): npm ci with its lockfile (the Docker
// docs' recipe, the primary npm figure), npm install without a lockfile,
// yarn and pnpm with theirs.
func nodeWorkloads(tools build.Stage, ca []llb.RunOption) ([]workload, error) {
	project, err := projectMount()
	if err != nil {
		return nil, err
	}
	withProject := append(ca[:len(ca):len(ca)], project)
	return []workload{
		npmCIWorkload(tools, withProject),
		npmWorkload(tools, ca),
		yarnWorkload(tools, withProject),
		pnpmWorkload(tools, withProject),
	}, nil
}

func npmPreset(project string) llb.RunOption { return cache.Npm(cache.Project(project)) }

// npmTarballs counts the tarballs npm's output (at --loglevel=http) says
// it downloaded: "npm http fetch GET 200
// https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz 359ms (cache miss)".
var npmTarballs = countLines(func(l string) bool {
	return strings.HasPrefix(l, "npm http fetch GET 200 ") && strings.Contains(l, ".tgz") && !strings.Contains(l, "(cache hit)")
})

// npmCIWorkload is the Docker docs' recipe for npm: `npm ci` with the
// project's package-lock.json, v1's, then v2's.
func npmCIWorkload(tools build.Stage, opts []llb.RunOption) workload {
	install := func(version string) string {
		return fromProject(version, "package-lock.json") + "npm ci --no-audit --no-fund --loglevel=http"
	}
	return workload{
		name:      "npm ci",
		minReps:   3,
		first:     "v1",
		second:    "v2",
		base:      tools,
		marker:    "npm ci",
		opts:      opts,
		baseline:  install,
		variants:  []variant{{name: "preset", cmd: install, preset: npmPreset}},
		unit:      "tarballs",
		downloads: npmTarballs,
		explain:   npmExplain(false),
	}
}

// npmWorkload installs three packages without a lockfile, then those and
// one more.
func npmWorkload(tools build.Stage, ca []llb.RunOption) workload {
	install := func(flags string) func(string) string {
		return func(list string) string {
			return "mkdir -p /app && cd /app && echo '{}' > package.json && npm install --no-audit --no-fund --loglevel=http " + flags + list
		}
	}
	return workload{
		name:     "npm install",
		minReps:  3,
		first:    "lodash@4.17.21 express@4.19.2 typescript@5.4.5",
		second:   "lodash@4.17.21 express@4.19.2 typescript@5.4.5 left-pad@1.3.0",
		base:     tools,
		marker:   "package.json && npm install",
		opts:     ca,
		baseline: install(""),
		variants: []variant{
			{name: "preset", cmd: install(""), preset: npmPreset},
			{name: "preset + --prefer-offline", cmd: install("--prefer-offline "), preset: npmPreset},
		},
		unit:      "tarballs",
		downloads: npmTarballs,
		explain:   npmExplain(true),
	}
}

// npmExplain says what else npm fetched than tarballs: the metadata it
// revalidates, when revalidation, and its check for a newer npm.
func npmExplain(revalidation bool) func([]logLine) string {
	return func(lines []logLine) string {
		var parts []string
		if revalidation {
			// npm revalidates the metadata it has cached: "(cache
			// revalidated)" when the registry answers 304, "(cache
			// updated)" when it sends the metadata again.
			updated := countLines(func(l string) bool {
				return strings.HasPrefix(l, "npm http fetch GET 200 ") && !strings.Contains(l, ".tgz") && strings.Contains(l, "(cache updated)")
			})(lines)
			revalidated := countLines(func(l string) bool { return strings.Contains(l, "(cache revalidated)") })(lines)
			if updated+revalidated > 0 {
				parts = append(parts, fmt.Sprintf("revalidating cached metadata, npm got %d packages' metadata again in full and %d answers of 304", updated, revalidated))
			}
		}
		// "npm http fetch GET 200 https://registry.npmjs.org/npm 437ms":
		// npm's update notifier, which runs at most once a week and keeps
		// when it last did in npm's cache.
		if countLines(func(l string) bool {
			return strings.HasPrefix(l, "npm http fetch GET 200 https://registry.npmjs.org/npm ")
		})(lines) > 0 {
			parts = append(parts, "npm checked for a newer npm (npm's own metadata, about 3 MB; npm's cache remembers the check for a week)")
		}
		if len(parts) == 0 {
			return ""
		}
		return "; " + strings.Join(parts, "; ")
	}
}

func yarnPreset(project string) llb.RunOption { return cache.Yarn(cache.Project(project)) }

// yarnWorkload is `yarn install --frozen-lockfile` with the project's
// yarn.lock, v1's, then v2's.
func yarnWorkload(tools build.Stage, opts []llb.RunOption) workload {
	install := func(version string) string {
		return fromProject(version, "yarn.lock") + "yarn install --frozen-lockfile --non-interactive --no-progress --verbose"
	}
	return workload{
		name:     "yarn",
		minReps:  3,
		first:    "v1",
		second:   "v2",
		base:     tools,
		marker:   "yarn install",
		opts:     opts,
		baseline: install,
		variants: []variant{{name: "preset", cmd: install, preset: yarnPreset}},
		unit:     "tarballs",
		// verbose 1.2 Performing "GET" request to "https://registry.yarnpkg.com/left-pad/-/left-pad-1.3.0.tgz".
		downloads: countLines(func(l string) bool {
			return strings.Contains(l, `Performing "GET" request to "`) && strings.Contains(l, ".tgz")
		}),
	}
}

func pnpmPreset(project string) llb.RunOption { return cache.Pnpm(cache.Project(project)) }

// pnpmProgress is pnpm's progress line, the last of which says how many
// packages it downloaded: "Progress: resolved 74, reused 73, downloaded 1,
// added 74, done".
var pnpmProgress = regexp.MustCompile(`downloaded (\d+)`)

// pnpmWorkload is `pnpm install --frozen-lockfile` with the project's
// pnpm-lock.yaml, v1's, then v2's. pnpm's update check is off on both
// sides: outside CI, pnpm fetches its own metadata (1.8 MB) on every build
// to say that a newer pnpm exists, as its state, which says when it last
// checked, is not in the store; that is not what the cache is for.
func pnpmWorkload(tools build.Stage, opts []llb.RunOption) workload {
	opts = append(opts[:len(opts):len(opts)], llb.AddEnv("npm_config_update_notifier", "false"))
	install := func(version string) string {
		return fromProject(version, "pnpm-lock.yaml") + "pnpm install --frozen-lockfile --reporter=append-only"
	}
	return workload{
		name:     "pnpm",
		minReps:  3,
		first:    "v1",
		second:   "v2",
		base:     tools,
		marker:   "pnpm install",
		opts:     opts,
		baseline: install,
		variants: []variant{{name: "preset", cmd: install, preset: pnpmPreset}},
		unit:     "tarballs",
		downloads: func(lines []logLine) int {
			n := 0
			for _, l := range lines {
				if m := pnpmProgress.FindStringSubmatch(l.text); m != nil {
					n, _ = strconv.Atoi(m[1])
				}
			}
			return n
		},
	}
}

// runOptions applies several run options as one.
type runOptions []llb.RunOption

func (o runOptions) SetRunOption(ei *llb.ExecInfo) {
	for _, r := range o {
		r.SetRunOption(ei)
	}
}
