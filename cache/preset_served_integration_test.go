package cache_test

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/cache"
	"github.com/larder-build/larder/internal/testenv"
)

// These tests run Maven, Bundler, Composer and Poetry from Debian in real
// builds against package repositories the test serves on 127.0.0.1 (the
// machines reach neither Maven Central, rubygems.org, packagist nor PyPI;
// build steps run on the host network). Each installs package A, then A
// and B with the same cache, and reads from the tool's own output that the
// second build fetched only B; a control build with another project's
// empty cache fetches both. The server's request counts back the output up.
//
// uv is not tested: Debian bookworm does not package it, and its
// installers download it from GitHub or PyPI.

var servedTools struct {
	once  sync.Once
	stage build.Stage
	err   error
	took  time.Duration
}

// servedToolStage returns a Debian stage with Maven (and its dependency
// plugin and two Java libraries, whose jars are the Maven repository the
// test serves), Ruby and Bundler, Composer and Poetry, installed through
// the apt preset. It is solved once per test binary: on a fresh builder
// that takes one to two minutes, most of it Java. junit4 is there because
// Debian's POMs of the dependency plugin's own dependencies name
// junit:junit:4.x, which Maven then resolves from the served repository.
func servedToolStage(t *testing.T) (*testenv.Env, build.Stage) {
	t.Helper()
	env, deb := presetDebian(t)
	servedTools.once.Do(func() {
		start := time.Now()
		servedTools.stage = build.Image(deb).Run(
			"apt-get update && apt-get install -y --no-install-recommends ca-certificates "+
				"maven libmaven-dependency-plugin-java junit4 libcommons-lang3-java libcommons-io-java "+
				"ruby bundler ruby-builder composer php-zip unzip python3-poetry",
			cache.Apt(cache.Project("larder-test-tools")))
		_, servedTools.err = build.Solve(presetCtx(t), env.Builder, servedTools.stage)
		servedTools.took = time.Since(start)
	})
	if servedTools.err != nil {
		t.Fatalf("installing the tools: %v", servedTools.err)
	}
	t.Logf("served tool stage: built in %v (once per test binary)", servedTools.took.Round(time.Second))
	return env, servedTools.stage
}

// servedExport solves s and copies its /out into a new directory, which it
// returns.
func servedExport(t *testing.T, env *testenv.Env, s build.Stage) string {
	t.Helper()
	dir := t.TempDir()
	presetSolve(t, env, build.Scratch().Copy(s, "/out", "/"), build.LocalDir(dir))
	return dir
}

// servedFile returns a shell command that writes content to the file name.
func servedFile(name, content string) string {
	return "cat > " + name + " <<'LARDER_EOF'\n" + content + "\nLARDER_EOF\n"
}

