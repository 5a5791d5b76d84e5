package larder

// Everything a user can get wrong is rejected before a daemon is contacted,
// with an error that names the value and says what to pass instead. This
// table holds one row per mistake, across build, mounts, cache and
// buildtest (remote has its own table, in remote/badinput_test.go).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/buildtest"
	"github.com/larder-build/larder/cache"
	"github.com/larder-build/larder/mounts"
	"github.com/moby/buildkit/client"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// badInput is one mistake and what rejecting it must look like.
type badInput struct {
	name string
	pkg  string // the package whose API takes the bad input
	// setup prepares the environment and files the calls need.
	setup func(t *testing.T, e *badEnv)
	// calls make the mistake, each through one API; every one of them
	// must reject it.
	calls []badCall
	// value are substrings that name the offending value, or the option
	// with its value.
	value []string
	// fix is the substring that says what to pass instead. It is "" only
	// when gap says why the message does not say it today.
	fix string
	gap string
	// absent are substrings no message may hold: credentials.
	absent []string
	// known is a bug or a mistake not caught today: while the calls
	// panic or reach the builder, the row is skipped with this note.
	known string
}

// badEnv is what a row's setup makes and its calls read.
type badEnv struct {
	dir, file, missing, sock string
}

// badCall makes the mistake through one API and returns its error. b
// is the builder it must not contact.
type badCall struct {
	how string
	run func(t *testing.T, e *badEnv, b *refuser) error
}

// refuser is a build.Builder that must not be contacted: Solve may ask its
// platforms while it checks its input (to pick the default), but a call to
// Acquire means a mistake went through the checks.
type refuser struct {
	mu        sync.Mutex
	platforms []ocispecs.Platform
	acquired  int
}

var errRefused = errors.New("refuser: a builder was contacted")

func newRefuser() *refuser {
	return &refuser{platforms: []ocispecs.Platform{{OS: "linux", Architecture: "amd64"}}}
}

func (b *refuser) Platforms() []ocispecs.Platform {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.platforms
}

func (b *refuser) Acquire(context.Context, ocispecs.Platform, string) (*client.Client, string, func(error), error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.acquired++
	return nil, "", nil, errRefused
}

// btBuilder is the builder buildtest's rows use: buildtest keeps one for
// the whole test binary, so it forwards to the refuser of the call at hand.
type btBuilder struct {
	mu  sync.Mutex
	cur *refuser
}

func (p *btBuilder) use(b *refuser) {
	p.mu.Lock()
	p.cur = b
	p.mu.Unlock()
}

func (p *btBuilder) get() *refuser {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil {
		return newRefuser() // a call outside a row: still refused
	}
	return p.cur
}

func (p *btBuilder) Platforms() []ocispecs.Platform { return p.get().Platforms() }

func (p *btBuilder) Acquire(ctx context.Context, pl ocispecs.Platform, key string) (*client.Client, string, func(error), error) {
	return p.get().Acquire(ctx, pl, key)
}

var (
	btShared = &btBuilder{}
	btOnce   sync.Once
)

// btSetup gives buildtest the forwarding builder and has a test ask for
// it, as a package's first test would.
func btSetup(t *testing.T) {
	btOnce.Do(func() {
		buildtest.UseBuilder(btShared)
		buildtest.Builder(t)
	})
}

// fatalTB records the message a buildtest helper fails the test with,
// instead of failing the test.
type fatalTB struct {
	testing.TB
	mu  sync.Mutex
	msg []string
}

func (f *fatalTB) record(s string) {
	f.mu.Lock()
	f.msg = append(f.msg, s)
	f.mu.Unlock()
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Error(args ...any) { f.record(fmt.Sprint(args...)) }

func (f *fatalTB) Errorf(format string, args ...any) { f.record(fmt.Sprintf(format, args...)) }

func (f *fatalTB) Fatal(args ...any) {
	f.record(fmt.Sprint(args...))
	runtime.Goexit()
}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.record(fmt.Sprintf(format, args...))
	runtime.Goexit()
}

func (f *fatalTB) FailNow() {
	f.record("FailNow")
	runtime.Goexit()
}

func (f *fatalTB) Skip(args ...any) {
	f.record("skipped: " + fmt.Sprint(args...))
	runtime.Goexit()
}

func (f *fatalTB) Skipf(format string, args ...any) {
	f.record("skipped: " + fmt.Sprintf(format, args...))
	runtime.Goexit()
}

func (f *fatalTB) SkipNow() {
	f.record("skipped")
	runtime.Goexit()
}

// alpine is a valid stage for the mistakes made in options.
var alpine = build.Image("alpine:3.20")

// solveWith makes the mistake through build.Solve, with options made when
// the call runs.
func solveWith(s build.Stage, opts func(e *badEnv) []build.SolveOption) badCall {
	return badCall{"Solve", func(_ *testing.T, e *badEnv, b *refuser) error {
		_, err := build.Solve(context.Background(), b, s, opts(e)...)
		return err
	}}
}

// solve makes the mistake through build.Solve.
func solve(s build.Stage, opts ...build.SolveOption) badCall {
	return solveWith(s, func(*badEnv) []build.SolveOption { return opts })
}

// solveOpts makes the mistake with options of a solve of a valid stage.
func solveOpts(opts ...build.SolveOption) []badCall { return []badCall{solve(alpine, opts...)} }

// stage makes the mistake in a stage: through Solve and Stage.Err.
func stage(s build.Stage) []badCall {
	return []badCall{solve(s), direct("Stage.Err", s.Err)}
}

// direct makes the mistake with a call that returns its error.
func direct(how string, f func() error) badCall {
	return badCall{how, func(*testing.T, *badEnv, *refuser) error { return f() }}
}

// mount makes the mistake in a mount: on a step that Solve builds, with
// mounts.Validate and with the mount's Validate.
func mount(m mounts.Mount) []badCall {
	return []badCall{
		solve(alpine.Run("true", m)),
		direct("mounts.Validate", func() error { return mounts.Validate(m) }),
		direct("Mount.Validate", m.Validate),
	}
}

// parse makes the mistake in the text of a mount.
func parse(s string, opts ...mounts.ParseOption) []badCall {
	return []badCall{direct("mounts.Parse", func() error {
		m, err := mounts.Parse(s, opts...)
		if err == nil && m == nil {
			return errors.New("mounts.Parse returned neither a mount nor an error")
		}
		return err
	})}
}

// preset makes the mistake in a preset: on a step that Solve builds and
// with the preset's Validate.
func preset(p *cache.Preset) []badCall {
	return []badCall{solve(alpine.Run("true", p)), direct("Preset.Validate", p.Validate)}
}

// exportTo makes the mistake in a backend used for export: CacheTo and
// ExportAttrs.
func exportTo(b cache.Backend) []badCall {
	return []badCall{
		solve(alpine, build.CacheTo(b)),
		direct("ExportAttrs", func() error { _, err := b.ExportAttrs(); return err }),
	}
}

// importFrom makes the mistake in a backend used for import: CacheFrom and
// ImportAttrs.
func importFrom(b cache.Backend) []badCall {
	return []badCall{
		solve(alpine, build.CacheFrom(b)),
		direct("ImportAttrs", func() error { _, err := b.ImportAttrs(); return err }),
	}
}

// backend makes the mistake in a backend used both ways.
func backend(b cache.Backend) []badCall { return append(exportTo(b), importFrom(b)...) }

// store makes the mistake in a mount store: PersistCacheMounts and the
// store's Validate.
func store(s cache.MountStore) []badCall {
	return []badCall{solve(alpine, build.PersistCacheMounts(s)), direct("MountStore.Validate", s.Validate)}
}

// bt makes the mistake through a buildtest helper, whose failure of the
// test becomes the error.
func bt(how string, f func(tb testing.TB)) badCall {
	return badCall{how, func(t *testing.T, _ *badEnv, b *refuser) error {
		btSetup(t)
		btShared.use(b)
		defer btShared.use(nil)
		rec := &fatalTB{TB: t}
		done := make(chan any, 1)
		go func() {
			defer func() { done <- recover() }()
			f(rec)
		}()
		if r := <-done; r != nil {
			panic(r)
		}
		if len(rec.msg) == 0 {
			return nil
		}
		return errors.New(strings.Join(rec.msg, "\n"))
	}}
}

// panics makes the mistake with a call that panics on it; the panic's
// message is the error.
func panics(how string, f func()) badCall {
	return badCall{how, func(t *testing.T, _ *badEnv, _ *refuser) (err error) {
		btSetup(t)
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("panic: %v", r)
			}
		}()
		f()
		return nil
	}}
}

// unsetEnv unsets the variables for the rest of the test.
func unsetEnv(t *testing.T, names ...string) {
	for _, n := range names {
		t.Setenv(n, "")
		os.Unsetenv(n)
	}
}

// noGHAEnv clears what a GitHub Actions runner sets, so GHA rows read
// only their options.
func noGHAEnv(t *testing.T, _ *badEnv) {
	unsetEnv(t, "ACTIONS_CACHE_URL", "ACTIONS_RESULTS_URL", "ACTIONS_RUNTIME_TOKEN", "ACTIONS_CACHE_SERVICE_V2")
}

const (
	badGHAToken  = "ghs_badinputTOKENvalue123"
	badAccessKey = "AKIABADINPUTKEY12345"
	badSecretKey = "badInputSecretKeyValue+xyz987"
	badPassword  = "badInputPassw0rd"
)

