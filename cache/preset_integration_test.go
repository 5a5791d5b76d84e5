package cache_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/client/llb"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/cache"
	"github.com/larder-build/larder/internal/testenv"
	"github.com/larder-build/larder/mounts"
)

// These tests run the presets' package managers inside real builds on the
// integration environment's buildkitd, and count what each one downloads
// from its own output, never from timings.

func TestMain(m *testing.M) { testenv.Main(m) }

// presetCtx returns a context that ends with the test.
func presetCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// presetNonce makes project names and commands unique to this run.
func presetNonce() string { return strconv.FormatInt(time.Now().UnixNano(), 36) }

// presetDebian returns the environment and its Debian bookworm image.
func presetDebian(t *testing.T) (*testenv.Env, string) {
	t.Helper()
	env := testenv.Get(t)
	ref, err := env.Debian(presetCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	return env, ref
}

// presetSolve solves s and returns the result and the lines its steps
// printed.
func presetSolve(t *testing.T, env *testenv.Env, s build.Stage, opts ...build.SolveOption) (*build.Result, []string) {
	t.Helper()
	var out testenv.LogLines
	res, err := build.Solve(presetCtx(t), env.Builder, s, append(opts, build.OnEvent(out.Record))...)
	if err != nil {
		t.Fatalf("solve: %v", err)
	}
	return res, out.Lines()
}

// presetFiles solves s and returns the regular files under /out of its
// result, by path relative to /out, copied through a scratch stage so that
// only they are exported.
func presetFiles(t *testing.T, env *testenv.Env, s build.Stage, opts ...build.SolveOption) (map[string]string, *build.Result, []string) {
	t.Helper()
	dir := t.TempDir()
	res, lines := presetSolve(t, env, build.Scratch().Copy(s, "/out", "/"), append(opts, build.LocalDir(dir))...)
	files := map[string]string{}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			rel, _ := filepath.Rel(dir, p)
			files[rel] = string(b)
		}
		return nil
	})
	return files, res, lines
}

// hostTrust returns the Run options that make a step trust the
// certificate authorities the host trusts: the host's network may
// intercept TLS with an authority of its own.
func hostTrust(t *testing.T) []llb.RunOption {
	t.Helper()
	opts, err := testenv.HostCA()
	if err != nil {
		testenv.Unavailable(t, err)
	}
	return opts
}

var tools struct {
	once  sync.Once
	stage build.Stage
	err   error
	took  time.Duration
}

// toolStage returns a Debian stage with pip, npm, Go and Cargo installed
// through the apt preset. It is solved once per test binary; later solves
// of stages built on it find it in the builder's cache.
func toolStage(t *testing.T) (*testenv.Env, build.Stage) {
	t.Helper()
	env, deb := presetDebian(t)
	tools.once.Do(func() {
		start := time.Now()
		tools.stage = build.Image(deb).Run(
			"apt-get update && apt-get install -y --no-install-recommends ca-certificates python3-pip npm golang-go cargo",
			cache.Apt(cache.Project("larder-test-tools")))
		_, tools.err = build.Solve(presetCtx(t), env.Builder, tools.stage)
		tools.took = time.Since(start)
	})
	if tools.err != nil {
		t.Fatalf("installing the tools: %v", tools.err)
	}
	t.Logf("tool stage: built in %v (once per test binary)", tools.took.Round(time.Second))
	return env, tools.stage
}

// aptFetch is what apt printed about one solve.
type aptFetch struct {
	packages map[string]string // package -> size, from "Get:" lines
	indexes  []string          // index files downloaded (InRelease, Packages…)
	need     string            // apt's "Need to get …" line
	fetched  []string          // apt's "Fetched …" lines
}

// readApt reads apt's output: a package download is
// "Get:3 http://deb.debian.org/debian bookworm/main amd64 curl amd64 7.88.1-10+deb12u5 [315 kB]"
// (9 or more fields); an index download
// "Get:1 http://deb.debian.org/debian bookworm InRelease [151 kB]" has fewer.
func readApt(lines []string) aptFetch {
	f := aptFetch{packages: map[string]string{}}
	for _, l := range lines {
		fields := strings.Fields(l)
		switch {
		case strings.HasPrefix(l, "Get:") && len(fields) >= 9:
			f.packages[fields[4]] = strings.Trim(strings.Join(fields[len(fields)-2:], " "), "[]")
		case strings.HasPrefix(l, "Get:"):
			f.indexes = append(f.indexes, strings.Join(fields[2:], " "))
		case strings.HasPrefix(l, "Need to get "):
			f.need = l
		case strings.HasPrefix(l, "Fetched "):
			f.fetched = append(f.fetched, l)
		}
	}
	return f
}