// servedNotIn returns the elements of a that b lacks.
func servedNotIn(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// --- Maven -------------------------------------------------------------

// mavenDownloads reads Maven's "Downloaded from larder: http://…/path (2.1 kB at 30 kB/s)"
// lines and returns the repository paths it downloaded, sorted.
func mavenDownloads(lines []string, repoURL string) []string {
	var out []string
	for _, l := range lines {
		i := strings.Index(l, "Downloaded from ")
		if i < 0 {
			continue
		}
		f := strings.Fields(l[i:])
		if len(f) >= 4 {
			out = append(out, strings.TrimPrefix(f[3], repoURL+"/"))
		}
	}
	slices.Sort(out)
	return out
}

func TestMavenPresetDownloadsOnlyNewArtifacts(t *testing.T) {
	env, tools := servedToolStage(t)
	// Debian's Java packages keep their jars and POMs in Maven's layout
	// under /usr/share/maven-repo, as links into /usr/share/java.
	// The export adds the .sha1 files a real repository has, which Maven
	// checks its downloads against.
	dir := servedExport(t, env, tools.Run("mkdir -p /out && cp -rL /usr/share/maven-repo /out/m2 && "+
		"find /out/m2 -type f \\( -name '*.jar' -o -name '*.pom' \\) -exec sh -c 'for f; do sha1sum \"$f\" | cut -d\" \" -f1 > \"$f.sha1\"; done' sh {} +"))
	plugins, _ := filepath.Glob(filepath.Join(dir, "m2/org/apache/maven/plugins/maven-dependency-plugin/[0-9]*"))
	if len(plugins) == 0 {
		t.Fatal("no maven-dependency-plugin in Debian's maven-repo")
	}
	// Debian's package lists 3.5.0 and 2.8, its alias for the old
	// version; use the newest.
	pluginVersion := filepath.Base(plugins[len(plugins)-1])
	repo := testenv.ServeRepo(t, filepath.Join(dir, "m2"))

	deps := map[string]string{
		"commons-lang3": "<dependency><groupId>org.apache.commons</groupId><artifactId>commons-lang3</artifactId><version>3.12.0</version></dependency>",
		"commons-io":    "<dependency><groupId>commons-io</groupId><artifactId>commons-io</artifactId><version>2.11.0</version></dependency>",
	}
	// The mirror of * keeps Maven away from Central; the plugin is named
	// in the POM so that "dependency:" resolves without group metadata.
	settings := `<settings><mirrors><mirror><id>larder</id><mirrorOf>*</mirrorOf><url>` + repo.URL + `</url></mirror></mirrors></settings>`
	install := func(p *cache.Preset, names ...string) build.Stage {
		var ds string
		for _, n := range names {
			ds += deps[n]
		}
		pom := `<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>build.larder.test</groupId><artifactId>app</artifactId><version>1.0</version>
  <repositories><repository><id>larder</id><url>` + repo.URL + `</url></repository></repositories>
  <pluginRepositories><pluginRepository><id>larder</id><url>` + repo.URL + `</url></pluginRepository></pluginRepositories>
  <dependencies>` + ds + `</dependencies>
  <build><plugins><plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-dependency-plugin</artifactId><version>` + pluginVersion + `</version></plugin></plugins></build>
</project>`
		return tools.Run("mkdir -p /app && cd /app && "+servedFile("pom.xml", pom)+servedFile("settings.xml", settings)+
			"mvn -B -s settings.xml dependency:resolve # "+p.Project(), p)
	}
	mvn := cache.Maven(cache.Project("maven-" + presetNonce()))
	_, lines1 := presetSolve(t, env, install(mvn, "commons-lang3"))
	_, lines2 := presetSolve(t, env, install(mvn, "commons-lang3", "commons-io"))
	control := cache.Maven(cache.Project("maven-control-" + presetNonce()))
	_, lines3 := presetSolve(t, env, install(control, "commons-lang3", "commons-io"))
	d1, d2, d3 := mavenDownloads(lines1, repo.URL), mavenDownloads(lines2, repo.URL), mavenDownloads(lines3, repo.URL)
	t.Logf("build 1 (commons-lang3): Maven downloaded %d files, among them %q", len(d1), slices.DeleteFunc(slices.Clone(d1), func(p string) bool { return !strings.Contains(p, "commons-lang3/3.12.0/") }))
	t.Logf("build 2 (commons-lang3, commons-io): Maven downloaded %q", d2)
	t.Logf("control (commons-lang3, commons-io, another project's empty cache): Maven downloaded %d files, %q", len(d3), servedNotIn(d3, d1))
	for _, l := range lines2 {
		if strings.Contains(l, "Downloaded from ") {
			t.Logf("build 2: %s", strings.TrimSpace(l))
		}
	}
	const (
		lang3Jar = "org/apache/commons/commons-lang3/3.12.0/commons-lang3-3.12.0.jar"
		ioPom    = "commons-io/commons-io/2.11.0/commons-io-2.11.0.pom"
		ioJar    = "commons-io/commons-io/2.11.0/commons-io-2.11.0.jar"
	)
	pluginJar := "org/apache/maven/plugins/maven-dependency-plugin/" + pluginVersion + "/maven-dependency-plugin-" + pluginVersion + ".jar"
	if !slices.Contains(d1, lang3Jar) || !slices.Contains(d1, pluginJar) || slices.Contains(d1, ioJar) {
		t.Fatalf("build 1 downloaded %q, want commons-lang3 and the dependency plugin, not commons-io; Maven printed:\n%s", d1, strings.Join(lines1, "\n"))
	}
	if !slices.Equal(d2, []string{ioJar, ioPom}) {
		t.Errorf("build 2 downloaded %q, want only commons-io's POM and jar (the rest is in the cache); Maven printed:\n%s", d2, strings.Join(lines2, "\n"))
	}
	if got := servedNotIn(d3, d1); !slices.Equal(got, []string{ioJar, ioPom}) || len(d3) != len(d1)+2 {
		t.Errorf("with an empty cache Maven downloaded %d files, %q more than build 1; want build 1's %d and commons-io's two", len(d3), got, len(d1))
	}
	// The server saw each jar requested once per cache.
	hits := repo.Hits()
	if hits["/"+lang3Jar] != 2 || hits["/"+ioJar] != 2 || hits["/"+pluginJar] != 2 {
		t.Errorf("the server had %d requests for commons-lang3's jar, %d for commons-io's, %d for the plugin's; want 2 each (one per cache)", hits["/"+lang3Jar], hits["/"+ioJar], hits["/"+pluginJar])
	}
}

// --- Bundler -----------------------------------------------------------

// bundlerSays reads Bundler's "Fetching larder-one 1.0.0" lines and the
// "GET http://…/gems/larder-one-1.0.0.gem" lines RubyGems prints, with a
// really verbose configuration and `bundle install --verbose`, for each
// request it makes; it returns the gems of each, sorted.
func bundlerSays(lines []string, repoURL string) (fetching, got []string) {
	fetchLine := regexp.MustCompile(`^Fetching ([a-z][a-z0-9_-]*) ([0-9][^ ]*)$`)
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if m := fetchLine.FindStringSubmatch(l); m != nil {
			fetching = append(fetching, m[1]+"-"+m[2])
		}
		if g, ok := strings.CutPrefix(l, "GET "+repoURL+"/gems/"); ok {
			got = append(got, strings.TrimSuffix(g, ".gem"))
		}
	}
	slices.Sort(fetching)
	slices.Sort(got)
	return fetching, got
}