func TestBadInput(t *testing.T) {
	goodSum := "sha256:" + strings.Repeat("a", 64)
	const (
		gitURL  = "https://github.com/example/app.git"
		httpURL = "https://example.com/tool.tgz"
		ref     = "registry.example.com/team/app:buildcache"
		ghaURL  = "https://cache.example.com/"
	)
	tooLong := strings.Repeat("a", 129)
	withURLAndToken := func(opts ...cache.GHAOption) cache.Backend {
		return cache.GHA(append([]cache.GHAOption{cache.URL(ghaURL), cache.Token(badGHAToken)}, opts...)...)
	}
	fromStage := mounts.FromState(alpine.State())

	rows := []badInput{
		// ---- build: sources ----
		{name: "Image uppercase", pkg: "build", calls: stage(build.Image("Debian:Bookworm")),
			value: []string{`Image("Debian:Bookworm")`, "must be lowercase"}, fix: "want a reference such as debian:bookworm"},
		{name: "Image empty", pkg: "build", calls: stage(build.Image("")),
			value: []string{`Image("")`}, fix: "want a reference such as debian:bookworm"},
		{name: "Image with a space", pkg: "build", calls: stage(build.Image("a b")),
			value: []string{`Image("a b")`}, fix: "want a reference such as"},
		{name: "Image with a scheme", pkg: "build", calls: stage(build.Image("https://registry.example.com/app")),
			value: []string{`Image("https://registry.example.com/app")`}, fix: "want a reference such as"},
		{name: "Image short digest", pkg: "build", calls: stage(build.Image("alpine@sha256:abc")),
			value: []string{`Image("alpine@sha256:abc")`}, fix: "host:port/repo:tag"},
		{name: "Image empty tag", pkg: "build", calls: stage(build.Image("alpine:")),
			value: []string{`Image("alpine:")`}, fix: "want a reference such as"},
		{name: "Local empty name", pkg: "build", calls: stage(build.Local("")),
			value: []string{`Local("")`, "empty name"}, fix: `such as "src"`},
		{name: "Local name with slash", pkg: "build", calls: stage(build.Local("a/b")),
			value: []string{`Local("a/b")`, `not '/'`}, fix: "letters, digits, '-', '_' and '.'"},
		{name: "Local name with space", pkg: "build", calls: stage(build.Local("my src")),
			value: []string{`Local("my src")`, `not ' '`}, fix: "letters, digits, '-', '_' and '.'"},
		{name: "Git empty remote", pkg: "build", calls: stage(build.Git("", "main")),
			value: []string{"Git: empty remote"}, fix: "want a URL such as https://host/repo.git"},
		{name: "HTTP ftp URL", pkg: "build", calls: stage(build.HTTP("ftp://example.com/tool.tgz")),
			value: []string{`HTTP("ftp://example.com/tool.tgz")`}, fix: "want an http:// or https:// URL"},
		{name: "HTTP without scheme", pkg: "build", calls: stage(build.HTTP("example.com/tool.tgz")),
			value: []string{`HTTP("example.com/tool.tgz")`}, fix: "want an http:// or https:// URL"},
		{name: "HTTP empty URL", pkg: "build", calls: stage(build.HTTP("")),
			value: []string{`HTTP("")`}, fix: "want an http:// or https:// URL"},

		// Source options on sources that do not take them.
		{name: "Include on Image", pkg: "build", calls: stage(build.Image("debian", build.Include("*.go"))),
			value: []string{`Image("debian")`, "Include does not apply to image sources"}, fix: "it applies to local"},
		{name: "Exclude on Image", pkg: "build", calls: stage(build.Image("debian", build.Exclude("vendor"))),
			value: []string{`Image("debian")`, "Exclude does not apply to image sources"}, fix: "it applies to local"},
		{name: "Include on Git", pkg: "build", calls: stage(build.Git(gitURL, "", build.Include("*.go"))),
			value: []string{`Git("` + gitURL + `")`, "Include does not apply to git sources"}, fix: "it applies to local"},
		{name: "Exclude on HTTP", pkg: "build", calls: stage(build.HTTP(httpURL, build.Exclude("x"))),
			value: []string{`HTTP("` + httpURL + `")`, "Exclude does not apply to http sources"}, fix: "it applies to local"},
		{name: "KeepGitDir on HTTP", pkg: "build", calls: stage(build.HTTP(httpURL, build.KeepGitDir())),
			value: []string{`HTTP("` + httpURL + `")`, "KeepGitDir does not apply to http sources"}, fix: "it applies to git"},
		{name: "KeepGitDir on Image", pkg: "build", calls: stage(build.Image("debian", build.KeepGitDir())),
			value: []string{`Image("debian")`, "KeepGitDir does not apply to image sources"}, fix: "it applies to git"},
		{name: "KeepGitDir on Local", pkg: "build", calls: stage(build.Local("src", build.KeepGitDir())),
			value: []string{`Local("src")`, "KeepGitDir does not apply to local sources"}, fix: "it applies to git"},
		{name: "Checksum on Git", pkg: "build", calls: stage(build.Git(gitURL, "main", build.Checksum(goodSum))),
			value: []string{`Git("` + gitURL + `")`, "Checksum does not apply to git sources"}, fix: "it applies to http"},
		{name: "Checksum on Local", pkg: "build", calls: stage(build.Local("src", build.Checksum(goodSum))),
			value: []string{`Local("src")`, "Checksum does not apply to local sources"}, fix: "it applies to http"},
		{name: "Filename on Local", pkg: "build", calls: stage(build.Local("src", build.Filename("a.txt"))),
			value: []string{`Local("src")`, "Filename does not apply to local sources"}, fix: "it applies to http"},
		{name: "Filename on Image", pkg: "build", calls: stage(build.Image("debian", build.Filename("a.txt"))),
			value: []string{`Image("debian")`, "Filename does not apply to image sources"}, fix: "it applies to http"},
		{name: "Platform on Local", pkg: "build", calls: stage(build.Local("src", build.Platform("linux/arm64"))),
			value: []string{`Local("src")`, "Platform does not apply to local sources"}, fix: "it applies to image"},
		{name: "Platform on Git", pkg: "build", calls: stage(build.Git(gitURL, "", build.Platform("linux/arm64"))),
			value: []string{`Git("` + gitURL + `")`, "Platform does not apply to git sources"}, fix: "it applies to image"},
		{name: "Platform on HTTP", pkg: "build", calls: stage(build.HTTP(httpURL, build.Platform("linux/arm64"))),
			value: []string{`HTTP("` + httpURL + `")`, "Platform does not apply to http sources"}, fix: "it applies to image"},

		// ---- build: Dockerfile ----
		{name: "Dockerfile empty", pkg: "build", calls: stage(build.Dockerfile(nil, build.Scratch())),
			value: []string{"build: Dockerfile: the Dockerfile is empty"}, fix: `give its content, such as os.ReadFile("Dockerfile")`},
		{name: "Dockerfile without FROM", pkg: "build", calls: stage(build.Dockerfile([]byte("ARG V=1\n"), build.Scratch())),
			value: []string{"build: Dockerfile: no FROM"}, fix: "starts its first stage with FROM"},
		{name: "Dockerfile instruction without arguments", pkg: "build", calls: stage(build.Dockerfile([]byte("FROM alpine\nCOPY\n"), build.Scratch())),
			value: []string{"build: Dockerfile:2:", "COPY"}, fix: "requires at least two arguments"},
		{name: "Dockerfile unknown instruction", pkg: "build", calls: stage(build.Dockerfile([]byte("FROM alpine\nFORM x\n"), build.Scratch(), build.DockerfileName("ci/Dockerfile"))),
			value: []string{"build: ci/Dockerfile:2:", "unknown instruction: FORM"}, fix: "did you mean FROM?"},
		{name: "Dockerfile unknown mount type", pkg: "build", calls: stage(build.Dockerfile([]byte("FROM alpine\nRUN --mount=type=cahce,target=/c true\n"), build.Scratch())),
			value: []string{"build: Dockerfile:2:", `unsupported mount type "cahce"`}, fix: "did you mean cache?"},
		{name: "BuildArg name with a dash", pkg: "build", calls: stage(build.Dockerfile([]byte("FROM alpine\n"), build.Scratch(), build.BuildArg("my-arg", "1"))),
			value: []string{`BuildArg("my-arg")`}, fix: `want an ARG name of letters, digits and '_', such as "VERSION"`},
		{name: "Target empty", pkg: "build", calls: stage(build.Dockerfile([]byte("FROM alpine\n"), build.Scratch(), build.Target(""))),
			value: []string{`Target("")`}, fix: "give the name of a FROM … AS stage, or leave the option out for the last"},
		{name: "Target not in the Dockerfile", pkg: "build", calls: stage(build.Dockerfile([]byte("FROM alpine AS build\nFROM alpine AS test\n"), build.Scratch(), build.Target("tset"))),
			value: []string{`Target("tset"): no stage of that name`}, fix: "the stages are build, test"},
		{name: "BuildContext empty name", pkg: "build", calls: stage(build.Dockerfile([]byte("FROM alpine\n"), build.Scratch(), build.BuildContext("", alpine))),
			value: []string{`BuildContext("")`}, fix: `want a context name, such as "src"`},
		{name: "BuildContext twice", pkg: "build", calls: stage(build.Dockerfile([]byte("FROM alpine\n"), build.Scratch(), build.BuildContext("src", alpine), build.BuildContext("src", alpine))),
			value: []string{`BuildContext("src"): given twice`}, fix: "give each name once"},
		{name: "BuildContext of a bad stage", pkg: "build", calls: stage(build.Dockerfile([]byte("FROM alpine\n"), build.Scratch(), build.BuildContext("src", build.Local("a/b")))),
			value: []string{`Local("a/b")`}, fix: "letters, digits, '-', '_' and '.'"},
		{name: "Dockerfile context a bad stage", pkg: "build", calls: stage(build.Dockerfile([]byte("FROM alpine\n"), build.Image("Alpine"))),
			value: []string{`Image("Alpine")`}, fix: "want a reference such as"},
		{name: "DockerfileName empty", pkg: "build", calls: stage(build.Dockerfile([]byte("FROM alpine\n"), build.Scratch(), build.DockerfileName(""))),
			value: []string{`DockerfileName("")`}, fix: `give one such as "build/Dockerfile"`},
		{name: "Dockerfile nil option", pkg: "build", calls: stage(build.Dockerfile([]byte("FROM alpine\n"), build.Scratch(), nil)),
			value: []string{"build: Dockerfile: option 1 is nil"}, fix: "leave it out"},

		// Source options' own values.
		{name: "Platform option with too many parts", pkg: "build", calls: stage(build.Image("debian", build.Platform("linux/amd64/v2/extra"))),
			value: []string{`Image("debian")`, `Platform("linux/amd64/v2/extra")`}, fix: "want os/arch[/variant], such as linux/arm64"},
		{name: "Platform option empty", pkg: "build", calls: stage(build.Image("debian", build.Platform(""))),
			value: []string{`Platform("")`}, fix: "want os/arch[/variant], such as linux/arm64"},
		{name: "Platform option with a space", pkg: "build", calls: stage(build.Image("debian", build.Platform("linux/am d64"))),
			value: []string{`Platform("linux/am d64")`}, fix: "want os/arch[/variant], such as linux/arm64"},
		{name: "Checksum md5", pkg: "build", calls: stage(build.HTTP(httpURL, build.Checksum("md5:d41d8cd98f00b204e9800998ecf8427e"))),
			value: []string{`Checksum("md5:d41d8cd98f00b204e9800998ecf8427e")`}, fix: "want sha256:<64 hex digits>"},
		{name: "Checksum short", pkg: "build", calls: stage(build.HTTP(httpURL, build.Checksum("sha256:abc"))),
			value: []string{`Checksum("sha256:abc")`}, fix: "want sha256:<64 hex digits>"},
		{name: "Checksum without algorithm", pkg: "build", calls: stage(build.HTTP(httpURL, build.Checksum(strings.Repeat("a", 64)))),
			value: []string{`Checksum("` + strings.Repeat("a", 64) + `")`}, fix: "want sha256:<64 hex digits>"},
		{name: "Checksum empty", pkg: "build", calls: stage(build.HTTP(httpURL, build.Checksum(""))),
			value: []string{`Checksum("")`}, fix: "want sha256:<64 hex digits>"},
		{name: "Filename with slash", pkg: "build", calls: stage(build.HTTP(httpURL, build.Filename("bin/tool"))),
			value: []string{`Filename("bin/tool")`}, fix: "want a plain file name"},
		{name: "Filename empty", pkg: "build", calls: stage(build.HTTP(httpURL, build.Filename(""))),
			value: []string{`Filename("")`}, fix: "want a plain file name"},

		// ---- build: steps and settings ----
		{name: "Run empty", pkg: "build", calls: stage(alpine.Run("")),
			value: []string{"Run: empty command"}, fix: `give a shell command, such as "make"`},
		{name: "Run blank", pkg: "build", calls: stage(alpine.Run(" \t\n")),
			value: []string{"Run: empty command"}, fix: `give a shell command, such as "make"`},
		{name: "RunArgs nil", pkg: "build", calls: stage(alpine.RunArgs(nil)),
			value: []string{"RunArgs: empty argv"}, fix: "give the program and its arguments"},
		{name: "RunArgs empty program", pkg: "build", calls: stage(alpine.RunArgs([]string{"", "x"})),
			value: []string{"RunArgs: empty argv"}, fix: "give the program and its arguments"},
		{name: "Run nil option", pkg: "build", calls: stage(alpine.Run("make", nil)),
			value: []string{`Run("make")`, "option 1 is nil"}, fix: "leave it out"},
		{name: "RunArgs relative mount", pkg: "build", calls: stage(alpine.RunArgs([]string{"make"}, mounts.Tmpfs("tmp"))),
			value: []string{`RunArgs(["make"])`, `tmpfs mount "tmp"`}, fix: `did you mean "/tmp"?`},
		{name: "Env empty key", pkg: "build", calls: stage(alpine.Env("", "x")),
			value: []string{`Env("")`}, fix: "want a variable name without '=' or spaces"},
		{name: "Env key with =", pkg: "build", calls: stage(alpine.Env("A=B", "x")),
			value: []string{`Env("A=B")`}, fix: "want a variable name without '=' or spaces"},
		{name: "Env key with space", pkg: "build", calls: stage(alpine.Env("MY VAR", "x")),
			value: []string{`Env("MY VAR")`}, fix: "want a variable name without '=' or spaces"},
		{name: "Env key with tab", pkg: "build", calls: stage(alpine.Env("A\tB", "x")),
			value: []string{`Env("A\tB")`}, fix: "want a variable name without '=' or spaces"},
		{name: "Env mistake travels to later steps", pkg: "build", calls: stage(alpine.Env("", "x").Run("make").Dir("/src")),
			value: []string{`Env("")`}, fix: "want a variable name without '=' or spaces"},
		{name: "Dir empty", pkg: "build", calls: stage(alpine.Dir("")),
			value: []string{"Dir: empty path"}, fix: `give the working directory, such as "/src"`},
		{name: "User empty", pkg: "build", calls: stage(alpine.User("")),
			value: []string{"User: empty user"}, fix: `give a name, uid or uid:gid, such as "app" or "1000:1000"`},
		{name: "Stage.Platform bad", pkg: "build", calls: stage(alpine.Platform("bad!")),
			value: []string{`Platform("bad!")`}, fix: "want os/arch[/variant], such as linux/arm64"},
		{name: "Stage.Platform empty", pkg: "build", calls: stage(alpine.Platform("")),
			value: []string{`Platform("")`}, fix: "want os/arch[/variant], such as linux/arm64"},
		{name: "Stage.Platform too many parts", pkg: "build", calls: stage(alpine.Platform("linux/arm/v7/x")),
			value: []string{`Platform("linux/arm/v7/x")`}, fix: "want os/arch[/variant], such as linux/arm64"},
		{name: "Marshal platform", pkg: "build",
			calls: []badCall{direct("Stage.Marshal", func() error { _, err := alpine.Marshal(context.Background(), "not a platform"); return err })},
			value: []string{`Marshal("not a platform")`}, fix: "want os/arch[/variant], such as linux/arm64"},
		{name: "Copy empty source", pkg: "build", calls: stage(alpine.Copy(alpine, "", "/dst")),
			value: []string{`Copy("", "/dst"): empty path`}, fix: "give both the source path and the destination"},
		{name: "Copy empty destination", pkg: "build", calls: stage(alpine.Copy(alpine, "/src", "")),
			value: []string{`Copy("/src", ""): empty path`}, fix: "give both the source path and the destination"},
		{name: "Chown negative uid", pkg: "build", calls: stage(alpine.Copy(alpine, "/a", "/b", build.Chown(-1, 0))),
			value: []string{`Copy("/a", "/b")`, "Chown(-1, 0)"}, fix: "give 0 or more"},
		{name: "Chown negative gid", pkg: "build", calls: stage(alpine.Copy(alpine, "/a", "/b", build.Chown(0, -5))),
			value: []string{"Chown(0, -5)"}, fix: "give 0 or more"},
		{name: "Chmod too large", pkg: "build", calls: stage(alpine.Copy(alpine, "/a", "/b", build.Chmod(0o10000))),
			value: []string{`Copy("/a", "/b")`, "Chmod(010000)"}, fix: "want permission bits within 0o7777"},
		{name: "Chmod with a Go mode bit", pkg: "build", calls: stage(alpine.Copy(alpine, "/a", "/b", build.Chmod(os.ModeDir|0o755))),
			value: []string{"Chmod(020000000755)"}, fix: "want permission bits within 0o7777"},
		{name: "ChownUser empty", pkg: "build", calls: stage(alpine.Copy(alpine, "/a", "/b", build.ChownUser(""))),
			value: []string{`ChownUser("")`}, fix: "want user or user:group"},
		{name: "ChownUser without user", pkg: "build", calls: stage(alpine.Copy(alpine, "/a", "/b", build.ChownUser(":staff"))),
			value: []string{`ChownUser(":staff")`}, fix: "want user or user:group"},
		{name: "ChownUser without group", pkg: "build", calls: stage(alpine.Copy(alpine, "/a", "/b", build.ChownUser("app:"))),
			value: []string{`ChownUser("app:")`}, fix: "want user or user:group"},
		{name: "Copy from a bad stage", pkg: "build", calls: stage(build.Scratch().Copy(build.Image("Bad"), "/a", "/b")),
			value: []string{`Image("Bad")`}, fix: "want a reference such as"},
		{name: "mount of a bad stage", pkg: "build", calls: stage(alpine.Run("ls", mounts.Bind("/m", build.Local("a/b")))),
			value: []string{`Local("a/b")`}, fix: "letters, digits, '-', '_' and '.'"},
		{name: "Copy nil option", pkg: "build",
			calls: []badCall{
				{"Solve", func(_ *testing.T, _ *badEnv, b *refuser) error {
					_, err := build.Solve(context.Background(), b, alpine.Copy(alpine, "/a", "/b", nil))
					return err
				}},
			},
			value: []string{`Copy("/a", "/b")`, "option 1 is nil"}, fix: "leave it out"},

		// ---- build: solve options ----
		{name: "WithLocal missing directory", pkg: "build",
			calls: []badCall{solveWith(alpine, func(e *badEnv) []build.SolveOption { return []build.SolveOption{build.WithLocal("src", e.missing)} })},
			value: []string{`WithLocal("src", "`, "missing", "no such file or directory"}, fix: "give an existing directory"},
		{name: "WithLocal of a file", pkg: "build",
			calls: []badCall{solveWith(alpine, func(e *badEnv) []build.SolveOption { return []build.SolveOption{build.WithLocal("src", e.file)} })},
			value: []string{`WithLocal("src", "`, "not a directory"}, fix: "give the directory to send"},
		{name: "WithLocal twice", pkg: "build",
			calls: []badCall{solveWith(alpine, func(e *badEnv) []build.SolveOption {
				return []build.SolveOption{build.WithLocal("src", e.dir), build.WithLocal("src", e.dir)}
			})},
			value: []string{`WithLocal("src"): given twice`}, fix: "give each local name once"},
		{name: "WithLocal bad name", pkg: "build",
			calls: []badCall{solveWith(alpine, func(e *badEnv) []build.SolveOption { return []build.SolveOption{build.WithLocal("a/b", e.dir)} })},
			value: []string{`WithLocal("a/b")`}, fix: "letters, digits, '-', '_' and '.'"},
		{name: "WithLocal empty name", pkg: "build",
			calls: []badCall{solveWith(alpine, func(e *badEnv) []build.SolveOption { return []build.SolveOption{build.WithLocal("", e.dir)} })},
			value: []string{`WithLocal("")`, "empty name"}, fix: `such as "src"`},
		{name: "WithSecret empty id", pkg: "build", calls: solveOpts(build.WithSecret("", []byte("v"))),
			value: []string{"WithSecret: empty id"}, fix: `give the id the step's secret mount uses`},
		{name: "WithSecret twice", pkg: "build", calls: solveOpts(build.WithSecret("tok", []byte("a")), build.WithSecret("tok", []byte("b"))),
			value: []string{`WithSecret("tok"): given twice`}, fix: "give each secret id once"},
		{name: "WithSecretFile missing", pkg: "build",
			calls: []badCall{solveWith(alpine, func(e *badEnv) []build.SolveOption {
				return []build.SolveOption{build.WithSecretFile("tok", e.missing)}
			})},
			value: []string{`WithSecretFile("tok")`, "missing"}, fix: "give a file you can read"},
		{name: "WithSecretFile of a directory", pkg: "build",
			calls: []badCall{solveWith(alpine, func(e *badEnv) []build.SolveOption { return []build.SolveOption{build.WithSecretFile("tok", e.dir)} })},
			value: []string{`WithSecretFile("tok")`, "is a directory"}, fix: "give a file you can read"},
		{name: "WithSecretFile empty id", pkg: "build",
			calls: []badCall{solveWith(alpine, func(e *badEnv) []build.SolveOption { return []build.SolveOption{build.WithSecretFile("", e.file)} })},
			value: []string{"empty id"}, fix: `such as "npmrc"`},
		{name: "WithSecretEnv unset", pkg: "build",
			setup: func(t *testing.T, _ *badEnv) { unsetEnv(t, "LARDER_BADINPUT_UNSET") },
			calls: solveOpts(build.WithSecretEnv("tok", "LARDER_BADINPUT_UNSET")),
			value: []string{`WithSecretEnv("tok")`, "LARDER_BADINPUT_UNSET is not set"}, fix: "set it, or give the value with WithSecret"},
		{name: "WithSecretEnv id given twice", pkg: "build",
			setup: func(t *testing.T, _ *badEnv) { t.Setenv("LARDER_BADINPUT_SET", "v") },
			calls: solveOpts(build.WithSecret("tok", nil), build.WithSecretEnv("tok", "LARDER_BADINPUT_SET")),
			value: []string{`WithSecret("tok"): given twice`}, fix: "give each secret id once"},
		{name: "WithSSH empty id", pkg: "build", calls: solveOpts(build.WithSSH("", "/tmp/agent.sock")),
			value: []string{"WithSSH: empty id"}, fix: `the default id of an SSH mount is "default"`},
		{name: "WithSSH without path or agent", pkg: "build",
			setup: func(t *testing.T, _ *badEnv) { unsetEnv(t, "SSH_AUTH_SOCK") },
			calls: solveOpts(build.WithSSH("default")),
			value: []string{`WithSSH("default"): no path given and SSH_AUTH_SOCK is not set`}, fix: "give an agent socket or a key file path"},
		{name: "WithSSH missing socket", pkg: "build",
			calls: []badCall{solveWith(alpine, func(e *badEnv) []build.SolveOption { return []build.SolveOption{build.WithSSH("default", e.missing)} })},
			value: []string{"WithSSH", "missing"}, fix: "give the socket of a running SSH agent or a private key file"},
		{name: "Push without reference", pkg: "build", calls: solveOpts(build.Push()),
			value: []string{"Push: no reference"}, fix: `give one or more, such as "registry.example.com/team/app:1.2"`},
		{name: "Push bad reference", pkg: "build", calls: solveOpts(build.Push("bad ref!")),
			value: []string{`Push("bad ref!")`}, fix: "want host/repo:tag"},
		{name: "Push empty reference", pkg: "build", calls: solveOpts(build.Push("")),
			value: []string{`Push("")`}, fix: "want host/repo:tag"},
		{name: "Push second reference bad", pkg: "build", calls: solveOpts(build.Push("registry.example.com/app:1", "registry.example.com/App:1")),
			value: []string{`Push("registry.example.com/App:1")`}, fix: "want host/repo:tag"},
		{name: "Push to a digest", pkg: "build", calls: solveOpts(build.Push("registry.example.com/app@" + goodSum)),
			value: []string{`Push("registry.example.com/app@` + goodSum + `")`, "can't be pushed to a digest"}, fix: "want host/repo:tag"},
		{name: "OCITarball empty path", pkg: "build", calls: solveOpts(build.OCITarball("", "")),
			value: []string{"OCITarball: empty path"}, fix: `give the file to write, such as "app.tar"`},
		{name: "OCITarball missing directory", pkg: "build",
			calls: []badCall{solveWith(alpine, func(e *badEnv) []build.SolveOption {
				return []build.SolveOption{build.OCITarball(filepath.Join(e.missing, "img.tar"), "")}
			})},
			value: []string{`OCITarball("`, "missing", "does not exist"}, fix: "make it, or write the file elsewhere"},
		{name: "OCITarball bad reference", pkg: "build",
			calls: []badCall{solveWith(alpine, func(e *badEnv) []build.SolveOption {
				return []build.SolveOption{build.OCITarball(filepath.Join(e.dir, "img.tar"), "bad ref!")}
			})},
			value: []string{`OCITarball("`, `"bad ref!"`}, fix: "want a reference such as app:1.2"},
		{name: "DockerTarball empty path", pkg: "build", calls: solveOpts(build.DockerTarball("", "app:1")),
			value: []string{"DockerTarball: empty path"}, fix: `give the file to write, such as "app.tar"`},
		{name: "DockerTarball missing directory", pkg: "build",
			calls: []badCall{solveWith(alpine, func(e *badEnv) []build.SolveOption {
				return []build.SolveOption{build.DockerTarball(filepath.Join(e.missing, "img.tar"), "app:1")}
			})},
			value: []string{`DockerTarball("`, "missing", "does not exist"}, fix: "make it, or write the file elsewhere"},
		{name: "DockerTarball without reference", pkg: "build",
			calls: []badCall{solveWith(alpine, func(e *badEnv) []build.SolveOption {
				return []build.SolveOption{build.DockerTarball(filepath.Join(e.dir, "img.tar"), "")}
			})},
			value: []string{`DockerTarball("`, "a reference is needed to tag the image"}, fix: `give one such as "app:1.2"`},
		{name: "DockerTarball bad reference", pkg: "build",
			calls: []badCall{solveWith(alpine, func(e *badEnv) []build.SolveOption {
				return []build.SolveOption{build.DockerTarball(filepath.Join(e.dir, "img.tar"), "App:1")}
			})},
			value: []string{`DockerTarball("`, `"App:1"`}, fix: "want a reference such as app:1.2"},
		{name: "LocalDir empty", pkg: "build", calls: solveOpts(build.LocalDir("")),
			value: []string{"LocalDir: empty path"}, fix: `give the directory to write, such as "./out"`},
		{name: "LocalDir on a file", pkg: "build",
			calls: []badCall{solveWith(alpine, func(e *badEnv) []build.SolveOption { return []build.SolveOption{build.LocalDir(e.file)} })},
			value: []string{`LocalDir("`, "a file is there"}, fix: "give a directory, new or existing"},
		{name: "two tarballs on one path", pkg: "build",
			calls: []badCall{solveWith(alpine, func(e *badEnv) []build.SolveOption {
				p := filepath.Join(e.dir, "img.tar")
				return []build.SolveOption{build.OCITarball(p, ""), build.DockerTarball(p, "app:1")}
			})},
			value: []string{`DockerTarball("`, "OCITarball writes there too"}, fix: "give each output a path of its own"},
		{name: "LocalDir on a tarball's path", pkg: "build",
			calls: []badCall{solveWith(alpine, func(e *badEnv) []build.SolveOption {
				p := filepath.Join(e.dir, "x")
				return []build.SolveOption{build.OCITarball(p, ""), build.LocalDir(p)}
			})},
			value: []string{`LocalDir("`, "OCITarball writes there too"}, fix: "give each output a path of its own"},
		{name: "LocalDir twice", pkg: "build",
			calls: []badCall{solveWith(alpine, func(e *badEnv) []build.SolveOption {
				p := filepath.Join(e.dir, "out")
				return []build.SolveOption{build.LocalDir(p), build.LocalDir(p)}
			})},
			value: []string{`LocalDir("`, "LocalDir writes there too"}, fix: "give each output a path of its own"},
		{name: "tarball with several platforms", pkg: "build",
			calls: []badCall{solveWith(alpine, func(e *badEnv) []build.SolveOption {
				return []build.SolveOption{build.Platforms("linux/amd64", "linux/arm64"), build.DockerTarball(filepath.Join(e.dir, "x.tar"), "app:1")}
			})},
			value: []string{"DockerTarball writes a single platform's image, but 2 platforms are built"}, fix: "Push an index or write an OCITarball, or solve each platform on its own"},
		{name: "Export with several platforms", pkg: "build",
			calls: solveOpts(build.Platforms("linux/amd64", "linux/arm64"), build.Export(client.ExportEntry{Type: "oci"})),
			value: []string{"Export writes a single platform's image, but 2 platforms are built"}, fix: "Push an index or write an OCITarball, or solve each platform on its own"},
		{name: "Export without type", pkg: "build", calls: solveOpts(build.Export(client.ExportEntry{})),
			value: []string{"Export: entry has no Type"}, fix: "set it to one of BuildKit's exporters, such as client.ExporterOCI"},
		{name: "Export unknown type", pkg: "build", calls: solveOpts(build.Export(client.ExportEntry{Type: "oci-layout"})),
			value: []string{`unknown exporter type "oci-layout"`}, fix: "want one of image, registry, local, tar, oci, docker, cacheonly"},
		{name: "CacheFrom nil", pkg: "build", calls: solveOpts(build.CacheFrom(nil)),
			value: []string{"CacheFrom: nil backend"}, fix: `pass one such as cache.Registry("host/repo:buildcache")`},
		{name: "CacheTo nil", pkg: "build", calls: solveOpts(build.CacheTo(cache.Inline(), nil)),
			value: []string{"CacheTo: nil backend"}, fix: `pass one such as cache.Registry("host/repo:buildcache", cache.ModeMax)`},
		{name: "Platforms none", pkg: "build", calls: solveOpts(build.Platforms()),
			value: []string{"Platforms: no platform"}, fix: `give at least one, such as "linux/amd64"`},
		{name: "Platforms bad", pkg: "build", calls: solveOpts(build.Platforms("linux/")),
			value: []string{`Platforms("linux/")`}, fix: "want os/arch[/variant], such as linux/arm64"},
		{name: "Platforms empty string", pkg: "build", calls: solveOpts(build.Platforms("")),
			value: []string{`Platforms("")`}, fix: "want os/arch[/variant], such as linux/arm64"},
		{name: "Platforms given twice", pkg: "build", calls: solveOpts(build.Platforms("linux/amd64", "linux/amd64")),
			value: []string{"Platforms: linux/amd64 given twice"}, fix: "give each platform once"},
		{name: "Platforms given twice under two names", pkg: "build", calls: solveOpts(build.Platforms("linux/arm64", "linux/aarch64")),
			value: []string{"Platforms: linux/arm64 given twice"}, fix: "give each platform once"},
		{name: "Progress bad mode", pkg: "build", calls: solveOpts(build.Progress(io.Discard, "fancy")),
			value: []string{`Progress: mode "fancy"`}, fix: "want auto, tty, plain, rawjson or quiet"},
		{name: "Progress empty mode", pkg: "build", calls: solveOpts(build.Progress(io.Discard, "")),
			value: []string{`Progress: mode ""`}, fix: "want auto, tty, plain, rawjson or quiet"},
		{name: "Progress nil writer", pkg: "build", calls: solveOpts(build.Progress(nil, "plain")),
			value: []string{"Progress: nil writer"}, fix: "pass os.Stderr, or leave the option out"},
		{name: "OnEvent nil", pkg: "build", calls: solveOpts(build.OnEvent(nil)),
			value: []string{"OnEvent: nil func"}, fix: "pass a func(build.Event), or leave the option out"},
		{name: "WithKeychain nil", pkg: "build", calls: solveOpts(build.WithKeychain(nil)),
			value: []string{"WithKeychain: nil keychain"}, fix: "pass authn.DefaultKeychain"},
		{name: "nil solve option", pkg: "build", calls: solveOpts(nil),
			value: []string{"build: Solve: nil option"}, fix: "leave it out of the list"},
		{name: "nil builder", pkg: "build",
			calls: []badCall{{"Solve", func(*testing.T, *badEnv, *refuser) error {
				_, err := build.Solve(context.Background(), nil, alpine)
				return err
			}}},
			value: []string{"build: Solve: nil builder"}, fix: "pass a *remote.Builder from remote.Dial or remote.Start, or a *remote.Fleet"},
		{name: "builder without platforms", pkg: "build",
			calls: []badCall{{"Solve", func(_ *testing.T, _ *badEnv, b *refuser) error {
				b.platforms = nil
				_, err := build.Solve(context.Background(), b, alpine)
				return err
			}}},
			value: []string{"the builder lists no platform"}, fix: "set one with Platforms"},
		{name: "PersistCacheMounts empty Namespace", pkg: "build",
			calls: solveOpts(build.PersistCacheMounts(cache.DirStore("/var/cache/larder"), build.Namespace(""))),
			value: []string{"PersistCacheMounts: Namespace: empty"}, fix: `give the project's name, such as "team-app"`},
		{name: "PersistCacheMounts nil store", pkg: "build",
			calls: []badCall{{"Solve", func(_ *testing.T, _ *badEnv, b *refuser) error {
				_, err := build.Solve(context.Background(), b, alpine, build.PersistCacheMounts(nil))
				return err
			}}},
			value: []string{"PersistCacheMounts: nil store"}, fix: "pass one such as cache.RegistryStore"},
		{name: "PersistCacheMounts nil option", pkg: "build",
			calls: []badCall{{"Solve", func(_ *testing.T, _ *badEnv, b *refuser) error {
				_, err := build.Solve(context.Background(), b, alpine, build.PersistCacheMounts(cache.DirStore("/var/cache/larder"), nil))
				return err
			}}},
			value: []string{"PersistCacheMounts: option 1 is nil"}, fix: "leave it out"},

		// What the graph needs from the session.
		{name: "Local without WithLocal", pkg: "build", calls: []badCall{solve(build.Local("src"))},
			value: []string{`the graph uses Local("src")`}, fix: `no WithLocal("src", dir) was given`},
		{name: "Local in a bind mount without WithLocal", pkg: "build",
			calls: []badCall{solve(alpine.Run("ls /ctx", mounts.Bind("/ctx", build.Local("ctx"))))},
			value: []string{`the graph uses Local("ctx")`}, fix: `no WithLocal("ctx", dir) was given`},
		{name: "required secret without WithSecret", pkg: "build",
			calls: []badCall{solve(alpine.Run("cat /run/secrets/tok", mounts.Secret("tok", mounts.Required())))},
			value: []string{`the required secret "tok"`}, fix: `no WithSecret("tok", …) was given`},
		{name: "required secret variable without WithSecret", pkg: "build",
			calls: []badCall{solve(alpine.Run("echo $TOKEN", mounts.Secret("tok", mounts.Env("TOKEN"), mounts.Required())))},
			value: []string{`the required secret "tok" into $TOKEN`}, fix: `no WithSecret("tok", …) was given`},
		{name: "required SSH without WithSSH", pkg: "build",
			calls: []badCall{solve(alpine.Run("ssh-add -l", mounts.SSH(mounts.Required())))},
			value: []string{`the required SSH agent "default"`}, fix: `no WithSSH("default", …) was given`},
		{name: "required SSH under another id", pkg: "build",
			setup: func(t *testing.T, e *badEnv) { e.sock = agentSocket(t) },
			calls: []badCall{solveWith(alpine.Run("git fetch", mounts.SSH(mounts.ID("github"), mounts.Required())),
				func(e *badEnv) []build.SolveOption { return []build.SolveOption{build.WithSSH("default", e.sock)} })},
			value: []string{`the required SSH agent "github"`}, fix: `no WithSSH("github", …) was given`},

		// ---- build: inputs not checked today ----
		{name: "Git remote that is no URL", pkg: "build", calls: []badCall{solve(build.Git(":::", ""))},
			value: []string{`Git(":::")`}, fix: "want an https://, http://, ssh:// or git:// URL, or user@host:path"},
		{name: "HTTP URL without host", pkg: "build", calls: []badCall{solve(build.HTTP("http://"))},
			value: []string{`HTTP("http://")`}, fix: "with a host, such as https://example.com/tool.tgz"},
		{name: "Label empty key", pkg: "build", calls: []badCall{solve(alpine.Label("", "x"))},
			value: []string{`Label("")`}, fix: "give a label key"},

		// ---- build: image configuration and outputs ----
		{name: "Load empty reference", pkg: "build", calls: solveOpts(build.Load("")),
			value: []string{"Load: empty reference"}, fix: `give the one to tag the image with, such as "app:1.2"`},
		{name: "Load bad reference", pkg: "build", calls: solveOpts(build.Load("Bad Ref")),
			value: []string{`Load("Bad Ref")`}, fix: "want a reference such as app:1.2"},
		{name: "Load to a digest", pkg: "build", calls: solveOpts(build.Load("app@" + goodSum)),
			value: []string{`Load("app@` + goodSum + `")`, "a digest is not a tag"}, fix: "want a reference such as app:1.2"},
		{name: "Load nil option", pkg: "build", calls: solveOpts(build.Load("app:1", nil)),
			value: []string{`Load("app:1"): option 1 is nil`}, fix: "leave it out"},
		{name: "LoadInto not a unix socket", pkg: "build", calls: solveOpts(build.Load("app:1", build.LoadInto("tcp://127.0.0.1:2375"))),
			value: []string{`Load("app:1"): LoadInto("tcp://127.0.0.1:2375")`, "scheme tcp:// is not supported"}, fix: `want a unix socket address such as "unix:///var/run/docker.sock"`},
		{name: "LoadInto relative socket", pkg: "build", calls: solveOpts(build.Load("app:1", build.LoadInto("unix://docker.sock"))),
			value: []string{`LoadInto("unix://docker.sock")`, `socket path "docker.sock" is not absolute`}, fix: `want a unix socket address such as "unix:///var/run/docker.sock"`},
		{name: "Load with no engine at the socket", pkg: "build",
			calls: []badCall{solveWith(alpine, func(e *badEnv) []build.SolveOption {
				return []build.SolveOption{build.Load("app:1", build.LoadInto("unix://"+filepath.Join(e.missing, "docker.sock")))}
			})},
			value: []string{`Load("app:1")`, "docker.sock", "no container engine answers"}, fix: "start the engine there, or name a running one with LoadInto"},
		{name: "Expose no port", pkg: "build", calls: stage(alpine.Expose()),
			value: []string{"Expose: no port"}, fix: `give one or more, such as "8080/tcp"`},
		{name: "Expose port out of range", pkg: "build", calls: stage(alpine.Expose("70000")),
			value: []string{`Expose("70000")`}, fix: "want a port from 1 to 65535"},
		{name: "Expose unknown protocol", pkg: "build", calls: stage(alpine.Expose("80/http")),
			value: []string{`Expose("80/http")`, `unknown protocol "http"`}, fix: "want tcp, udp or sctp"},
		{name: "Expose reversed range", pkg: "build", calls: stage(alpine.Expose("90-80")),
			value: []string{`Expose("90-80")`}, fix: "or a range of them"},
		{name: "Volume relative", pkg: "build", calls: stage(alpine.Volume("data")),
			value: []string{`Volume("data")`}, fix: `want an absolute path, such as "/data"`},
		{name: "Volume none", pkg: "build", calls: stage(alpine.Volume()),
			value: []string{"Volume: no path"}, fix: `give one or more, such as "/data"`},
		{name: "Healthcheck empty", pkg: "build", calls: stage(alpine.Healthcheck(build.Health{})),
			value: []string{"Healthcheck([]): empty Test"}, fix: `give {"CMD", program, args…}`},
		{name: "Healthcheck unknown kind", pkg: "build", calls: stage(alpine.Healthcheck(build.Health{Test: []string{"curl", "-f", "x"}})),
			value: []string{`Healthcheck(["curl" "-f" "x"])`, `first element "curl"`}, fix: `want "CMD", "CMD-SHELL" or "NONE"`},
		{name: "Healthcheck NONE with a command", pkg: "build", calls: stage(alpine.Healthcheck(build.Health{Test: []string{"NONE", "x"}})),
			value: []string{`Healthcheck(["NONE" "x"])`}, fix: `give {"NONE"} alone`},
		{name: "Healthcheck tiny interval", pkg: "build", calls: stage(alpine.Healthcheck(build.Health{Test: []string{"CMD", "true"}, Interval: time.Microsecond})),
			value: []string{"Interval 1µs"}, fix: "want 0 for the default, or at least 1ms"},
		{name: "Healthcheck negative retries", pkg: "build", calls: stage(alpine.Healthcheck(build.Health{Test: []string{"CMD", "true"}, Retries: -1})),
			value: []string{"Retries -1"}, fix: "want 0 for the default, or more"},
		{name: "StopSignal unknown", pkg: "build", calls: stage(alpine.StopSignal("SIGFOO")),
			value: []string{`StopSignal("SIGFOO")`}, fix: `want a name or number, such as "SIGTERM" or "15"`},
		{name: "StopSignal empty", pkg: "build", calls: stage(alpine.StopSignal("")),
			value: []string{`StopSignal("")`}, fix: `want a name or number`},
		{name: "Annotation bad key", pkg: "build", calls: solveOpts(build.Push("r.example.com/a:1"), build.Annotation("has space", "x")),
			value: []string{`Annotation("has space")`}, fix: `such as "org.opencontainers.image.source"`},
		{name: "Annotation unknown target", pkg: "build", calls: solveOpts(build.Push("r.example.com/a:1"), build.Annotation("a.b", "x", "layer")),
			value: []string{`Annotation("a.b"): unknown target "layer"`}, fix: "want build.OnManifest or build.OnIndex"},
		{name: "Annotation on the index of one platform", pkg: "build", calls: solveOpts(build.Push("r.example.com/a:1"), build.Annotation("a.b", "x", build.OnIndex)),
			value: []string{`Annotation("a.b", OnIndex): a single platform's image has no index`}, fix: "build several Platforms, add Provenance or SBOM, or annotate OnManifest"},
		{name: "Annotation without an image", pkg: "build", calls: solveOpts(build.Annotation("a.b", "x")),
			value: []string{"Annotation: the solve writes no image"}, fix: "add Push, OCITarball or DockerTarball"},
		{name: "SourceDateEpoch zero", pkg: "build", calls: solveOpts(build.Push("r.example.com/a:1"), build.SourceDateEpoch(time.Time{})),
			value: []string{"SourceDateEpoch(0001-01-01"}, fix: "want a time after 1970"},
		{name: "SourceDateEpoch without an image", pkg: "build", calls: solveOpts(build.SourceDateEpoch(time.Unix(1700000000, 0))),
			value: []string{"SourceDateEpoch: the solve writes no image"}, fix: "add Push, OCITarball or DockerTarball"},
		{name: "Provenance unknown mode", pkg: "build", calls: solveOpts(build.Provenance("full")),
			value: []string{`Provenance("full"): unknown mode`}, fix: `want "min" or "max"`},
		{name: "SBOM bad generator", pkg: "build", calls: solveOpts(build.SBOM("Syft Scanner")),
			value: []string{`SBOM("Syft Scanner")`}, fix: "want the generator's image reference"},
		{name: "SBOM empty generator", pkg: "build", calls: solveOpts(build.SBOM("")),
			value: []string{`SBOM("")`}, fix: "want the generator's image reference"},
		{name: "Include bad pattern", pkg: "build",
			calls: []badCall{solveWith(build.Local("src", build.Include("[")), func(e *badEnv) []build.SolveOption {
				return []build.SolveOption{build.WithLocal("src", e.dir)}
			})},
			value: []string{`Include("[")`}, fix: ".dockerignore syntax"},

		// ---- mounts: on a step, mounts.Validate and Validate ----
		{name: "cache relative target", pkg: "mounts", calls: mount(mounts.Cache("root/.cache")),
			value: []string{`cache mount "root/.cache"`, "must be an absolute path"}, fix: `did you mean "/root/.cache"?`},
		{name: "cache empty target", pkg: "mounts", calls: mount(mounts.Cache("")),
			value: []string{`cache mount ""`, "target is empty"}, fix: "give the absolute path where the mount appears in the step"},
		{name: "cache target root", pkg: "mounts", calls: mount(mounts.Cache("/")),
			value: []string{`target "/" would cover the step's root filesystem`}, fix: "mount at a directory below it"},
		{name: "cache target with ..", pkg: "mounts", calls: mount(mounts.Cache("/a/../b")),
			value: []string{`cache mount "/a/../b"`, `must not contain ".."`}, fix: `did you mean "/b"?`},
		{name: "cache target not UTF-8", pkg: "mounts", calls: mount(mounts.Cache("/caf\xe9")),
			value: []string{`target "/caf\xe9" is not valid UTF-8`}, fix: "give a path of valid UTF-8 without NUL bytes"},
		{name: "cache target with NUL", pkg: "mounts", calls: mount(mounts.Cache("/a\x00b")),
			value: []string{`target "/a\x00b" contains a NUL byte`}, fix: "give a path of valid UTF-8 without NUL bytes"},
		{name: "cache empty ID", pkg: "mounts", calls: mount(mounts.Cache("/c", mounts.ID(""))),
			value: []string{`cache mount "/c"`, "id is empty"}, fix: "leave out ID to use the target path as the id"},
		{name: "cache ID not UTF-8", pkg: "mounts", calls: mount(mounts.Cache("/c", mounts.ID("k\xff"))),
			value: []string{`id "k\xff" is not valid UTF-8`}, fix: `give an id of valid UTF-8, such as "go-build"`},
		{name: "cache unknown sharing", pkg: "mounts", calls: mount(mounts.Cache("/c", mounts.Sharing(mounts.SharingMode(7)))),
			value: []string{`cache mount "/c"`, "sharing mode SharingMode(7) is unknown"}, fix: "use Shared, Private or Locked"},
		{name: "cache negative uid", pkg: "mounts", calls: mount(mounts.Cache("/c", mounts.Owner(-1, 0))),
			value: []string{`cache mount "/c"`, "uid -1 is negative"}, fix: "use 0 to 4294967295"},
		{name: "cache negative gid", pkg: "mounts", calls: mount(mounts.Cache("/c", mounts.Owner(0, -2))),
			value: []string{"gid -2 is negative"}, fix: "use 0 to 4294967295"},
		{name: "cache uid too large", pkg: "mounts", calls: mount(mounts.Cache("/c", mounts.Owner(1<<32, 0))),
			value: []string{"uid 4294967296 is larger than 4294967295"},
			fix:   "use 0 to 4294967295, such as 1000"},
		{name: "cache mode too large", pkg: "mounts", calls: mount(mounts.Cache("/c", mounts.Mode(0o1000))),
			value: []string{"mode 01000"}, fix: "is outside 0 to 0777"},
		{name: "cache mode negative", pkg: "mounts", calls: mount(mounts.Cache("/c", mounts.Mode(-1))),
			value: []string{"mode -01"}, fix: "is outside 0 to 0777"},
		{name: "Regenerable absolute", pkg: "mounts", calls: mount(mounts.Cache("/c", mounts.Regenerable("/pkgcache.bin"))),
			value: []string{`regenerable file "/pkgcache.bin"`}, fix: `a clean path relative to the cache's root, such as "pkgcache.bin"`},
		{name: "Regenerable with ..", pkg: "mounts", calls: mount(mounts.Cache("/c", mounts.Regenerable("../x"))),
			value: []string{`regenerable file "../x"`}, fix: `such as "pkgcache.bin"`},
		{name: "Regenerable empty", pkg: "mounts", calls: mount(mounts.Cache("/c", mounts.Regenerable(""))),
			value: []string{`regenerable file ""`}, fix: `such as "pkgcache.bin"`},
		{name: "Regenerable unclean", pkg: "mounts", calls: mount(mounts.Cache("/c", mounts.Regenerable("a//b"))),
			value: []string{`regenerable file "a//b"`}, fix: `such as "pkgcache.bin"`},
		{name: "Regenerable not UTF-8", pkg: "mounts", calls: mount(mounts.Cache("/c", mounts.Regenerable("a\xff"))),
			value: []string{`regenerable file "a\xff" is not valid UTF-8`}, fix: `give a path of valid UTF-8 without NUL bytes, relative to the cache's root, such as "pkgcache.bin"`},
		{name: "SeedFrom nil", pkg: "mounts", calls: mount(mounts.Cache("/c", mounts.SeedFrom(nil, "/"))),
			value: []string{`cache mount "/c"`, "SeedFrom source is nil"}, fix: "pass the stage to seed the cache from"},
		{name: "SeedFrom path with ..", pkg: "mounts", calls: mount(mounts.Cache("/c", mounts.SeedFrom(fromStage, "../etc"))),
			value: []string{`source "../etc" must not contain ".."`}, fix: `did you mean "/etc"?`},
		{name: "SeedFrom with Owner", pkg: "mounts", calls: mount(mounts.Cache("/c", mounts.SeedFrom(fromStage, "/"), mounts.Owner(1, 1))),
			value: []string{`cache mount "/c"`, "Owner cannot be combined with SeedFrom"},
			fix:   "leave out Owner and set the owner of that directory in the seed stage"},
		{name: "SeedFrom with Mode", pkg: "mounts", calls: mount(mounts.Cache("/c", mounts.SeedFrom(fromStage, "/"), mounts.Mode(0o700))),
			value: []string{"Mode cannot be combined with SeedFrom"},
			fix:   "leave out Mode and set the mode of that directory in the seed stage"},
		{name: "bind relative target", pkg: "mounts", calls: mount(mounts.Bind("src", fromStage)),
			value: []string{`bind mount "src"`, "must be an absolute path"}, fix: `did you mean "/src"?`},
		{name: "bind nil source", pkg: "mounts", calls: mount(mounts.Bind("/src", nil)),
			value: []string{`bind mount "/src"`, "source is nil"}, fix: `pass the stage to mount, or FromState(llb.Local("context")) for the build context`},
		{name: "bind SourcePath with ..", pkg: "mounts", calls: mount(mounts.Bind("/src", fromStage, mounts.SourcePath("../x"))),
			value: []string{`bind mount "/src"`, `source "../x" must not contain ".."`}, fix: `did you mean "/x"?`},
		{name: "bind SourcePath with NUL", pkg: "mounts", calls: mount(mounts.Bind("/src", fromStage, mounts.SourcePath("a\x00"))),
			value: []string{`source "a\x00" contains a NUL byte`}, fix: "give a path of valid UTF-8 without NUL bytes"},
		{name: "tmpfs relative target", pkg: "mounts", calls: mount(mounts.Tmpfs("tmp")),
			value: []string{`tmpfs mount "tmp"`}, fix: `did you mean "/tmp"?`},
		{name: "tmpfs negative size", pkg: "mounts", calls: mount(mounts.Tmpfs("/tmp", mounts.Size(-1))),
			value: []string{`tmpfs mount "/tmp"`, "size -1 is negative"}, fix: "use 0 for the kernel's limit or a number of bytes"},
		{name: "secret empty id", pkg: "mounts", calls: mount(mounts.Secret("")),
			value: []string{`secret mount ""`, "id is empty"}, fix: "give the id under which the build provides the secret"},
		{name: "secret id naming no file", pkg: "mounts", calls: mount(mounts.Secret("tokens/..")),
			value: []string{`id "tokens/.." names no file under /run/secrets/`}, fix: "give Target"},
		{name: "secret id dot", pkg: "mounts", calls: mount(mounts.Secret(".")),
			value: []string{`id "." names no file under /run/secrets/`}, fix: "give Target"},
		{name: "secret relative target", pkg: "mounts", calls: mount(mounts.Secret("npmrc", mounts.Target("root/.npmrc"))),
			value: []string{`secret mount "npmrc"`, "must be an absolute path"}, fix: `did you mean "/root/.npmrc"?`},
		{name: "secret bad variable", pkg: "mounts", calls: mount(mounts.Secret("tok", mounts.Env("1TOKEN"))),
			value: []string{`env "1TOKEN" is not a valid environment variable name`}, fix: "use letters, digits and underscores, starting with a letter or underscore"},
		{name: "secret empty variable", pkg: "mounts", calls: mount(mounts.Secret("tok", mounts.Env(""))),
			value: []string{`env "" is not a valid environment variable name`}, fix: "use letters, digits and underscores"},
		{name: "secret target and variable", pkg: "mounts", calls: mount(mounts.Secret("tok", mounts.Target("/t"), mounts.Env("TOK"))),
			value: []string{`(Target "/t")`, `(Env "TOK")`}, fix: "make two secret mounts"},
		{name: "secret variable with Owner", pkg: "mounts", calls: mount(mounts.Secret("tok", mounts.Env("TOK"), mounts.Owner(1, 1))),
			value: []string{`Owner applies to a secret file, not to environment variable "TOK"`}, fix: "leave out Owner, or leave out Env to mount the secret as a file"},
		{name: "secret variable with Mode", pkg: "mounts", calls: mount(mounts.Secret("tok", mounts.Env("TOK"), mounts.Mode(0o400))),
			value: []string{`Mode applies to a secret file, not to environment variable "TOK"`}, fix: "leave out Mode, or leave out Env to mount the secret as a file"},
		{name: "secret mode too large", pkg: "mounts", calls: mount(mounts.Secret("tok", mounts.Mode(0o10000))),
			value: []string{`secret mount "tok"`, "mode 010000"}, fix: "is outside 0 to 07777"},
		{name: "secret negative uid", pkg: "mounts", calls: mount(mounts.Secret("tok", mounts.Owner(-5, 0))),
			value: []string{"uid -5 is negative"}, fix: "use 0 to 4294967295"},
		{name: "secret gid too large", pkg: "mounts", calls: mount(mounts.Secret("tok", mounts.Owner(0, 1<<33))),
			value: []string{"gid 8589934592 is larger than 4294967295"}, fix: "use 0 to 4294967295, such as 1000"},
		{name: "ssh empty id", pkg: "mounts", calls: mount(mounts.SSH(mounts.ID(""))),
			value: []string{`ssh mount ""`, "id is empty"}, fix: `leave out ID to use "default"`},
		{name: "ssh relative target", pkg: "mounts", calls: mount(mounts.SSH(mounts.Target("run/agent.sock"))),
			value: []string{`ssh mount "default"`, "must be an absolute path"}, fix: `did you mean "/run/agent.sock"?`},
		{name: "ssh negative uid", pkg: "mounts", calls: mount(mounts.SSH(mounts.Owner(-1, 0))),
			value: []string{`ssh mount "default"`, "uid -1 is negative"}, fix: "use 0 to 4294967295"},
		{name: "ssh mode too large", pkg: "mounts", calls: mount(mounts.SSH(mounts.Mode(0o20000))),
			value: []string{"mode 020000"}, fix: "is outside 0 to 07777"},
		{name: "nil cache mount", pkg: "mounts", calls: mount((*mounts.CacheMount)(nil)),
			value: []string{"mount is nil"}, fix: "make one with Cache"},
		{name: "nil bind mount", pkg: "mounts", calls: mount((*mounts.BindMount)(nil)),
			value: []string{"mount is nil"}, fix: "make one with Bind"},
		{name: "nil tmpfs mount", pkg: "mounts", calls: mount((*mounts.TmpfsMount)(nil)),
			value: []string{"mount is nil"}, fix: "make one with Tmpfs"},
		{name: "nil secret mount", pkg: "mounts", calls: mount((*mounts.SecretMount)(nil)),
			value: []string{"mount is nil"}, fix: "make one with Secret"},
		{name: "nil ssh mount", pkg: "mounts", calls: mount((*mounts.SSHMount)(nil)),
			value: []string{"mount is nil"}, fix: "make one with SSH"},
		{name: "mounts.Validate of nil", pkg: "mounts",
			calls: []badCall{direct("mounts.Validate", func() error { return mounts.Validate(mounts.Tmpfs("/t"), nil) })},
			value: []string{"mount 2 of 2 is nil"}, fix: "leave it out"},
		{name: "two mounts on one target", pkg: "mounts",
			calls: []badCall{
				solve(alpine.Run("make", mounts.Cache("/work"), mounts.Tmpfs("/work/"))),
				direct("mounts.Validate", func() error { return mounts.Validate(mounts.Cache("/work"), mounts.Tmpfs("/work/")) }),
			},
			value: []string{`target "/work" is also the target of cache mount "/work"`}, fix: "give each mount its own target"},
		{name: "two secrets on one file", pkg: "mounts",
			calls: []badCall{
				solve(alpine.Run("make", mounts.Secret("a/tok"), mounts.Secret("b/tok"))),
				direct("mounts.Validate", func() error { return mounts.Validate(mounts.Secret("a/tok"), mounts.Secret("b/tok")) }),
			},
			value: []string{`target "/run/secrets/tok" is also the target of secret mount "a/tok"`}, fix: "give each mount its own target"},
		{name: "two secrets on one variable", pkg: "mounts",
			calls: []badCall{
				solve(alpine.Run("make", mounts.Secret("a", mounts.Env("TOKEN")), mounts.Secret("b", mounts.Env("TOKEN")))),
				direct("mounts.Validate", func() error {
					return mounts.Validate(mounts.Secret("a", mounts.Env("TOKEN")), mounts.Secret("b", mounts.Env("TOKEN")))
				}),
			},
			value: []string{`environment variable "TOKEN" is also set by secret "a"`}, fix: "give each secret its own variable"},
		{name: "preset and mount on one target", pkg: "mounts",
			calls: []badCall{
				solve(alpine.Run("apt-get update", cache.Apt(), mounts.Cache("/var/lib/apt"))),
				direct("mounts.Validate", func() error { return mounts.Validate(append(cache.Apt().Mounts(), mounts.Cache("/var/lib/apt"))...) }),
			},
			value: []string{`target "/var/lib/apt" is also the target of cache mount "/var/lib/apt"`}, fix: "give each mount its own target"},
		{name: "ParseSharing near miss", pkg: "mounts",
			calls: []badCall{direct("mounts.ParseSharing", func() error { _, err := mounts.ParseSharing("lock"); return err })},
			value: []string{`sharing "lock"`}, fix: `did you mean "locked"?`},
		{name: "ParseSharing unknown", pkg: "mounts",
			calls: []badCall{direct("mounts.ParseSharing", func() error { _, err := mounts.ParseSharing("exclusive"); return err })},
			value: []string{`sharing "exclusive"`}, fix: "is not one of shared, private or locked"},

		// ---- mounts.Parse ----
		{name: "Parse empty", pkg: "mounts", calls: parse(""),
			value: []string{"mounts: no mount given"}, fix: "write key=value fields such as type=cache,target=/root/.cache"},
		{name: "Parse unknown key near a known one", pkg: "mounts", calls: parse("type=cache,targt=/a"),
			value: []string{`unknown key "targt"`}, fix: `did you mean "target"?`},
		{name: "Parse unknown key", pkg: "mounts", calls: parse("type=cache,target=/a,colour=red"),
			value: []string{`unknown key "colour"`}, fix: "known keys are"},
		{name: "Parse key twice", pkg: "mounts", calls: parse("type=cache,target=/a,target=/b"),
			value: []string{`"target" is given twice`}, fix: "give it once"},
		{name: "Parse synonyms", pkg: "mounts", calls: parse("type=cache,target=/a,dst=/b"),
			value: []string{`"target" and "dst" set the same thing`}, fix: "give one of them"},
		{name: "Parse key without value", pkg: "mounts", calls: parse("type=cache,target"),
			value: []string{`"target" needs a value`}, fix: "as in target=..."},
		{name: "Parse type near a known one", pkg: "mounts", calls: parse("type=cach,target=/a"),
			value: []string{`type "cach"`}, fix: `did you mean "cache"?`},
		{name: "Parse unknown type", pkg: "mounts", calls: parse("type=volume,target=/a"),
			value: []string{`type "volume"`}, fix: "is not one of bind, cache, tmpfs, secret, ssh"},
		{name: "Parse key on the wrong type", pkg: "mounts", calls: parse("type=tmpfs,target=/a,id=x"),
			value: []string{`"id" does not apply to a tmpfs mount`}, fix: "it applies to cache, secret and ssh mounts"},
		{name: "Parse source on ssh", pkg: "mounts", calls: parse("type=ssh,source=key"),
			value: []string{`"source" does not apply to a ssh mount`}, fix: "it applies to bind, cache and secret mounts"},
		{name: "Parse empty from", pkg: "mounts", calls: parse("type=bind,target=/a,from="),
			value: []string{"from is empty"}, fix: "name a stage or an image, or leave out from"},
		{name: "Parse bad from", pkg: "mounts", calls: parse("type=bind,target=/a,from=Not An Image"),
			value: []string{`from "Not An Image"`}, fix: "is neither a stage given to WithStages nor an image reference"},
		{name: "Parse nil stage", pkg: "mounts", calls: parse("type=bind,target=/b,from=c", mounts.WithStages(map[string]mounts.Source{"c": nil})),
			value: []string{`stage "c" given to WithStages is nil`}, fix: "map it to the stage to mount, such as FromState(st)"},
		{name: "Parse bad sharing", pkg: "mounts", calls: parse("type=cache,target=/a,sharing=exclusive"),
			value: []string{`sharing "exclusive"`}, fix: "is not one of shared, private or locked"},
		{name: "Parse bad uid", pkg: "mounts", calls: parse("type=cache,target=/a,uid=me"),
			value: []string{`uid "me"`}, fix: "is not a decimal number from 0 to 4294967295"},
		{name: "Parse negative gid", pkg: "mounts", calls: parse("type=cache,target=/a,gid=-1"),
			value: []string{`gid "-1"`}, fix: "is not a decimal number from 0 to 4294967295"},
		{name: "Parse bad mode", pkg: "mounts", calls: parse("type=secret,id=a,mode=0888"),
			value: []string{`mode "0888"`}, fix: "is not an octal number such as 0755"},
		{name: "Parse bad ro", pkg: "mounts", calls: parse("type=bind,target=/a,ro=yes"),
			value: []string{`ro "yes"`}, fix: "is not true or false"},
		{name: "Parse bad size", pkg: "mounts", calls: parse("type=tmpfs,target=/tmp,size=64x"),
			value: []string{`size "64x"`}, fix: "is not a size such as 64m or 1048576"},
		{name: "Parse bad required", pkg: "mounts", calls: parse("type=ssh,required=maybe"),
			value: []string{`required "maybe"`}, fix: "is not true or false"},
		{name: "Parse cache without target", pkg: "mounts", calls: parse("type=cache,id=x"),
			value: []string{"a cache mount needs target="}, fix: "the absolute path where it appears in the step"},
		{name: "Parse relative target", pkg: "mounts", calls: parse("type=cache,target=node_modules"),
			value: []string{`cache mount "node_modules"`}, fix: `did you mean "/node_modules"?`},
		{name: "Parse cache source without from", pkg: "mounts", calls: parse("type=cache,target=/a,source=/x"),
			value: []string{"source on a cache mount needs from="}, fix: "the stage or image to seed the cache from"},
		{name: "Parse secret id and source", pkg: "mounts", calls: parse("type=secret,id=a,source=b"),
			value: []string{"id and source both name the secret"}, fix: "give one of them"},
		{name: "Parse secret without id", pkg: "mounts", calls: parse("type=secret"),
			value: []string{"a secret mount needs id="}, fix: "the id under which the build provides the secret"},
		{name: "Parse two lines", pkg: "mounts", calls: parse("type=cache,target=/a\ntype=tmpfs,target=/b"),
			value: []string{"more than one line"}, fix: "give one mount"},
		{name: "Parse empty field", pkg: "mounts", calls: parse("type=cache,,target=/a"),
			value: []string{"empty field"}, fix: "separate key=value fields with one comma"},
		{name: "Parse bad quoting", pkg: "mounts", calls: parse(`type=cache,"target=/a`),
			value: []string{`parsing "type=cache,\"target=/a"`, "not comma-separated key=value fields"},
			fix:   "wrap the whole field in double quotes and double each quote inside it"},

		// ---- cache: presets, on a step and with Validate ----
		{name: "Project with slash", pkg: "cache", calls: preset(cache.Apt(cache.Project("team/app"))),
			value: []string{`Project "team/app"`, "apt preset"}, fix: `such as "team-app"`},
		{name: "Project empty", pkg: "cache", calls: preset(cache.Pip(cache.Project(""))),
			value: []string{"Project: pip preset"}, fix: `such as "team-app"`},
		{name: "Project starting with a dot", pkg: "cache", calls: preset(cache.Npm(cache.Project(".x"))),
			value: []string{`Project ".x"`}, fix: "starting with a letter or digit"},
		{name: "Project too long", pkg: "cache", calls: preset(cache.Go(cache.Project(tooLong))),
			value: []string{`Project "` + tooLong + `"`}, fix: "1 to 128 letters, digits"},
		{name: "Sharing unknown mode", pkg: "cache", calls: preset(cache.Npm(cache.Sharing(mounts.SharingMode(7)))),
			value: []string{`Sharing "SharingMode(7)"`}, fix: "use mounts.Shared, mounts.Private or mounts.Locked"},
		{name: "Sharing target not a cache", pkg: "cache", calls: preset(cache.Npm(cache.Sharing(mounts.Locked, "/root/.cache/pip"))),
			value: []string{`Sharing "/root/.cache/pip"`, "npm preset"}, fix: "name one of /root/.npm, or none for all of them"},
		{name: "Sharing relative target", pkg: "cache", calls: preset(cache.Pip(cache.Sharing(mounts.Locked, "root/.cache/pip"))),
			value: []string{`Sharing "root/.cache/pip"`}, fix: "name one of /root/.cache/pip"},
		{name: "AcrossPlatforms target not a cache", pkg: "cache", calls: preset(cache.Go(cache.AcrossPlatforms("/go/pkg/modx"))),
			value: []string{`AcrossPlatforms "/go/pkg/modx"`, "go preset"}, fix: "name one of /go/pkg/mod, /root/.cache/go-build"},
		{name: "Owner negative", pkg: "cache", calls: preset(cache.Apt(cache.Owner(-1, 0))),
			value: []string{`Owner "-1:0"`}, fix: "uid and gid must be 0 to 4294967295"},
		{name: "Owner too large", pkg: "cache", calls: preset(cache.Cargo(cache.Owner(0, 1<<33))),
			value: []string{`Owner "0:8589934592"`, "cargo preset"}, fix: "uid and gid must be 0 to 4294967295"},
		{name: "Home relative (uv)", pkg: "cache", calls: preset(cache.UV(cache.Home("app"))),
			value: []string{`Home "app"`, "uv preset"}, fix: `did you mean "/app"?`},
		{name: "Sharing target not a cache (dnf)", pkg: "cache", calls: preset(cache.Dnf(cache.Sharing(mounts.Shared, "/var/cache/apt"))),
			value: []string{`Sharing "/var/cache/apt"`, "dnf preset"}, fix: "name one of /var/cache/dnf, /var/cache/libdnf5"},
		{name: "Home relative (pip)", pkg: "cache", calls: preset(cache.Pip(cache.Home("home/app"))),
			value: []string{`Home "home/app"`, "pip preset"}, fix: `did you mean "/home/app"?`},
		{name: "Home relative (npm)", pkg: "cache", calls: preset(cache.Npm(cache.Home("app"))),
			value: []string{`Home "app"`, "npm preset"}, fix: `did you mean "/app"?`},
		{name: "Home relative (go)", pkg: "cache", calls: preset(cache.Go(cache.Home("./app"))),
			value: []string{`Home "./app"`, "go preset"}, fix: `did you mean "/app"?`},
		{name: "Home relative (cargo)", pkg: "cache", calls: preset(cache.Cargo(cache.Home("home/rust"))),
			value: []string{`Home "home/rust"`, "cargo preset"}, fix: `did you mean "/home/rust"?`},
		{name: "Home empty", pkg: "cache", calls: preset(cache.Npm(cache.Home(""))),
			value: []string{"Home: npm preset: path is empty"}, fix: `give an absolute path such as "/home/app"`},
		{name: "Home not UTF-8", pkg: "cache", calls: preset(cache.Pip(cache.Home("/home/\xff"))),
			value: []string{`Home "/home/\xff"`, "not valid UTF-8"}, fix: `give an absolute path of valid UTF-8 without NUL bytes, such as "/home/app"`},
		{name: "GoPath relative", pkg: "cache", calls: preset(cache.Go(cache.GoPath("go"))),
			value: []string{`GoPath "go"`}, fix: `did you mean "/go"?`},
		{name: "GoPath empty", pkg: "cache", calls: preset(cache.Go(cache.GoPath(""))),
			value: []string{"GoPath: go preset: path is empty"}, fix: `give an absolute path such as "/go"`},
		{name: "GoPath with NUL", pkg: "cache", calls: preset(cache.Go(cache.GoPath("/go\x00"))),
			value: []string{`GoPath "/go\x00"`, "NUL"}, fix: `give an absolute path of valid UTF-8 without NUL bytes, such as "/go"`},
		{name: "CargoHome relative", pkg: "cache", calls: preset(cache.Cargo(cache.CargoHome("usr/local/cargo"))),
			value: []string{`CargoHome "usr/local/cargo"`}, fix: `did you mean "/usr/local/cargo"?`},
		{name: "CargoHome empty", pkg: "cache", calls: preset(cache.Cargo(cache.CargoHome(""))),
			value: []string{"CargoHome: cargo preset: path is empty"}, fix: `give an absolute path such as "/usr/local/cargo"`},
		{name: "TargetDir relative", pkg: "cache", calls: preset(cache.Cargo(cache.TargetDir("target"))),
			value: []string{`TargetDir "target"`}, fix: `did you mean "/target"?`},
		{name: "TargetDir empty", pkg: "cache", calls: preset(cache.Cargo(cache.TargetDir(""))),
			value: []string{"TargetDir: cargo preset: path is empty"}, fix: `give an absolute path such as "/src/target"`},
		{name: "TargetDir on a cargo cache", pkg: "cache", calls: preset(cache.Cargo(cache.CargoHome("/x"), cache.TargetDir("/x/registry"))),
			value: []string{"two of its mounts would be at /x/registry"}, fix: "give the options paths that differ"},
		{name: "preset nil option", pkg: "cache", calls: preset(cache.Pip(nil)),
			value: []string{"pip preset: option 1 is nil"}, fix: "leave it out"},
		{name: "zero Preset", pkg: "cache", calls: preset(&cache.Preset{}),
			value: []string{"preset is nil or zero"}, fix: "make one with a preset constructor such as Apt or Pip"},
		{name: "nil Preset", pkg: "cache", calls: preset(nil),
			value: []string{"preset is nil or zero"}, fix: "make one with a preset constructor such as Apt or Pip"},
		{name: "preset For a platform without arch", pkg: "cache", calls: preset(cache.Pip().For(ocispecs.Platform{OS: "linux"})),
			value: []string{`For "linux/"`}, fix: "give one such as linux/amd64"},

		// ---- cache: backends, through CacheTo/CacheFrom and the attributes ----
		{name: "Registry empty ref", pkg: "cache", calls: backend(cache.Registry("")),
			value: []string{"registry backend: ref: must not be empty"}, fix: `give the cache's reference, such as "registry.example.com/team/app:buildcache"`},
		{name: "Registry ref with space", pkg: "cache", calls: backend(cache.Registry("bad ref!")),
			value: []string{`registry backend: ref "bad ref!": invalid reference`}, fix: "repository can only contain the characters"},
		{name: "Registry ref uppercase", pkg: "cache", calls: backend(cache.Registry("registry.example.com/team/App:cache")),
			value: []string{`ref "registry.example.com/team/App:cache"`}, fix: "repository can only contain the characters"},
		{name: "Registry ref bad tag", pkg: "cache", calls: backend(cache.Registry("app:-x")),
			value: []string{`ref "app:-x"`, `tag "-x"`}, fix: "must be 1 to 128 letters, digits, '_', '.' and '-'"},
		{name: "Registry ref empty tag", pkg: "cache", calls: backend(cache.Registry("app:")),
			value: []string{`ref "app:"`}, fix: "must specify a tag name after the colon"},
		{name: "Registry ref bad host", pkg: "cache", calls: backend(cache.Registry("a..b/c")),
			value: []string{`ref "a..b/c"`, `registry "a..b" is not a valid host name`}, fix: "such as registry.example.com or localhost:5000"},
		{name: "Registry ref bad path component", pkg: "cache", calls: backend(cache.Registry("reg.example.com/_app")),
			value: []string{`path component "_app"`}, fix: "must be lowercase letters and digits separated by '.', '_', '__' or '-'"},
		{name: "Registry ref with scheme", pkg: "cache", calls: backend(cache.Registry("http://reg/app")),
			value: []string{`ref "http://reg/app"`, "must not contain a URL scheme"},
			fix:   `drop "http://" (give "reg/app") and add cache.Insecure(true) for a plain-HTTP registry`},
		{name: "Registry export to a digest", pkg: "cache", calls: exportTo(cache.Registry("registry.example.com/app@" + goodSum)),
			value: []string{`ref "registry.example.com/app@` + goodSum + `"`, "cannot export to a digest reference"}, fix: "use a tag, such as app:buildcache"},
		{name: "Registry nil option", pkg: "cache", calls: backend(cache.Registry(ref, nil)),
			value: []string{"registry backend: nil option"}, fix: "leave it out of the list"},
		{name: "Registry unknown mode", pkg: "cache", calls: backend(cache.Registry(ref, cache.Mode("maxx"))),
			value: []string{`mode "maxx"`}, fix: "use cache.ModeMin or cache.ModeMax"},
		{name: "Registry empty mode", pkg: "cache", calls: backend(cache.Registry(ref, cache.Mode(""))),
			value: []string{"registry backend: mode: must not be empty"}, fix: "use cache.ModeMin or cache.ModeMax"},
		{name: "Registry unknown compression", pkg: "cache", calls: backend(cache.Registry(ref, cache.Compression("lz4"))),
			value: []string{`compression "lz4"`}, fix: "use cache.Gzip, cache.Zstd, cache.Estargz or cache.Uncompressed"},
		{name: "Registry empty compression", pkg: "cache", calls: backend(cache.Registry(ref, cache.Compression(""))),
			value: []string{"compression: must not be empty"}, fix: "use cache.Gzip, cache.Zstd, cache.Estargz or cache.Uncompressed"},
		{name: "gzip level too high", pkg: "cache", calls: backend(cache.Registry(ref, cache.CompressionLevel(10))),
			value: []string{`compression-level "10"`, "out of range for gzip"}, fix: "(0-9)"},
		{name: "zstd level too high", pkg: "cache", calls: backend(cache.Registry(ref, cache.Compression(cache.Zstd), cache.CompressionLevel(23))),
			value: []string{`compression-level "23"`, "out of range for zstd"}, fix: "(0-22)"},
		{name: "negative level", pkg: "cache", calls: backend(cache.Registry(ref, cache.CompressionLevel(-1))),
			value: []string{`compression-level "-1"`}, fix: "(0-9)"},
		{name: "level on uncompressed", pkg: "cache", calls: backend(cache.Registry(ref, cache.Compression(cache.Uncompressed), cache.CompressionLevel(3))),
			value: []string{`compression-level "3"`, "not used with uncompressed layers"}, fix: "drop cache.CompressionLevel"},
		{name: "image manifest with docker media types", pkg: "cache", calls: backend(cache.Registry(ref, cache.ImageManifest(true), cache.OCIMediaTypes(false))),
			value: []string{`image-manifest "true"`, "requires OCI media types"}, fix: "drop cache.OCIMediaTypes(false) or use cache.ImageManifest(false)"},
		{name: "estargz with docker media types", pkg: "cache", calls: backend(cache.Registry(ref, cache.Compression(cache.Estargz), cache.OCIMediaTypes(false))),
			value: []string{`compression "estargz"`, "requires OCI media types"}, fix: "drop cache.OCIMediaTypes(false)"},
		{name: "Local empty dir", pkg: "cache", calls: backend(cache.Local("")),
			value: []string{"local backend: dir: must not be empty"}, fix: "give the directory on the client that holds the cache"},
		{name: "Local empty Tag", pkg: "cache", calls: backend(cache.Local("cache", cache.Tag(""))),
			value: []string{"local backend: tag: must not be empty"}, fix: `leave out cache.Tag to use "latest"`},
		{name: "Local bad Tag", pkg: "cache", calls: backend(cache.Local("cache", cache.Tag("-x"))),
			value: []string{`tag "-x": invalid tag`}, fix: "use 1 to 128 letters, digits, '_', '.' and '-'"},
		{name: "Local empty Digest", pkg: "cache", calls: backend(cache.Local("cache", cache.Digest(""))),
			value: []string{"local backend: digest: must not be empty"}, fix: "leave out cache.Digest to look the cache up by tag"},
		{name: "Local short Digest", pkg: "cache", calls: backend(cache.Local("cache", cache.Digest("sha256:abc"))),
			value: []string{`digest "sha256:abc": invalid digest`}, fix: "want sha256:, sha384: or sha512: and lowercase hex"},
		{name: "Local uppercase Digest", pkg: "cache", calls: backend(cache.Local("cache", cache.Digest("sha256:"+strings.Repeat("A", 64)))),
			value: []string{`digest "sha256:` + strings.Repeat("A", 64) + `"`}, fix: "want sha256:, sha384: or sha512: and lowercase hex"},
		{name: "Local nil option", pkg: "cache", calls: backend(cache.Local("cache", nil)),
			value: []string{"local backend: nil option"}, fix: "leave it out of the list"},
		{name: "Local upper-case mode", pkg: "cache", calls: backend(cache.Local("cache", cache.Mode("MAX"))),
			value: []string{`local backend: mode "MAX"`}, fix: "use cache.ModeMin or cache.ModeMax"},
		{name: "Local unknown compression", pkg: "cache", calls: backend(cache.Local("cache", cache.Compression("brotli"))),
			value: []string{`local backend: compression "brotli"`}, fix: "use cache.Gzip, cache.Zstd, cache.Estargz or cache.Uncompressed"},
		{name: "Local estargz level too high", pkg: "cache", calls: backend(cache.Local("cache", cache.Compression(cache.Estargz), cache.CompressionLevel(12))),
			value: []string{`compression-level "12"`, "out of range for estargz"}, fix: "(0-9)"},
		{name: "Inline imported", pkg: "cache", calls: importFrom(cache.Inline()),
			value: []string{"inline backend", "cannot be imported"}, fix: "import it with cache.Registry(imageRef)"},
		{name: "GHA empty Scope", pkg: "cache", setup: noGHAEnv, calls: backend(withURLAndToken(cache.Scope(""))),
			value: []string{"gha backend: scope: must not be empty"}, fix: `leave out cache.Scope to use "buildkit"`, absent: []string{badGHAToken}},
		{name: "GHA Scope with comma", pkg: "cache", setup: noGHAEnv, calls: backend(withURLAndToken(cache.Scope("a,b"))),
			value: []string{`scope "a,b": must not contain a comma`}, fix: `use '-' instead, as in "a-b"`, absent: []string{badGHAToken}},
		{name: "GHA empty URL", pkg: "cache", setup: noGHAEnv, calls: backend(cache.GHA(cache.URL(""), cache.Token(badGHAToken))),
			value: []string{"gha backend: url: must not be empty"}, fix: "leave out cache.URL to read ACTIONS_CACHE_URL", absent: []string{badGHAToken}},
		{name: "GHA URL without scheme", pkg: "cache", setup: noGHAEnv, calls: backend(cache.GHA(cache.URL("cache.example.com"), cache.Token(badGHAToken))),
			value: []string{`url "cache.example.com"`}, fix: "must be an absolute http:// or https:// URL", absent: []string{badGHAToken}},
		{name: "GHA URL with password", pkg: "cache", setup: noGHAEnv,
			calls: backend(cache.GHA(cache.URL("ftp://user:"+badPassword+"@cache.example.com/"), cache.Token(badGHAToken))),
			value: []string{`url "ftp://redacted@cache.example.com/"`}, fix: "must be an absolute http:// or https:// URL",
			absent: []string{badPassword, badGHAToken}},
		{name: "GHA URLV2 not a URL", pkg: "cache", setup: noGHAEnv, calls: backend(cache.GHA(cache.URLV2("results"), cache.Token(badGHAToken))),
			value: []string{`url_v2 "results"`}, fix: "must be an absolute http:// or https:// URL"},
		{name: "GHA empty Token", pkg: "cache", setup: noGHAEnv, calls: backend(cache.GHA(cache.URL(ghaURL), cache.Token(""))),
			value: []string{"gha backend: token: must not be empty"}, fix: "leave out cache.Token to read ACTIONS_RUNTIME_TOKEN"},
		{name: "GHA unknown Version", pkg: "cache", setup: noGHAEnv, calls: backend(withURLAndToken(cache.Version(3))),
			value: []string{`version "3"`}, fix: "use 1 or 2", absent: []string{badGHAToken}},
		{name: "GHA zero Timeout", pkg: "cache", setup: noGHAEnv, calls: backend(withURLAndToken(cache.Timeout(0))),
			value: []string{`timeout "0s"`}, fix: "must be positive"},
		{name: "GHA negative Timeout", pkg: "cache", setup: noGHAEnv, calls: backend(withURLAndToken(cache.Timeout(-time.Second))),
			value: []string{`timeout "-1s"`}, fix: "must be positive"},
		{name: "GitHubAPI bad repository", pkg: "cache", setup: noGHAEnv, calls: backend(withURLAndToken(cache.GitHubAPI("app", "gh-"+badGHAToken))),
			value: []string{`repository "app": invalid repository`}, fix: `use "owner/name"`, absent: []string{badGHAToken}},
		{name: "GitHubAPI empty token", pkg: "cache", setup: noGHAEnv, calls: backend(withURLAndToken(cache.GitHubAPI("owner/app", ""))),
			value: []string{"ghtoken: must not be empty"}, fix: "give a GitHub token that can read the repository's Actions cache"},
		{name: "GHA URLV2 with Version 1", pkg: "cache", setup: noGHAEnv,
			calls: backend(cache.GHA(cache.URLV2("https://results.example.com/"), cache.Version(1), cache.Token(badGHAToken))),
			value: []string{`url_v2 "https://results.example.com/": not used with cache.Version(1)`}, fix: "drop one of them"},
		{name: "GHA without URL", pkg: "cache", setup: noGHAEnv, calls: backend(cache.GHA(cache.Token(badGHAToken))),
			value: []string{"gha backend: url: not set"}, fix: "use cache.URL or set ACTIONS_CACHE_URL or ACTIONS_RESULTS_URL", absent: []string{badGHAToken}},
		{name: "GHA version 2 without URL", pkg: "cache", setup: noGHAEnv, calls: backend(cache.GHA(cache.Version(2), cache.Token(badGHAToken))),
			value: []string{"gha backend: url: not set"}, fix: "use cache.URLV2 or set ACTIONS_RESULTS_URL"},
		{name: "GHA without token", pkg: "cache", setup: noGHAEnv, calls: backend(cache.GHA(cache.URL(ghaURL))),
			value: []string{"gha backend: token: not set"}, fix: "use cache.Token or set ACTIONS_RUNTIME_TOKEN"},
		{name: "GHA bad URL in the environment", pkg: "cache",
			setup: func(t *testing.T, e *badEnv) { noGHAEnv(t, e); t.Setenv("ACTIONS_CACHE_URL", "cache.example.com") },
			calls: backend(cache.GHA(cache.Token(badGHAToken))),
			value: []string{`url "cache.example.com": from ACTIONS_CACHE_URL`}, fix: "must be an absolute http:// or https:// URL"},
		{name: "GHA nil option", pkg: "cache", setup: noGHAEnv, calls: backend(withURLAndToken(nil)),
			value: []string{"gha backend: nil option"}, fix: "leave it out of the list"},
		{name: "GHA unknown mode", pkg: "cache", setup: noGHAEnv, calls: backend(withURLAndToken(cache.Mode("all"))),
			value: []string{`gha backend: mode "all"`}, fix: "use cache.ModeMin or cache.ModeMax", absent: []string{badGHAToken}},
		{name: "S3 empty bucket", pkg: "cache", calls: backend(cache.S3("", "eu-west-1")),
			value: []string{"s3 backend: bucket: must not be empty"}, fix: `give the bucket's name, such as "team-buildcache"`},
		{name: "S3 bucket with slash", pkg: "cache", calls: backend(cache.S3("bucket/app", "eu-west-1")),
			value: []string{`bucket "bucket/app": must not contain '/'`}, fix: "use cache.Prefix for a folder within the bucket"},
		{name: "S3 bucket with space", pkg: "cache", calls: backend(cache.S3("my bucket", "eu-west-1")),
			value: []string{`bucket "my bucket": must not contain spaces`}, fix: "a bucket name is lowercase letters, digits, '.' and '-'"},
		{name: "S3 empty region", pkg: "cache", calls: backend(cache.S3("bucket", "")),
			value: []string{"s3 backend: region: must not be empty"}, fix: `give the bucket's region, such as "eu-west-1"`},
		{name: "S3 region with space", pkg: "cache", calls: backend(cache.S3("bucket", "eu west 1")),
			value: []string{`region "eu west 1": must not contain spaces`}, fix: `give the region's code, such as "eu-west-1"`},
		{name: "S3 Name without names", pkg: "cache", calls: backend(cache.S3("bucket", "eu-west-1", cache.Name())),
			value: []string{"s3 backend: name"}, fix: "needs at least one name"},
		{name: "S3 empty Name", pkg: "cache", calls: backend(cache.S3("bucket", "eu-west-1", cache.Name("a", ""))),
			value: []string{"s3 backend: name: must not be empty"}, fix: `leave out cache.Name to use "buildkit"`},
		{name: "S3 Name with semicolon", pkg: "cache", calls: backend(cache.S3("bucket", "eu-west-1", cache.Name("a;b"))),
			value: []string{`name "a;b": must not contain ';'`}, fix: "give several names as separate arguments"},
		{name: "S3 Endpoint without scheme", pkg: "cache", calls: backend(cache.S3("bucket", "eu-west-1", cache.Endpoint("minio:9000"))),
			value: []string{`endpoint_url "minio:9000"`}, fix: "must be an absolute http:// or https:// URL"},
		{name: "S3 empty Endpoint", pkg: "cache", calls: backend(cache.S3("bucket", "eu-west-1", cache.Endpoint(""))),
			value: []string{"endpoint_url: must not be empty"}, fix: "leave out cache.Endpoint for AWS"},
		{name: "S3 Endpoint with password", pkg: "cache",
			calls: backend(cache.S3("bucket", "eu-west-1", cache.Endpoint("minio://"+badAccessKey+":"+badSecretKey+"@minio:9000"))),
			value: []string{`endpoint_url "minio://redacted@minio:9000"`}, fix: "must be an absolute http:// or https:// URL",
			absent: []string{badAccessKey, badSecretKey}},
		{name: "S3 Credentials without key id", pkg: "cache", calls: backend(cache.S3("bucket", "eu-west-1", cache.Credentials("", badSecretKey, ""))),
			value: []string{"access_key_id: must not be empty"}, fix: "give the AWS access key id", absent: []string{badSecretKey}},
		{name: "S3 Credentials without secret", pkg: "cache", calls: backend(cache.S3("bucket", "eu-west-1", cache.Credentials(badAccessKey, "", "tok"))),
			value: []string{"secret_access_key: must not be empty"}, fix: "give the secret access key that goes with the key id", absent: []string{badAccessKey}},
		{name: "S3 zero UploadParallelism", pkg: "cache", calls: backend(cache.S3("bucket", "eu-west-1", cache.UploadParallelism(0))),
			value: []string{`upload_parallelism "0"`}, fix: "must be positive"},
		{name: "S3 negative TouchRefresh", pkg: "cache", calls: backend(cache.S3("bucket", "eu-west-1", cache.TouchRefresh(-time.Hour))),
			value: []string{`touch_refresh "-1h0m0s"`}, fix: "must not be negative"},
		{name: "S3 nil option", pkg: "cache", calls: backend(cache.S3("bucket", "eu-west-1", nil)),
			value: []string{"s3 backend: nil option"}, fix: "leave it out of the list"},
		{name: "S3 unknown mode", pkg: "cache", calls: backend(cache.S3("bucket", "eu-west-1", cache.Mode("Max"), cache.Credentials(badAccessKey, badSecretKey, ""))),
			value: []string{`s3 backend: mode "Max"`}, fix: "use cache.ModeMin or cache.ModeMax", absent: []string{badAccessKey, badSecretKey}},
		{name: "ParseMode empty", pkg: "cache",
			calls: []badCall{direct("cache.ParseMode", func() error { _, err := cache.ParseMode(""); return err })},
			value: []string{"cache: mode: must not be empty"}, fix: "use cache.ModeMin or cache.ModeMax"},
		{name: "ParseMode upper case", pkg: "cache",
			calls: []badCall{direct("cache.ParseMode", func() error { _, err := cache.ParseMode("MAX"); return err })},
			value: []string{`mode "MAX": unknown mode`}, fix: "use cache.ModeMin or cache.ModeMax"},
		{name: "ParseMode other word", pkg: "cache",
			calls: []badCall{direct("cache.ParseMode", func() error { _, err := cache.ParseMode("maximum"); return err })},
			value: []string{`mode "maximum": unknown mode`}, fix: "use cache.ModeMin or cache.ModeMax"},

		// ---- cache: mount stores, through PersistCacheMounts and Validate ----
		{name: "RegistryStore empty", pkg: "cache", calls: store(cache.RegistryStore("")),
			value: []string{"RegistryStore: empty repository"}, fix: "want host/repo, such as registry.example.com/team/app-caches"},
		{name: "RegistryStore with tag", pkg: "cache", calls: store(cache.RegistryStore("registry.example.com/app:caches")),
			value: []string{`RegistryStore "registry.example.com/app:caches": not a repository`}, fix: "want host/repo without tag or digest"},
		{name: "RegistryStore with digest", pkg: "cache", calls: store(cache.RegistryStore("registry.example.com/app@" + goodSum)),
			value: []string{`RegistryStore "registry.example.com/app@` + goodSum + `"`}, fix: "want host/repo without tag or digest"},
		{name: "RegistryStore uppercase", pkg: "cache", calls: store(cache.RegistryStore("registry.example.com/App")),
			value: []string{`RegistryStore "registry.example.com/App"`}, fix: "want host/repo without tag or digest"},
		{name: "DirStore empty", pkg: "cache", calls: store(cache.DirStore("")),
			value: []string{"DirStore: empty directory"}, fix: "want a directory on the client, such as /var/cache/larder"},
		{name: "S3Store empty bucket", pkg: "cache", calls: store(cache.S3Store("", "eu-west-1")),
			value: []string{"bucket: must not be empty"}, fix: "give the bucket's name"},
		{name: "S3Store bucket with slash", pkg: "cache", calls: store(cache.S3Store("bucket/caches", "eu-west-1")),
			value: []string{`bucket "bucket/caches"`}, fix: "use cache.Prefix for a folder within the bucket"},
		{name: "S3Store ManifestsPrefix", pkg: "cache", calls: store(cache.S3Store("bucket", "eu-west-1", cache.ManifestsPrefix("m/"))),
			value: []string{"ManifestsPrefix: does not apply to S3Store"}, fix: "which takes Prefix, Endpoint, PathStyle and Credentials"},
		{name: "S3Store BlobsPrefix", pkg: "cache", calls: store(cache.S3Store("bucket", "eu-west-1", cache.BlobsPrefix("b/"))),
			value: []string{"BlobsPrefix: does not apply to S3Store"}, fix: "which takes Prefix, Endpoint, PathStyle and Credentials"},
		{name: "S3Store Name", pkg: "cache", calls: store(cache.S3Store("bucket", "eu-west-1", cache.Name("x"))),
			value: []string{"Name: does not apply to S3Store"}, fix: "which takes Prefix, Endpoint, PathStyle and Credentials"},
		{name: "S3Store UploadParallelism", pkg: "cache", calls: store(cache.S3Store("bucket", "eu-west-1", cache.UploadParallelism(8))),
			value: []string{"UploadParallelism: does not apply to S3Store"}, fix: "which takes Prefix, Endpoint, PathStyle and Credentials"},
		{name: "S3Store TouchRefresh", pkg: "cache", calls: store(cache.S3Store("bucket", "eu-west-1", cache.TouchRefresh(time.Hour))),
			value: []string{"TouchRefresh: does not apply to S3Store"}, fix: "which takes Prefix, Endpoint, PathStyle and Credentials"},
		{name: "S3Store Mode", pkg: "cache", calls: store(cache.S3Store("bucket", "eu-west-1", cache.ModeMax)),
			value: []string{"Mode and IgnoreError: does not apply to S3Store"}, fix: "which takes Prefix, Endpoint, PathStyle and Credentials"},
		{name: "S3Store IgnoreError", pkg: "cache", calls: store(cache.S3Store("bucket", "eu-west-1", cache.IgnoreError(true))),
			value: []string{"Mode and IgnoreError: does not apply to S3Store"}, fix: "which takes Prefix, Endpoint, PathStyle and Credentials"},
		{name: "S3Store Endpoint without scheme", pkg: "cache", calls: store(cache.S3Store("bucket", "eu-west-1", cache.Endpoint("minio:9000"))),
			value: []string{`endpoint_url "minio:9000"`}, fix: "must be an absolute http:// or https:// URL"},
		{name: "S3Store Credentials without secret", pkg: "cache",
			calls: store(cache.S3Store("bucket", "eu-west-1", cache.Credentials(badAccessKey, "", ""))),
			value: []string{"secret_access_key: must not be empty"}, fix: "give the secret access key that goes with the key id", absent: []string{badAccessKey}},

		// ---- buildtest ----
		{name: "buildtest.Build of a bad stage", pkg: "buildtest",
			calls: []badCall{bt("buildtest.Build", func(tb testing.TB) { buildtest.Build(tb, build.Image("Debian:Bookworm")) })},
			value: []string{"buildtest: Build", `Image("Debian:Bookworm")`}, fix: "want a reference such as debian:bookworm"},
		{name: "buildtest.Build with a bad option", pkg: "buildtest",
			calls: []badCall{bt("buildtest.Build", func(tb testing.TB) { buildtest.Build(tb, alpine, build.Push("bad ref!")) })},
			value: []string{"buildtest: Build", `Push("bad ref!")`}, fix: "want host/repo:tag"},
		{name: "buildtest.Build without WithLocal", pkg: "buildtest",
			calls: []badCall{bt("buildtest.Build", func(tb testing.TB) { buildtest.Build(tb, build.Local("src")) })},
			value: []string{"buildtest: Build", `the graph uses Local("src")`}, fix: `no WithLocal("src", dir) was given`},
		{name: "buildtest.ReadFile empty path", pkg: "buildtest",
			calls: []badCall{bt("buildtest.ReadFile", func(tb testing.TB) { buildtest.ReadFile(tb, alpine, "") })},
			value: []string{`buildtest: ReadFile("")`, "empty path"}, fix: "give both the source path and the destination"},
		{name: "buildtest.ReadFile of a bad stage", pkg: "buildtest",
			calls: []badCall{bt("buildtest.ReadFile", func(tb testing.TB) { buildtest.ReadFile(tb, alpine.Dir(""), "/etc/os-release") })},
			value: []string{`buildtest: ReadFile("/etc/os-release")`, "Dir: empty path"}, fix: `give the working directory, such as "/src"`},
		{name: "buildtest.Export empty path", pkg: "buildtest",
			calls: []badCall{bt("buildtest.Export", func(tb testing.TB) { buildtest.Export(tb, alpine, "") })},
			value: []string{`buildtest: Export("")`, "empty path"}, fix: "give both the source path and the destination"},
		{name: "buildtest.Export with a bad option", pkg: "buildtest",
			calls: []badCall{bt("buildtest.Export", func(tb testing.TB) { buildtest.Export(tb, alpine, "/etc", build.Platforms("linux/")) })},
			value: []string{`buildtest: Export("/etc")`, `Platforms("linux/")`}, fix: "want os/arch[/variant], such as linux/arm64"},
		{name: "Image.Run without a command", pkg: "buildtest",
			calls: []badCall{bt("Image.Run", func(tb testing.TB) { (&buildtest.Image{}).Run(tb) })},
			value: []string{"buildtest: Run(): empty command"}, fix: "give a program and its arguments"},
		{name: "Image.Run empty program", pkg: "buildtest",
			calls: []badCall{bt("Image.RunWith", func(tb testing.TB) { (&buildtest.Image{}).RunWith(tb, []string{"", "x"}) })},
			value: []string{`buildtest: Run("" x): empty command`}, fix: "give a program and its arguments"},
		{name: "UseBuilder(nil)", pkg: "buildtest",
			calls: []badCall{panics("buildtest.UseBuilder", func() { buildtest.UseBuilder(nil) })},
			value: []string{"buildtest: UseBuilder(nil)"}, fix: "give a *remote.Builder or *remote.Fleet"},
		{name: "UseBuilder after a test asked", pkg: "buildtest",
			calls: []badCall{panics("buildtest.UseBuilder", func() { buildtest.UseBuilder(btShared) })},
			value: []string{"UseBuilder called after a test asked for the builder"}, fix: "call it in TestMain before the tests run"},
		{name: "Configure after a test asked", pkg: "buildtest",
			calls: []badCall{panics("buildtest.Configure", func() { buildtest.Configure() })},
			value: []string{"Configure called after a test asked for the builder"}, fix: "call it in TestMain before the tests run"},
	}

	counts := map[string]int{}
	var gaps, knowns []string
	names := map[string]bool{}
	for _, r := range rows {
		if names[r.name] {
			t.Errorf("two rows named %q", r.name)
		}
		names[r.name] = true
		if r.known != "" {
			knowns = append(knowns, r.pkg+": "+r.name+": "+r.known)
		} else {
			counts[r.pkg]++
		}
		if r.gap != "" && r.known == "" {
			gaps = append(gaps, r.pkg+": "+r.name+": "+r.gap)
		}
		t.Run(r.name, func(t *testing.T) { r.check(t) })
	}

	total := 0
	var byPkg []string
	for p, n := range counts {
		total += n
		byPkg = append(byPkg, fmt.Sprintf("%s %d", p, n))
	}
	sort.Strings(byPkg)
	t.Logf("%d rows checked (%s); %d messages that do not say what to pass; %d known problems", total, strings.Join(byPkg, ", "), len(gaps), len(knowns))
	for _, g := range gaps {
		t.Logf("gap: %s", g)
	}
	for _, k := range knowns {
		t.Logf("known: %s", k)
	}
	if total < 150 {
		t.Errorf("%d rows checked, want at least 150", total)
	}
}