func TestAptPresetDownloadsOnlyNewPackages(t *testing.T) {
	env, deb := presetDebian(t)
	apt := cache.Apt(cache.Project("apt-" + presetNonce()))
	install := func(pkgs string) build.Stage {
		return build.Image(deb).Run("apt-get update && apt-get install -y --no-install-recommends "+pkgs, apt)
	}
	_, lines1 := presetSolve(t, env, install("gcc"))
	ref := env.Registry + "/test/apt-preset:" + presetNonce()
	res2, lines2 := presetSolve(t, env, install("gcc curl"), build.Push(ref))
	first, second := readApt(lines1), readApt(lines2)

	t.Logf("build 1 (gcc): %d packages; index files %q; %s; %q", len(first.packages), first.indexes, first.need, first.fetched)
	t.Logf("build 2 (gcc curl): %d packages; index files %q; %s; %q", len(second.packages), second.indexes, second.need, second.fetched)
	t.Logf("build 2 downloaded: %v", second.packages)
	if _, ok := first.packages["gcc"]; !ok {
		t.Fatalf("build 1 did not download gcc; apt printed:\n%s", strings.Join(lines1, "\n"))
	}
	if _, ok := second.packages["curl"]; !ok {
		t.Fatalf("build 2 did not download curl; apt printed:\n%s", strings.Join(lines2, "\n"))
	}
	for pkg := range second.packages {
		if _, ok := first.packages[pkg]; ok {
			t.Errorf("build 2 downloaded %s again, which build 1 had downloaded into the cache", pkg)
		}
	}
	if len(second.packages) >= len(first.packages) {
		t.Errorf("build 2 downloaded %d packages, build 1 %d: the cache saved nothing", len(second.packages), len(first.packages))
	}
	if len(res2.Report.Warnings) != 0 {
		t.Errorf("warnings for a clean apt step: %q", res2.Report.Warnings)
	}

	// The image: the step's layer changes nothing in /etc/apt/apt.conf.d
	// and holds no mount point the preset's mounts needed, and the
	// flattened image has the base's apt configuration.
	img := testenv.Pull(t, ref)
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	top := layerEntries(t, layers[len(layers)-1])
	var confEntries []string
	for p, h := range top {
		switch {
		case strings.HasPrefix(p, "etc/apt/apt.conf.d/"):
			confEntries = append(confEntries, p)
		case p == "etc/apt/apt.conf.d" || p == "etc/apt" || p == "etc":
			t.Logf("the step's layer has the directory %s (mode %o, mtime %v)", p, h.Mode, h.ModTime.UTC())
		case strings.HasPrefix(p, "var/cache/apt/archives/") && strings.HasSuffix(p, ".deb"):
			t.Errorf("the step's layer holds the downloaded package %s", p)
		case strings.HasPrefix(p, "var/lib/apt/lists/") && !strings.HasSuffix(p, "/"):
			t.Errorf("the step's layer holds the package list %s", p)
		}
	}
	if len(confEntries) > 0 {
		slices.Sort(confEntries)
		t.Errorf("the step's layer changes /etc/apt/apt.conf.d: %v", confEntries)
	}
	base := confFiles(t, testenv.Pull(t, deb))
	got := confFiles(t, img)
	if _, ok := base["etc/apt/apt.conf.d/docker-clean"]; !ok {
		t.Fatalf("the base image has no docker-clean: %v", slices.Sorted(maps.Keys(base)))
	}
	if !maps.Equal(base, got) {
		t.Errorf("/etc/apt/apt.conf.d differs from the base image's:\nbase %v\ngot  %v", slices.Sorted(maps.Keys(base)), slices.Sorted(maps.Keys(got)))
	}
	t.Logf("the step's layer has %d entries; /etc/apt/apt.conf.d holds %v as in the base", len(top), slices.Sorted(maps.Keys(got)))
}

// The apt preset's files hide docker-clean during the step and keep apt's
// downloads; the next step, without the preset, sees the image's files.
func TestAptPresetFilesAreSeenOnlyDuringTheStep(t *testing.T) {
	env, deb := presetDebian(t)
	s := build.Image(deb).
		Run("mkdir /out && wc -c < /etc/apt/apt.conf.d/docker-clean > /out/during-clean && "+
			"apt-config dump | grep -i keep-downloaded > /out/during-keep; "+
			"rm -f /etc/apt/apt.conf.d/docker-clean 2> /out/rm-error; echo $? > /out/rm-status # "+presetNonce(),
			cache.Apt(cache.Project("files-"+presetNonce()))).
		Run("wc -c < /etc/apt/apt.conf.d/docker-clean > /out/after-clean; ls -A /etc/apt/apt.conf.d > /out/after-list")
	files, res, _ := presetFiles(t, env, s)
	if got := strings.TrimSpace(files["during-clean"]); got != "0" {
		t.Errorf("docker-clean during the step has %s bytes, want an empty file", got)
	}
	for _, want := range []string{`APT::Keep-Downloaded-Packages "true";`, `Binary::apt::APT::Keep-Downloaded-Packages "true";`} {
		if !strings.Contains(files["during-keep"], want) {
			t.Errorf("apt-config during the step lacks %s:\n%s", want, files["during-keep"])
		}
	}
	if got := strings.TrimSpace(files["after-clean"]); got == "0" || got == "" {
		t.Errorf("docker-clean after the step has %q bytes, want the image's file", got)
	}
	if strings.Contains(files["after-list"], "larder") {
		t.Errorf("the preset's file is left in the image: %q", files["after-list"])
	}
	t.Logf("rm -f docker-clean in the step: exit %s, %q", strings.TrimSpace(files["rm-status"]), strings.TrimSpace(files["rm-error"]))
	if strings.TrimSpace(files["rm-status"]) == "0" {
		t.Errorf("rm of the mounted docker-clean succeeded; the warning says it fails")
	}
	if !slices.ContainsFunc(res.Report.Warnings, func(w string) bool { return strings.Contains(w, "docker-clean") }) {
		t.Errorf("no warning about rm of docker-clean: %q", res.Report.Warnings)
	}
}