func TestBundlerPresetFetchesOnlyNewGems(t *testing.T) {
	env, tools := servedToolStage(t)
	// Two tiny gems built with `gem build`, and the static index of the
	// directory they are in (specs.4.8.gz, quick/Marshal.4.8/…), which
	// Bundler reads when the source has neither the compact index nor the
	// dependency API.
	var script strings.Builder
	script.WriteString("set -e\nmkdir -p /out/gems /tmp/gems\n")
	for _, n := range []string{"one", "two"} {
		script.WriteString("mkdir -p /tmp/gems/larder-" + n + "/lib && cd /tmp/gems/larder-" + n + "\n" +
			"echo 'module LarderTest; end' > lib/larder-" + n + ".rb\n" +
			servedFile("larder-"+n+".gemspec", `Gem::Specification.new do |s|
  s.name = "larder-`+n+`"
  s.version = "1.0.0"
  s.summary = "A Larder test gem"
  s.authors = ["Larder"]
  s.license = "MIT"
  s.files = ["lib/larder-`+n+`.rb"]
end`) +
			"gem build larder-" + n + ".gemspec && mv larder-" + n + "-1.0.0.gem /out/gems/\n")
	}
	script.WriteString("gem generate_index --directory /out\n")
	dir := servedExport(t, env, tools.Run(script.String()))
	repo := testenv.ServeRepo(t, dir)

	install := func(p *cache.Preset, gems ...string) build.Stage {
		gemfile := `source "` + repo.URL + `"` + "\n"
		for _, g := range gems {
			gemfile += `gem "` + g + `", "1.0.0"` + "\n"
		}
		// ":verbose: 1" makes RubyGems print each request, which
		// `bundle install --verbose` shows.
		return tools.Run("mkdir -p /app && cd /app && "+servedFile("Gemfile", gemfile)+servedFile("gemrc", ":verbose: 1")+
			"GEMRC=/app/gemrc bundle install --verbose # "+p.Project(), p)
	}
	bundler := cache.Bundler(cache.Project("bundler-" + presetNonce()))
	_, lines1 := presetSolve(t, env, install(bundler, "larder-one"))
	after1 := repo.Hits()
	_, lines2 := presetSolve(t, env, install(bundler, "larder-one", "larder-two"))
	after2 := repo.Hits()
	control := cache.Bundler(cache.Project("bundler-control-" + presetNonce()))
	_, lines3 := presetSolve(t, env, install(control, "larder-one", "larder-two"))
	after3 := repo.Hits()
	f1, g1 := bundlerSays(lines1, repo.URL)
	f2, g2 := bundlerSays(lines2, repo.URL)
	f3, g3 := bundlerSays(lines3, repo.URL)
	t.Logf("build 1 (larder-one): Bundler said Fetching %q; RubyGems requested %q", f1, g1)
	t.Logf("build 2 (larder-one, larder-two): Bundler said Fetching %q; RubyGems requested %q", f2, g2)
	t.Logf("control (both, another project's empty cache): Bundler said Fetching %q; RubyGems requested %q", f3, g3)
	for _, l := range lines2 {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "Fetching ") || strings.HasPrefix(l, "GET "+repo.URL+"/gems/") || strings.HasPrefix(l, "Installing ") {
			t.Logf("build 2: %s", l)
		}
	}
	const one, two = "/gems/larder-one-1.0.0.gem", "/gems/larder-two-1.0.0.gem"
	t.Logf(".gem requests (larder-one, larder-two) on the server after build 1: %d %d, build 2: %d %d, control: %d %d",
		after1[one], after1[two], after2[one], after2[two], after3[one], after3[two])
	if !slices.Equal(g1, []string{"larder-one-1.0.0"}) {
		t.Fatalf("build 1 requested %q, want larder-one; Bundler printed:\n%s", g1, strings.Join(lines1, "\n"))
	}
	if !slices.Equal(g2, []string{"larder-two-1.0.0"}) {
		t.Errorf("build 2 requested %q, want only larder-two (larder-one is in the cache); Bundler printed:\n%s", g2, strings.Join(lines2, "\n"))
	}
	if !slices.Equal(g3, []string{"larder-one-1.0.0", "larder-two-1.0.0"}) {
		t.Errorf("with an empty cache RubyGems requested %q, want both gems", g3)
	}
	// Bundler 2.3 prints "Fetching" before it looks in its cache, so its
	// own lines name every gem it installs, cached or not; only
	// RubyGems' request lines tell a download from a cache hit.
	if !slices.Contains(f2, "larder-two-1.0.0") {
		t.Errorf("build 2 has no Fetching line for larder-two: %q", f2)
	}
	if after1[one] != 1 || after2[one] != 1 || after2[two] != 1 || after3[one] != 2 || after3[two] != 2 {
		t.Errorf("the server saw .gem requests after build 1 %v, after build 2 %v, after the control %v; want larder-one once by build 1, larder-two once by build 2, each once more by the control",
			[2]int{after1[one], after1[two]}, [2]int{after2[one], after2[two]}, [2]int{after3[one], after3[two]})
	}
}