// check makes the row's mistake through each of its calls and checks what
// each returns.
func (r badInput) check(t *testing.T) {
	if r.fix == "" && r.gap == "" {
		t.Fatalf("the row gives neither the fix its message must say nor the gap that keeps it from saying one")
	}
	if len(r.calls) == 0 || len(r.value) == 0 {
		t.Fatalf("the row needs calls and the value its messages must name")
	}
	e := &badEnv{dir: t.TempDir()}
	e.file = filepath.Join(e.dir, "file")
	e.missing = filepath.Join(e.dir, "missing")
	if err := os.WriteFile(e.file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r.setup != nil {
		r.setup(t, e)
	}
	for _, c := range r.calls {
		b := newRefuser()
		panicked, err := r.call(t, c, e, b)
		switch {
		case panicked != nil && r.known != "":
			t.Skipf("known: %s (%s panics: %v)", r.known, c.how, panicked)
		case panicked != nil:
			t.Fatalf("%s panics: %v", c.how, panicked)
		case b.acquired > 0 && r.known != "":
			t.Skipf("known: %s (%s reached the builder)", r.known, c.how)
		case b.acquired > 0:
			t.Errorf("%s: the builder was contacted: the mistake was not caught first (error: %v)", c.how, err)
			continue
		case err == nil && r.known != "":
			t.Skipf("known: %s (%s returned no error)", r.known, c.how)
		case err == nil:
			t.Errorf("%s: no error", c.how)
			continue
		}
		msg := err.Error()
		t.Logf("%s: %s", c.how, msg)
		for _, v := range r.value {
			if !strings.Contains(msg, v) {
				t.Errorf("%s: the message does not name the value %q:\n\t%s", c.how, v, msg)
			}
		}
		if r.fix != "" && !strings.Contains(msg, r.fix) {
			t.Errorf("%s: the message does not say what to pass, %q:\n\t%s", c.how, r.fix, msg)
		}
		for _, a := range r.absent {
			if strings.Contains(msg, a) {
				t.Errorf("%s: the message shows the credential %q:\n\t%s", c.how, a, msg)
			}
		}
	}
	if r.known != "" {
		t.Logf("known problem %q no longer shows: drop known from the row", r.known)
	}
}

// call runs c, turning a panic into its value.
func (r badInput) call(t *testing.T, c badCall, e *badEnv, b *refuser) (panicked any, err error) {
	defer func() {
		if p := recover(); p != nil {
			panicked = p
		}
	}()
	return nil, c.run(t, e, b)
}

// agentSocket listens on a unix socket, as an SSH agent would, so that
// WithSSH finds one. Its path is short, as unix socket paths must be.
func agentSocket(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "lbi")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "agent.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return path
}