// layerEntries returns the entries of a layer by path, without leading
// "./" or "/" and trailing "/".
func layerEntries(t *testing.T, l v1.Layer) map[string]*tar.Header {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	out := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(h.Name, "./"), "/"), "/")] = h
	}
}

// confFiles returns the files of /etc/apt/apt.conf.d in the flattened img,
// with their modes and contents.
func confFiles(t *testing.T, img v1.Image) map[string]string {
	t.Helper()
	out := map[string]string{}
	testenv.WalkImage(t, img, func(p string, h *tar.Header, r io.Reader) {
		if strings.HasPrefix(p, "etc/apt/apt.conf.d/") && h.Typeflag != tar.TypeDir {
			b, _ := io.ReadAll(r)
			out[p] = fmt.Sprintf("%o:%s", h.Mode, b)
		}
	})
	return out
}

// Two projects keep their caches apart; one project shares its cache
// between builds.
func TestPresetProjectsDoNotShareCaches(t *testing.T) {
	env := testenv.Get(t)
	bb, err := env.Busybox(presetCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	n := presetNonce()
	a, b := cache.Npm(cache.Project("a-"+n)), cache.Npm(cache.Project("b-"+n))
	presetSolve(t, env, build.Image(bb).Run("echo from-a > /root/.npm/marker", a))
	files, _, _ := presetFiles(t, env, build.Image(bb).Run("mkdir /out && ls -A /root/.npm > /out/b && ls -A \"$npm_config_cache\" > /out/b-env", b))
	if files["b"] != "" || files["b-env"] != "" {
		t.Errorf("project b sees %q in its npm cache, want nothing", files["b"])
	}
	files, _, _ = presetFiles(t, env, build.Image(bb).Run("mkdir /out && cat /root/.npm/marker > /out/a", a))
	if files["a"] != "from-a\n" {
		t.Errorf("project a's next build reads %q from its cache, want from-a", files["a"])
	}
}

// One graph built for linux/amd64 and for linux/arm64 (emulated) on one
// builder: each platform has its own cache.
func TestPresetPlatformsDoNotShareCaches(t *testing.T) {
	env := testenv.Get(t)
	bb, err := env.Busybox(presetCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(env.Builder.Platforms()) < 2 {
		testenv.Unavailable(t, fmt.Errorf("the builder runs only %v (no emulation; run scripts/setup)", env.Builder.Platforms()))
	}
	p := cache.Pip(cache.Project("plat-" + presetNonce()))
	seen := map[string]string{}
	for _, pl := range []string{"linux/amd64", "linux/arm64", "linux/amd64"} {
		s := build.Image(bb).Run("mkdir /out; uname -m > /out/arch; ls -A /root/.cache/pip > /out/before; uname -m > /root/.cache/pip/$(uname -m) # "+presetNonce(), p)
		files, _, _ := presetFiles(t, env, s, build.Platforms(pl))
		seen[strings.TrimSpace(files["arch"])] += "[" + strings.Join(strings.Fields(files["before"]), " ") + "]"
	}
	t.Logf("what each platform's step saw in its cache, build by build: %v", seen)
	if seen["x86_64"] != "[][x86_64]" || seen["aarch64"] != "[]" {
		t.Errorf("caches seen %v, want x86_64 to see only its own file on its second build and aarch64 an empty cache", seen)
	}
}

// npmFetches reads npm's --loglevel=http output, lines such as
// "npm http fetch GET 200 https://registry.npmjs.org/ms/-/ms-2.1.3.tgz 35ms (cache miss)",
// and returns the package tarballs npm downloaded and those its cache
// served.
func npmFetches(lines []string) (downloaded, cached []string) {
	for _, l := range lines {
		i := strings.Index(l, "http fetch GET ")
		if i < 0 {
			continue
		}
		fields := strings.Fields(l[i:])
		if len(fields) < 5 || !strings.HasSuffix(fields[4], ".tgz") {
			continue
		}
		tarball := fields[4][strings.LastIndex(fields[4], "/")+1:]
		if strings.Contains(l, "(cache hit)") {
			cached = append(cached, tarball)
		} else {
			downloaded = append(downloaded, tarball)
		}
	}
	return downloaded, cached
}

func TestNpmPresetDownloadsOnlyNewPackages(t *testing.T) {
	env, tools := toolStage(t)
	npm := cache.Npm(cache.Project("npm-" + presetNonce()))
	install := func(deps string) build.Stage {
		pkg := `{"name": "app", "version": "1.0.0", "private": true, "dependencies": {` + deps + `}}`
		return tools.Run("mkdir -p /app && cd /app && printf '%s' '"+pkg+"' > package.json && "+
			"npm install --loglevel=http --no-audit --no-fund --no-update-notifier # "+npm.Project(), append(hostTrust(t), npm)...)
	}
	_, lines1 := presetSolve(t, env, install(`"is-number": "7.0.0"`))
	_, lines2 := presetSolve(t, env, install(`"is-number": "7.0.0", "ms": "2.1.3"`))
	down1, hit1 := npmFetches(lines1)
	down2, hit2 := npmFetches(lines2)
	t.Logf("build 1: downloaded %v, from cache %v", down1, hit1)
	t.Logf("build 2: downloaded %v, from cache %v", down2, hit2)
	if !slices.Equal(down1, []string{"is-number-7.0.0.tgz"}) {
		t.Fatalf("build 1 downloaded %v, want is-number; npm printed:\n%s", down1, strings.Join(lines1, "\n"))
	}
	if !slices.Equal(down2, []string{"ms-2.1.3.tgz"}) {
		t.Errorf("build 2 downloaded %v, want only ms; npm printed:\n%s", down2, strings.Join(lines2, "\n"))
	}
	for _, l := range lines2 {
		if strings.Contains(l, "http fetch") {
			t.Logf("build 2: %s", l)
		}
	}
	// The control: in another project's (empty) cache, the same install
	// downloads both. (The command names the project: BuildKit leaves cache
	// ids out of a step's cache key, so without it the step would come from
	// build 2's cache.)
	npm = cache.Npm(cache.Project("npm-control-" + presetNonce()))
	_, lines3 := presetSolve(t, env, install(`"is-number": "7.0.0", "ms": "2.1.3"`))
	if down3, _ := npmFetches(lines3); len(down3) != 2 {
		t.Errorf("with an empty cache the install downloaded %v, want both packages", down3)
	}
}

// goFetches reads `go mod download -x` output ("# get https://proxy.golang.org/github.com/pkg/errors/@v/v0.9.1.zip")
// and returns the files fetched from the module proxy, and the packages
// `go build -x` compiled ("compile -o … -p github.com/pkg/errors …").
func goFetches(lines []string) (fetched, compiled []string) {
	for _, l := range lines {
		if u, ok := strings.CutPrefix(l, "# get "); ok && !strings.Contains(u, ": ") {
			fetched = append(fetched, strings.TrimPrefix(u, "https://proxy.golang.org/"))
		}
		if f := strings.Fields(l); len(f) > 0 && strings.HasSuffix(f[0], "/compile") {
			if i := slices.Index(f, "-p"); i > 0 && i+1 < len(f) {
				compiled = append(compiled, f[i+1])
			}
		}
	}
	slices.Sort(fetched)
	return fetched, compiled
}

func TestGoPresetDownloadsOnlyNewModules(t *testing.T) {
	env, tools := toolStage(t)
	gop := cache.Go(cache.Project("go-" + presetNonce()))
	build1 := func(mods []string, imports []string, use string) build.Stage {
		var req, imp strings.Builder
		for _, m := range mods {
			req.WriteString("require " + m + "\n")
		}
		for _, i := range imports {
			imp.WriteString("import _ \"" + i + "\"\n")
		}
		script := "mkdir -p /src && cd /src && cat > go.mod <<'EOF'\nmodule example.com/app\n\ngo 1.19\n\n" + req.String() + "EOF\n" +
			"cat > main.go <<'EOF'\npackage main\n\n" + imp.String() + "\nfunc main() { println(\"" + use + "\") }\nEOF\n" +
			"export GOPROXY=https://proxy.golang.org GOSUMDB=off GOFLAGS=-mod=mod\n" +
			"go mod download -x && go build -x -o /tmp/app . && /tmp/app\n"
		return tools.Run(script, append(hostTrust(t), gop)...)
	}
	_, lines1 := presetSolve(t, env, build1([]string{"github.com/pkg/errors v0.9.1"}, []string{"github.com/pkg/errors"}, "one"))
	_, lines2 := presetSolve(t, env, build1([]string{"github.com/pkg/errors v0.9.1", "github.com/google/shlex v0.0.0-20191202100458-e7afc7fbc510"},
		[]string{"github.com/pkg/errors", "github.com/google/shlex"}, "two"))
	fetched1, compiled1 := goFetches(lines1)
	fetched2, compiled2 := goFetches(lines2)
	t.Logf("build 1: fetched %v; compiled %v", fetched1, compiled1)
	t.Logf("build 2: fetched %v; compiled %v", fetched2, compiled2)
	if !slices.ContainsFunc(fetched1, func(f string) bool { return strings.HasPrefix(f, "github.com/pkg/errors/@v/v0.9.1.zip") }) {
		t.Fatalf("build 1 did not fetch pkg/errors; go printed:\n%s", strings.Join(lines1, "\n"))
	}
	if len(fetched2) == 0 {
		t.Fatalf("build 2 fetched nothing; go printed:\n%s", strings.Join(lines2, "\n"))
	}
	for _, f := range fetched2 {
		if !strings.HasPrefix(f, "github.com/google/shlex/") {
			t.Errorf("build 2 fetched %s, which build 1 had put in the module cache", f)
		}
	}
	if !slices.Contains(compiled1, "github.com/pkg/errors") {
		t.Errorf("build 1 did not compile pkg/errors: %v", compiled1)
	}
	if slices.Contains(compiled2, "github.com/pkg/errors") {
		t.Errorf("build 2 compiled pkg/errors again; the build cache should have it: %v", compiled2)
	}
	if !slices.Contains(compiled2, "github.com/google/shlex") {
		t.Errorf("build 2 did not compile shlex: %v", compiled2)
	}
}

// wheelIndex is a PEP 503 "simple" package index served on 127.0.0.1 from
// the wheels of a directory. It counts the requests for each path.
type wheelIndex struct {
	url    string
	cert   []byte            // PEM of the server's certificate
	wheels map[string]string // file name -> project
	mu     sync.Mutex
	hits   map[string]int
}

// hostWheels returns the directory of Debian's python3-pip-whl and
// python3-setuptools-whl on the host, installing them with apt-get when
// they are missing.
func hostWheels(t *testing.T) string {
	t.Helper()
	const dir = "/usr/share/python-wheels"
	have := func() bool {
		m, _ := filepath.Glob(filepath.Join(dir, "setuptools-*.whl"))
		n, _ := filepath.Glob(filepath.Join(dir, "pip-*.whl"))
		return len(m) > 0 && len(n) > 0
	}
	if !have() {
		out, err := exec.Command("apt-get", "install", "-y", "--no-install-recommends", "python3-pip-whl", "python3-setuptools-whl").CombinedOutput()
		if err != nil || !have() {
			testenv.Unavailable(t, fmt.Errorf("the pip test serves the wheels of Debian's python3-pip-whl and python3-setuptools-whl from %s, and installing them failed: %v\n%s", dir, err, out))
		}
	}
	return dir
}

func serveWheels(t *testing.T, dir string) *wheelIndex {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.whl"))
	idx := &wheelIndex{wheels: map[string]string{}, hits: map[string]int{}}
	sums := map[string]string{}
	for _, f := range files {
		base := filepath.Base(f)
		project := strings.ToLower(strings.NewReplacer("_", "-", ".", "-").Replace(strings.SplitN(base, "-", 2)[0]))
		idx.wheels[base] = project
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		sums[base] = hex.EncodeToString(sum[:])
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		idx.mu.Lock()
		idx.hits[r.URL.Path]++
		idx.mu.Unlock()
		switch {
		case r.URL.Path == "/simple/":
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, "<!DOCTYPE html><html><body>\n")
			for _, p := range slices.Sorted(maps.Values(idx.wheels)) {
				fmt.Fprintf(w, "<a href=\"/simple/%s/\">%s</a>\n", p, p)
			}
			fmt.Fprint(w, "</body></html>\n")
		case strings.HasPrefix(r.URL.Path, "/simple/"):
			project := strings.Trim(strings.TrimPrefix(r.URL.Path, "/simple/"), "/")
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("Cache-Control", "max-age=600, public")
			fmt.Fprint(w, "<!DOCTYPE html><html><body>\n")
			for _, f := range slices.Sorted(maps.Keys(idx.wheels)) {
				if idx.wheels[f] == project {
					fmt.Fprintf(w, "<a href=\"/files/%s#sha256=%s\">%s</a>\n", f, sums[f], f)
				}
			}
			fmt.Fprint(w, "</body></html>\n")
		case strings.HasPrefix(r.URL.Path, "/files/"):
			f := strings.TrimPrefix(r.URL.Path, "/files/")
			if _, ok := idx.wheels[f]; !ok {
				http.NotFound(w, r)
				return
			}
			// As PyPI serves its files.
			w.Header().Set("Cache-Control", "max-age=365000000, immutable, public")
			http.ServeFile(w, r, filepath.Join(dir, f))
		default:
			http.NotFound(w, r)
		}
	})
	// HTTPS, as PyPI: pip keeps what it downloads over plain HTTP out of
	// its cache unless the host is given to --trusted-host.
	srv := httptest.NewUnstartedServer(mux)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	idx.url = srv.URL
	idx.cert = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	return idx
}