// --- Composer ----------------------------------------------------------

// composerDownloads reads Composer's "  - Downloading larder/one (1.0.0)"
// lines and returns the packages, sorted.
func composerDownloads(lines []string) []string {
	var out []string
	for _, l := range lines {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(l), "- Downloading "); ok {
			out = append(out, rest)
		}
	}
	slices.Sort(out)
	return out
}

func TestComposerPresetDownloadsOnlyNewPackages(t *testing.T) {
	env, tools := servedToolStage(t)
	repo := testenv.ServeRepo(t, "")
	// A "composer" repository: packages.json lists every version with the
	// URL of its dist zip, made here.
	packages := map[string]any{}
	for _, n := range []string{"one", "two"} {
		name := "larder/" + n
		class := strings.ToUpper(n[:1]) + n[1:]
		zip := testenv.Zip(t, map[string]string{
			"composer.json":         `{"name": "` + name + `", "autoload": {"psr-4": {"Larder\\` + class + `\\": "src/"}}}` + "\n",
			"src/" + class + ".php": "<?php\nnamespace Larder\\" + class + ";\nclass " + class + " {}\n",
		})
		sum := sha1.Sum(zip)
		file := "/dist/larder-" + n + "-1.0.0.zip"
		repo.Put(file, zip)
		packages[name] = map[string]any{"1.0.0": map[string]any{
			"name": name, "version": "1.0.0", "type": "library",
			"autoload": map[string]any{"psr-4": map[string]string{"Larder\\" + class + "\\": "src/"}},
			"dist":     map[string]string{"type": "zip", "url": repo.URL + file, "shasum": hex.EncodeToString(sum[:])},
		}}
	}
	index, err := json.Marshal(map[string]any{"packages": packages})
	if err != nil {
		t.Fatal(err)
	}
	repo.Put("/packages.json", index)

	install := func(p *cache.Preset, pkgs ...string) build.Stage {
		req := map[string]string{}
		for _, n := range pkgs {
			req[n] = "1.0.0"
		}
		cj, err := json.Marshal(map[string]any{
			"name":         "larder/app",
			"require":      req,
			"repositories": []any{map[string]string{"type": "composer", "url": repo.URL}, map[string]bool{"packagist.org": false}},
			"config":       map[string]bool{"secure-http": false},
		})
		if err != nil {
			t.Fatal(err)
		}
		return tools.Run("mkdir -p /app && cd /app && "+servedFile("composer.json", string(cj))+
			"COMPOSER_ALLOW_SUPERUSER=1 composer install --no-interaction && php -r 'require \"vendor/autoload.php\"; new Larder\\One\\One();' # "+p.Project(), p)
	}
	composer := cache.Composer(cache.Project("composer-" + presetNonce()))
	_, lines1 := presetSolve(t, env, install(composer, "larder/one"))
	after1 := repo.Hits()
	_, lines2 := presetSolve(t, env, install(composer, "larder/one", "larder/two"))
	after2 := repo.Hits()
	control := cache.Composer(cache.Project("composer-control-" + presetNonce()))
	_, lines3 := presetSolve(t, env, install(control, "larder/one", "larder/two"))
	after3 := repo.Hits()
	d1, d2, d3 := composerDownloads(lines1), composerDownloads(lines2), composerDownloads(lines3)
	t.Logf("build 1 (larder/one): Composer downloaded %q", d1)
	t.Logf("build 2 (larder/one, larder/two): Composer downloaded %q", d2)
	t.Logf("control (both, another project's empty cache): Composer downloaded %q", d3)
	for _, l := range lines2 {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "- ") {
			t.Logf("build 2: %s", l)
		}
	}
	const one, two = "/dist/larder-one-1.0.0.zip", "/dist/larder-two-1.0.0.zip"
	t.Logf("zip requests (one, two) on the server after build 1: %d %d, build 2: %d %d, control: %d %d",
		after1[one], after1[two], after2[one], after2[two], after3[one], after3[two])
	if !slices.Equal(d1, []string{"larder/one (1.0.0)"}) {
		t.Fatalf("build 1 downloaded %q, want larder/one; Composer printed:\n%s", d1, strings.Join(lines1, "\n"))
	}
	if !slices.Equal(d2, []string{"larder/two (1.0.0)"}) {
		t.Errorf("build 2 downloaded %q, want only larder/two (larder/one is in the cache); Composer printed:\n%s", d2, strings.Join(lines2, "\n"))
	}
	if !slices.Equal(d3, []string{"larder/one (1.0.0)", "larder/two (1.0.0)"}) {
		t.Errorf("with an empty cache Composer downloaded %q, want both", d3)
	}
	if after1[one] != 1 || after2[one] != 1 || after2[two] != 1 || after3[one] != 2 || after3[two] != 2 {
		t.Errorf("the server saw zip requests after build 1 %v, after build 2 %v, after the control %v; want one by build 1, two by build 2, each once more by the control",
			[2]int{after1[one], after1[two]}, [2]int{after2[one], after2[two]}, [2]int{after3[one], after3[two]})
	}
}