// downloads returns how many times the wheel of project was requested.
func (idx *wheelIndex) downloads(project string) int {
	idx.mu.Lock()
	defer idx.mu.Unlock()
	n := 0
	for f, p := range idx.wheels {
		if p == project {
			n += idx.hits["/files/"+f]
		}
	}
	return n
}

func TestPipPresetUsesItsCache(t *testing.T) {
	idx := serveWheels(t, hostWheels(t))
	env, tools := toolStage(t)
	pip := cache.Pip(cache.Project("pip-" + presetNonce()))
	const certPath = "/etc/larder-test-index.pem"
	cert := mounts.Bind(certPath, build.From(llb.Scratch().File(llb.Mkfile("/cert.pem", 0o644, idx.cert))), mounts.SourcePath("/cert.pem"))
	install := func(flags, dir, pkgs string) build.Stage {
		return tools.Run("pip install "+flags+" --cert "+certPath+" --index-url "+idx.url+"/simple/ --target /tmp/"+dir+" "+pkgs, pip, cert)
	}
	pipSays := func(lines []string) []string {
		var out []string
		for _, l := range lines {
			if strings.Contains(l, "Downloading") || strings.Contains(l, "Using cached") {
				out = append(out, strings.TrimSpace(l))
			}
		}
		return out
	}
	_, lines1 := presetSolve(t, env, install("", "one", "setuptools"))
	after1 := [2]int{idx.downloads("setuptools"), idx.downloads("pip")}
	_, lines2 := presetSolve(t, env, install("", "two", "setuptools pip"))
	after2 := [2]int{idx.downloads("setuptools"), idx.downloads("pip")}
	res3, lines3 := presetSolve(t, env, install("--no-cache-dir", "three", "setuptools"))
	after3 := [2]int{idx.downloads("setuptools"), idx.downloads("pip")}
	t.Logf("wheel requests (setuptools, pip) after build 1 %v, build 2 %v, build 3 (--no-cache-dir) %v", after1, after2, after3)
	t.Logf("build 1: pip said %q", pipSays(lines1))
	t.Logf("build 2: pip said %q", pipSays(lines2))
	t.Logf("build 3: pip said %q", pipSays(lines3))
	if after1 != [2]int{1, 0} {
		t.Fatalf("build 1 requested the wheels %v times, want setuptools once; pip printed:\n%s", after1, strings.Join(lines1, "\n"))
	}
	if after2 != [2]int{1, 1} {
		t.Errorf("after build 2 the wheels were requested %v times, want setuptools once (build 2 finds it in the cache) and pip once", after2)
	}
	if after3[0] != 2 {
		t.Errorf("with --no-cache-dir setuptools was requested %d times in all, want 2 (the flag turns the cache off)", after3[0])
	}
	if !slices.ContainsFunc(res3.Report.Warnings, func(w string) bool { return strings.Contains(w, "--no-cache-dir") }) {
		t.Errorf("no warning about --no-cache-dir in the report: %q", res3.Report.Warnings)
	}
	t.Logf("build 3 warnings: %q", res3.Report.Warnings)
}

// writeFiles writes files (path relative to dir -> content) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for rel, content := range files {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// cargoCompiled reads cargo's "   Compiling dep v0.1.0 (/src/dep)" lines and
// returns the crates it compiled.
func cargoCompiled(lines []string) []string {
	var out []string
	for _, l := range lines {
		if f := strings.Fields(l); len(f) >= 3 && f[0] == "Compiling" {
			out = append(out, f[1])
		}
	}
	slices.Sort(out)
	return out
}

func TestCargoPresetRebuildsOnlyWhatChanged(t *testing.T) {
	env, tools := toolStage(t)
	src := t.TempDir()
	writeFiles(t, src, map[string]string{
		"Cargo.toml":     "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2018\"\n\n[dependencies]\ndep = { path = \"dep\" }\n",
		"src/main.rs":    "fn main() { println!(\"one {}\", dep::greeting()); }\n",
		"dep/Cargo.toml": "[package]\nname = \"dep\"\nversion = \"0.1.0\"\nedition = \"2018\"\n",
		"dep/src/lib.rs": "pub fn greeting() -> &'static str { \"hello\" }\n",
	})
	cargo := cache.Cargo(cache.Project("cargo-" + presetNonce()))
	s := tools.Run("cd /src && cargo build --offline && mkdir /out && \"$CARGO_TARGET_DIR/debug/app\" > /out/said",
		cargo, mounts.Bind("/src", build.Local("crate"), mounts.ReadWrite()))
	files1, _, lines1 := presetFiles(t, env, s, build.WithLocal("crate", src))
	writeFiles(t, src, map[string]string{"src/main.rs": "fn main() { println!(\"two {}\", dep::greeting()); }\n"})
	files2, _, lines2 := presetFiles(t, env, s, build.WithLocal("crate", src))
	c1, c2 := cargoCompiled(lines1), cargoCompiled(lines2)
	t.Logf("build 1 compiled %v and said %q; build 2 (main.rs changed) compiled %v and said %q", c1, files1["said"], c2, files2["said"])
	if !slices.Equal(c1, []string{"app", "dep"}) {
		t.Fatalf("build 1 compiled %v, want app and dep; cargo printed:\n%s", c1, strings.Join(lines1, "\n"))
	}
	if !slices.Equal(c2, []string{"app"}) {
		t.Errorf("build 2 compiled %v, want only app (dep did not change); cargo printed:\n%s", c2, strings.Join(lines2, "\n"))
	}
	if files2["said"] != "two hello\n" {
		t.Errorf("the rebuilt program said %q, want the new main.rs's output", files2["said"])
	}
}