// --- Poetry ------------------------------------------------------------

// servedWheel returns the file name and content of a pure-Python wheel of the
// project name at version: a zip of its module and a .dist-info directory
// with METADATA, WHEEL and RECORD.
func servedWheel(t *testing.T, name, version string) (string, []byte) {
	t.Helper()
	mod := strings.ReplaceAll(name, "-", "_")
	info := mod + "-" + version + ".dist-info/"
	files := map[string]string{
		mod + "/__init__.py": "NAME = \"" + name + "\"\n",
		info + "METADATA":    "Metadata-Version: 2.1\nName: " + name + "\nVersion: " + version + "\nSummary: A Larder test package\n",
		info + "WHEEL":       "Wheel-Version: 1.0\nGenerator: larder-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
	}
	var record strings.Builder
	for _, p := range slices.Sorted(maps.Keys(files)) {
		sum := sha256.Sum256([]byte(files[p]))
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", p, base64.RawURLEncoding.EncodeToString(sum[:]), len(files[p]))
	}
	record.WriteString(info + "RECORD,,\n")
	files[info+"RECORD"] = record.String()
	return mod + "-" + version + "-py3-none-any.whl", testenv.Zip(t, files)
}

// servedANSI matches terminal escape sequences.
var servedANSI = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)

// poetryDownloads reads Poetry's "• Installing larder-one (1.0.0): Downloading... 100%"
// messages (printed with --ansi, only for what it downloads rather than
// takes from its artifact cache) and returns the packages, sorted, each
// once.
func poetryDownloads(lines []string) []string {
	msg := regexp.MustCompile(`Installing ([a-z0-9_.-]+ \([^)]*\)): Downloading`)
	var out []string
	for _, l := range lines {
		for _, m := range msg.FindAllStringSubmatch(servedANSI.ReplaceAllString(l, ""), -1) {
			if !slices.Contains(out, m[1]) {
				out = append(out, m[1])
			}
		}
	}
	slices.Sort(out)
	return out
}