// crateRegistry is a Cargo registry served on 127.0.0.1: a git index
// (through git http-backend) and the crates' downloads, which it counts.
type crateRegistry struct {
	index string // the index's URL
	mu    sync.Mutex
	hits  map[string]int // crate name -> downloads
}

// serveCrates makes a .crate of each named library crate (version 0.1.0),
// an index listing them, and serves both.
func serveCrates(t *testing.T, names ...string) *crateRegistry {
	t.Helper()
	backend := "/usr/lib/git-core/git-http-backend"
	if _, err := exec.LookPath("git"); err != nil {
		testenv.Unavailable(t, fmt.Errorf("the cargo registry test needs git on the host: %w", err))
	}
	if _, err := os.Stat(backend); err != nil {
		testenv.Unavailable(t, fmt.Errorf("the cargo registry test needs git http-backend: %w", err))
	}
	reg := &crateRegistry{hits: map[string]int{}}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	work, root := t.TempDir(), t.TempDir()
	crates := map[string][]byte{}
	files := map[string]string{"config.json": `{"dl": "` + srv.URL + `/dl", "api": null}` + "\n"}
	for _, n := range names {
		crates[n] = crateFile(t, n, "0.1.0", "pub fn name() -> &'static str { \""+n+"\" }\n")
		sum := sha256.Sum256(crates[n])
		entry := fmt.Sprintf(`{"name":%q,"vers":"0.1.0","deps":[],"cksum":%q,"features":{},"yanked":false}`, n, hex.EncodeToString(sum[:]))
		files[n[:2]+"/"+n[2:4]+"/"+n] = entry + "\n"
	}
	writeFiles(t, work, files)
	for _, args := range [][]string{
		{"init", "-q", work},
		{"-C", work, "add", "."},
		{"-C", work, "-c", "user.name=larder", "-c", "user.email=larder@example.com", "commit", "-q", "-m", "index"},
		{"clone", "-q", "--bare", work, filepath.Join(root, "index.git")},
	} {
		if out, err := exec.Command("git", args...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	mux.Handle("/git/", &cgi.Handler{Path: backend, Root: "/git", Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}})
	mux.HandleFunc("/dl/", func(w http.ResponseWriter, r *http.Request) {
		// /dl/<crate>/<version>/download
		parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/dl/"), "/")
		b, ok := crates[parts[0]]
		if !ok {
			http.NotFound(w, r)
			return
		}
		reg.mu.Lock()
		reg.hits[parts[0]]++
		reg.mu.Unlock()
		w.Write(b)
	})
	reg.index = srv.URL + "/git/index.git"
	return reg
}

// crateFile returns a .crate: a gzipped tarball of <name>-<version>/ with a
// Cargo.toml and src/lib.rs.
func crateFile(t *testing.T, name, version, lib string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	dir := name + "-" + version + "/"
	for _, f := range []struct{ path, body string }{
		{"Cargo.toml", fmt.Sprintf("[package]\nname = %q\nversion = %q\nedition = \"2018\"\n", name, version)},
		{"src/lib.rs", lib},
	} {
		tw.WriteHeader(&tar.Header{Name: dir + f.path, Mode: 0o644, Size: int64(len(f.body)), ModTime: time.Unix(1, 0)})
		tw.Write([]byte(f.body))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func (r *crateRegistry) downloads() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.hits)
}

// The registry cache keeps downloaded crates: a second build with one more
// dependency downloads only that one.
func TestCargoPresetKeepsRegistryDownloads(t *testing.T) {
	reg := serveCrates(t, "larder-one", "larder-two")
	env, tools := toolStage(t)
	cargo := cache.Cargo(cache.Project("cargo-reg-" + presetNonce()))
	manifest := func(deps ...string) map[string]string {
		toml := "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2018\"\n\n[dependencies]\n"
		main := "fn main() {"
		for _, d := range deps {
			toml += d + " = { version = \"0.1.0\", registry = \"larder\" }\n"
			main += " println!(\"{}\", " + strings.ReplaceAll(d, "-", "_") + "::name());"
		}
		return map[string]string{
			"Cargo.toml":         toml,
			"src/main.rs":        main + " }\n",
			".cargo/config.toml": "[registries.larder]\nindex = \"" + reg.index + "\"\n",
		}
	}
	src := t.TempDir()
	s := tools.Run("cd /src && cargo build 2>&1 && mkdir /out && \"$CARGO_TARGET_DIR/debug/app\" > /out/said",
		cargo, mounts.Bind("/src", build.Local("crate"), mounts.ReadWrite()))
	downloaded := func(lines []string) []string {
		var out []string
		for _, l := range lines {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "Downloaded" {
				out = append(out, f[1])
			}
		}
		return out
	}
	writeFiles(t, src, manifest("larder-one"))
	files1, _, lines1 := presetFiles(t, env, s, build.WithLocal("crate", src))
	after1 := reg.downloads()
	writeFiles(t, src, manifest("larder-one", "larder-two"))
	files2, _, lines2 := presetFiles(t, env, s, build.WithLocal("crate", src))
	after2 := reg.downloads()
	t.Logf("build 1: cargo downloaded %v (server: %v), program said %q", downloaded(lines1), after1, files1["said"])
	t.Logf("build 2: cargo downloaded %v (server: %v), program said %q", downloaded(lines2), after2, files2["said"])
	if after1["larder-one"] != 1 {
		t.Fatalf("build 1 downloaded larder-one %d times, want once; cargo printed:\n%s", after1["larder-one"], strings.Join(lines1, "\n"))
	}
	if after2["larder-one"] != 1 || after2["larder-two"] != 1 {
		t.Errorf("after build 2 the crates were downloaded %v times, want each once (build 2 finds larder-one in the registry cache); cargo printed:\n%s", after2, strings.Join(lines2, "\n"))
	}
	if files2["said"] != "larder-one\nlarder-two\n" {
		t.Errorf("the program said %q", files2["said"])
	}
}

// Mount points that a preset's mounts need and the image lacks are made
// for the step and removed after it: nothing of them is left in the
// result, not even their parent directories.
func TestPresetLeavesNoMountPoints(t *testing.T) {
	env := testenv.Get(t)
	bb, err := env.Busybox(presetCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	// busybox has no /etc/apt, /var/cache, /var/lib, /go or /root/.cache.
	s := build.Image(bb).Run("ls -d /etc/apt/apt.conf.d/docker-clean /var/cache/apt /go/pkg/mod /root/.cargo/git/db /root/.cache/cargo-target > /seen # "+presetNonce(),
		cache.Apt(), cache.Go(), cache.Cargo(), cache.Pip(), cache.Npm())
	dir := t.TempDir()
	if _, err := build.Solve(presetCtx(t), env.Builder, s, build.LocalDir(dir)); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "seen")); strings.Count(string(b), "\n") != 5 {
		t.Errorf("the step saw %q, want all five mount points", b)
	}
	for _, p := range []string{"etc/apt", "var/cache", "var/lib", "go", "root/.cache", "root/.cargo", "root/.npm"} {
		if _, err := os.Lstat(filepath.Join(dir, p)); err == nil {
			t.Errorf("/%s is left in the result", p)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "root"))
	if len(entries) != 0 {
		t.Errorf("/root holds %v after the step", entries)
	}
}

// What of a preset is part of a step's cache key, as the preset's
// documentation says: BuildKit leaves cache ids and sharing modes out of
// it; the targets, owner and environment are in it.
func TestPresetCacheKey(t *testing.T) {
	env := testenv.Get(t)
	bb, err := env.Busybox(presetCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	cmd := "echo " + presetNonce() + " > /stamp"
	for _, c := range []struct {
		name string
		p    *cache.Preset
		ran  bool
	}{
		{"first", cache.Pip(cache.Project("key-a")), true},
		{"another project", cache.Pip(cache.Project("key-b")), false},
		{"another sharing mode", cache.Pip(cache.Project("key-b"), cache.Sharing(mounts.Locked)), false},
		{"across platforms", cache.Pip(cache.AcrossPlatforms()), false},
		{"another home", cache.Pip(cache.Home("/home/app")), true},
		{"an owner", cache.Pip(cache.Home("/home/app"), cache.Owner(1000, 1000)), true},
	} {
		res, _ := presetSolve(t, env, build.Image(bb).Run(cmd, c.p))
		step, ok := res.Report.Find(cmd)
		if !ok {
			t.Fatalf("%s: no step %q in the report:\n%s", c.name, cmd, res.Report)
		}
		if ran := !step.Cached; ran != c.ran {
			t.Errorf("%s: the step ran = %v, want %v:\n%s", c.name, ran, c.ran, res.Report)
		}
	}
}