func TestPoetryPresetDownloadsOnlyNewPackages(t *testing.T) {
	env, tools := servedToolStage(t)
	repo := testenv.ServeRepo(t, "")
	// A PEP 503 "simple" index of two wheels made here.
	for _, n := range []string{"larder-one", "larder-two"} {
		file, whl := servedWheel(t, n, "1.0.0")
		sum := sha256.Sum256(whl)
		repo.Put("/files/"+file, whl)
		repo.Put("/simple/"+n+"/", []byte(fmt.Sprintf("<!DOCTYPE html>\n<html><body>\n<a href=\"/files/%s#sha256=%s\">%s</a>\n</body></html>\n", file, hex.EncodeToString(sum[:]), file)))
	}

	install := func(p *cache.Preset, pkgs ...string) build.Stage {
		var deps string
		for _, n := range pkgs {
			deps += n + " = \"1.0.0\"\n"
		}
		// Poetry 1.3 (bookworm's) has no source priorities: default = true
		// makes the source replace PyPI.
		pyproject := `[tool.poetry]
name = "app"
version = "0.1.0"
description = ""
authors = ["Larder <larder@example.com>"]

[tool.poetry.dependencies]
python = "^3.11"
` + deps + `
[[tool.poetry.source]]
name = "larder"
url = "` + repo.URL + `/simple/"
default = true

[build-system]
requires = ["poetry-core"]
build-backend = "poetry.core.masonry.api"`
		// --ansi: Poetry says "Downloading" only in decorated output.
		return tools.Run("mkdir -p /app && cd /app && "+servedFile("pyproject.toml", pyproject)+
			"export PYTHON_KEYRING_BACKEND=keyring.backends.null.Keyring POETRY_VIRTUALENVS_IN_PROJECT=true && "+
			"poetry install --no-root --no-interaction --ansi && .venv/bin/python -c 'import larder_one' # "+p.Project(), p)
	}
	wheels := func(h map[string]int) [2]int {
		return [2]int{h["/files/larder_one-1.0.0-py3-none-any.whl"], h["/files/larder_two-1.0.0-py3-none-any.whl"]}
	}
	poetry := cache.Poetry(cache.Project("poetry-" + presetNonce()))
	_, lines1 := presetSolve(t, env, install(poetry, "larder-one"))
	after1 := wheels(repo.Hits())
	_, lines2 := presetSolve(t, env, install(poetry, "larder-one", "larder-two"))
	after2 := wheels(repo.Hits())
	control := cache.Poetry(cache.Project("poetry-control-" + presetNonce()))
	_, lines3 := presetSolve(t, env, install(control, "larder-one", "larder-two"))
	after3 := wheels(repo.Hits())
	d1, d2, d3 := poetryDownloads(lines1), poetryDownloads(lines2), poetryDownloads(lines3)
	t.Logf("build 1 (larder-one): Poetry downloaded %q", d1)
	t.Logf("build 2 (larder-one, larder-two): Poetry downloaded %q", d2)
	t.Logf("control (both, another project's empty cache): Poetry downloaded %q", d3)
	// Poetry 1.3 downloads each wheel twice into an empty cache: once
	// while locking, to read its metadata (kept in cache/repositories),
	// and once to install it (kept in artifacts). It prints only the
	// second.
	t.Logf("wheel requests (larder-one, larder-two) on the server after build 1 %v, build 2 %v, control %v", after1, after2, after3)
	for _, l := range lines2 {
		if l = strings.TrimSpace(servedANSI.ReplaceAllString(l, "")); strings.Contains(l, ": Downloading... 100%") {
			t.Logf("build 2: %s", l)
		}
	}
	if !slices.Equal(d1, []string{"larder-one (1.0.0)"}) {
		t.Fatalf("build 1 downloaded %q, want larder-one; Poetry printed:\n%s", d1, strings.Join(lines1, "\n"))
	}
	if !slices.Equal(d2, []string{"larder-two (1.0.0)"}) {
		t.Errorf("build 2 downloaded %q, want only larder-two (larder-one is in the cache); Poetry printed:\n%s", d2, strings.Join(lines2, "\n"))
	}
	if !slices.Equal(d3, []string{"larder-one (1.0.0)", "larder-two (1.0.0)"}) {
		t.Errorf("with an empty cache Poetry downloaded %q, want both", d3)
	}
	if after2[0] != after1[0] || after2[1] == 0 || after3[0] != 2*after1[0] || after3[1] != 2*after2[1] {
		t.Errorf("the server saw wheel requests after build 1 %v, build 2 %v, the control %v: build 2 should request only larder-two, the control both as often as an empty cache does", after1, after2, after3)
	}
}
