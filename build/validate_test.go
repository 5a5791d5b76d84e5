package build_test

// Every mistake a user can make is reported, before any builder is
// contacted, by a message that names the value and says what to do.

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/cache"
	"github.com/larder-build/larder/mounts"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// uNoBuilder is a Builder that must never be contacted: a Solve that fails
// on the client never calls Acquire.
type uNoBuilder struct{ t testing.TB }

func (uNoBuilder) Platforms() []ocispecs.Platform {
	return []ocispecs.Platform{{OS: "linux", Architecture: "amd64"}}
}

func (b uNoBuilder) Acquire(context.Context, ocispecs.Platform, string) (*client.Client, string, func(error), error) {
	b.t.Helper()
	b.t.Errorf("builder contacted")
	return nil, "", nil, errors.New("uNoBuilder: must not be contacted")
}

// errUReached is what uReachBuilder's Acquire returns.
var errUReached = errors.New("uReachBuilder: reached")

// uReachBuilder is a Builder whose Acquire records what it was asked and
// fails, so that a Solve whose checks pass stops there.
type uReachBuilder struct {
	platforms []ocispecs.Platform
	acquired  int
	platform  ocispecs.Platform
	key       string
}

func (b *uReachBuilder) Platforms() []ocispecs.Platform { return b.platforms }

func (b *uReachBuilder) Acquire(_ context.Context, p ocispecs.Platform, key string) (*client.Client, string, func(error), error) {
	b.acquired++
	b.platform, b.key = p, key
	return nil, "", nil, errUReached
}

// uCheckMessage fails unless err is non-nil and its message holds every one
// of want.
func uCheckMessage(t *testing.T, err error, want []string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", want)
	}
	t.Logf("message: %v", err)
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q\n\tdoes not contain %q", err, w)
		}
	}
}

func TestUnitStageErrors(t *testing.T) {
	const (
		remote = "https://github.com/example/app.git"
		url    = "https://example.com/tool.tgz"
	)
	goodSum := "sha256:" + strings.Repeat("a", 64)
	alpine := build.Image("alpine:3.20")
	errOf := func(s build.Stage) func() error { return s.Err }

	for _, tc := range []struct {
		name string
		err  func() error
		want []string
	}{
		// Image references.
		{"Image uppercase", errOf(build.Image("Debian:Bookworm")),
			[]string{`build: Image("Debian:Bookworm")`, "must be lowercase", "want a reference such as debian:bookworm"}},
		{"Image empty", errOf(build.Image("")),
			[]string{`build: Image("")`, "invalid reference format", "want a reference such as"}},
		{"Image space", errOf(build.Image("a b")),
			[]string{`build: Image("a b")`, "invalid reference format", "want a reference such as"}},
		{"Image scheme", errOf(build.Image("https://registry.example.com/app")),
			[]string{`build: Image("https://registry.example.com/app")`, "want a reference such as"}},

		// Source options given to the wrong source.
		{"Include on Image", errOf(build.Image("debian", build.Include("*.go"))),
			[]string{`build: Image("debian")`, "Include does not apply to image sources (it applies to local)"}},
		{"Exclude on Git", errOf(build.Git(remote, "", build.Exclude("vendor"))),
			[]string{`build: Git("` + remote + `")`, "Exclude does not apply to git sources (it applies to local)"}},
		{"KeepGitDir on HTTP", errOf(build.HTTP(url, build.KeepGitDir())),
			[]string{`build: HTTP("` + url + `")`, "KeepGitDir does not apply to http sources (it applies to git)"}},
		{"Checksum on Git", errOf(build.Git(remote, "main", build.Checksum(goodSum))),
			[]string{`build: Git("` + remote + `")`, "Checksum does not apply to git sources (it applies to http)"}},
		{"Filename on Local", errOf(build.Local("src", build.Filename("a.txt"))),
			[]string{`build: Local("src")`, "Filename does not apply to local sources (it applies to http)"}},
		{"Platform on Local", errOf(build.Local("src", build.Platform("linux/arm64"))),
			[]string{`build: Local("src")`, "Platform does not apply to local sources (it applies to image)"}},
		{"Platform on HTTP", errOf(build.HTTP(url, build.Platform("linux/arm64"))),
			[]string{`build: HTTP("` + url + `")`, "Platform does not apply to http sources (it applies to image)"}},
		{"two wrong options", errOf(build.Image("debian", build.KeepGitDir(), build.Filename("x"))),
			[]string{"KeepGitDir does not apply to image", "Filename does not apply to image"}},

		// Platforms.
		{"Platform option too many parts", errOf(build.Image("debian", build.Platform("linux/amd64/v2/extra"))),
			[]string{`build: Image("debian")`, `Platform("linux/amd64/v2/extra")`, "want os/arch[/variant], such as linux/arm64"}},
		{"Platform option empty", errOf(build.Image("debian", build.Platform(""))),
			[]string{`Platform("")`, "want os/arch[/variant]"}},
		{"Platform option bad characters", errOf(build.Image("debian", build.Platform("linux/am d64"))),
			[]string{`Platform("linux/am d64")`, "want os/arch[/variant]"}},
		{"Stage.Platform", errOf(alpine.Platform("bad!")),
			[]string{`build: Platform("bad!")`, "want os/arch[/variant], such as linux/arm64"}},
		{"Marshal platform", func() error {
			_, err := alpine.Marshal(context.Background(), "not a platform")
			return err
		}, []string{`build: Marshal("not a platform")`}},

		// Checksum and Filename.
		{"Checksum algorithm", errOf(build.HTTP(url, build.Checksum("md5:d41d8cd98f00b204e9800998ecf8427e"))),
			[]string{`build: HTTP("` + url + `")`, `Checksum("md5:d41d8cd98f00b204e9800998ecf8427e")`, "want sha256:<64 hex digits>"}},
		{"Checksum short", errOf(build.HTTP(url, build.Checksum("sha256:abc"))),
			[]string{`Checksum("sha256:abc")`, "want sha256:<64 hex digits>"}},
		{"Checksum without algorithm", errOf(build.HTTP(url, build.Checksum(strings.Repeat("a", 64)))),
			[]string{`Checksum("` + strings.Repeat("a", 64) + `")`, "want sha256:<64 hex digits>"}},
		{"Filename with slash", errOf(build.HTTP(url, build.Filename("bin/tool"))),
			[]string{`Filename("bin/tool")`, "want a plain file name"}},
		{"Filename empty", errOf(build.HTTP(url, build.Filename(""))),
			[]string{`Filename("")`, "want a plain file name"}},

		// Sources.
		{"Local empty name", errOf(build.Local("")),
			[]string{`build: Local("")`, "empty name", `such as "src"`}},
		{"Local slash", errOf(build.Local("a/b")),
			[]string{`build: Local("a/b")`, "letters, digits, '-', '_' and '.'", `not '/'`}},
		{"Local space", errOf(build.Local("my src")),
			[]string{`build: Local("my src")`, `not ' '`}},
		{"Git empty remote", errOf(build.Git("", "main")),
			[]string{"build: Git: empty remote", "want a URL such as https://host/repo.git"}},
		{"HTTP ftp", errOf(build.HTTP("ftp://example.com/tool.tgz")),
			[]string{`build: HTTP("ftp://example.com/tool.tgz")`, "want an http:// or https:// URL"}},
		{"HTTP no scheme", errOf(build.HTTP("example.com/tool.tgz")),
			[]string{`build: HTTP("example.com/tool.tgz")`, "want an http:// or https:// URL"}},

		// Steps and settings.
		{"Run empty", errOf(alpine.Run("")), []string{"build: Run: empty command"}},
		{"Run blank", errOf(alpine.Run(" \t\n")), []string{"build: Run: empty command"}},
		{"RunArgs nil", errOf(alpine.RunArgs(nil)), []string{"build: RunArgs: empty argv"}},
		{"RunArgs empty program", errOf(alpine.RunArgs([]string{"", "x"})), []string{"build: RunArgs: empty argv"}},
		{"Env empty key", errOf(alpine.Env("", "x")),
			[]string{`build: Env("")`, "want a variable name without '=' or spaces"}},
		{"Env key with =", errOf(alpine.Env("A=B", "x")),
			[]string{`build: Env("A=B")`, "want a variable name without '=' or spaces"}},
		{"Env key with space", errOf(alpine.Env("MY VAR", "x")),
			[]string{`build: Env("MY VAR")`, "want a variable name without '=' or spaces"}},
		{"Dir empty", errOf(alpine.Dir("")), []string{"build: Dir: empty path"}},
		{"User empty", errOf(alpine.User("")), []string{"build: User: empty user"}},

		// Copy.
		{"Copy empty src", errOf(alpine.Copy(alpine, "", "/dst")),
			[]string{`build: Copy("", "/dst"): empty path`}},
		{"Copy empty dst", errOf(alpine.Copy(alpine, "/src", "")),
			[]string{`build: Copy("/src", ""): empty path`}},
		{"Chown negative uid", errOf(alpine.Copy(alpine, "/a", "/b", build.Chown(-1, 0))),
			[]string{`build: Copy("/a", "/b")`, "Chown(-1, 0): ids must not be negative"}},
		{"Chown negative gid", errOf(alpine.Copy(alpine, "/a", "/b", build.Chown(0, -5))),
			[]string{"Chown(0, -5): ids must not be negative"}},
		{"Chmod too large", errOf(alpine.Copy(alpine, "/a", "/b", build.Chmod(0o10000))),
			[]string{`build: Copy("/a", "/b")`, "Chmod(010000): want permission bits within 0o7777"}},
		{"Chmod Go mode bit", errOf(alpine.Copy(alpine, "/a", "/b", build.Chmod(os.ModeDir|0o755))),
			[]string{"Chmod(", "want permission bits within 0o7777"}},
		{"ChownUser empty", errOf(alpine.Copy(alpine, "/a", "/b", build.ChownUser(""))),
			[]string{`ChownUser(""): want user or user:group`}},
		{"ChownUser no user", errOf(alpine.Copy(alpine, "/a", "/b", build.ChownUser(":staff"))),
			[]string{`ChownUser(":staff"): want user or user:group`}},
		{"ChownUser no group", errOf(alpine.Copy(alpine, "/a", "/b", build.ChownUser("app:"))),
			[]string{`ChownUser("app:"): want user or user:group`}},
		{"two Copy option errors", errOf(alpine.Copy(alpine, "/a", "/b", build.Chown(-1, -1), build.Chmod(0o77777))),
			[]string{"Chown(-1, -1)", "Chmod(077777)"}},

		// Mounts on a step.
		{"relative mount target", errOf(alpine.Run("make", mounts.Cache("root/.cache"))),
			[]string{`build: Run("make")`, `cache mount "root/.cache"`, "must be an absolute path", `did you mean "/root/.cache"?`}},
		{"relative mount target on RunArgs", errOf(alpine.RunArgs([]string{"make"}, mounts.Tmpfs("tmp"))),
			[]string{`build: RunArgs(["make"])`, `tmpfs mount "tmp"`, `did you mean "/tmp"?`}},
		{"two mounts on one target", errOf(alpine.Run("make", mounts.Cache("/work"), mounts.Tmpfs("/work/"))),
			[]string{`build: Run("make")`, `target "/work" is also the target of cache mount "/work"`, "give each mount its own target"}},
		{"two secrets on one file", errOf(alpine.Run("make", mounts.Secret("a/tok"), mounts.Secret("b/tok"))),
			[]string{`target "/run/secrets/tok" is also the target of secret mount "a/tok"`}},
		{"two secrets on one variable", errOf(alpine.Run("make", mounts.Secret("a", mounts.Env("TOKEN")), mounts.Secret("b", mounts.Env("TOKEN")))),
			[]string{`build: Run("make")`, `environment variable "TOKEN" is also set by secret "a"`, "give each secret its own variable"}},
		{"preset and mount on one target", errOf(alpine.Run("apt-get update", cache.Apt(), mounts.Cache("/var/lib/apt"))),
			[]string{`build: Run("apt-get update")`, `target "/var/lib/apt" is also the target of cache mount "/var/lib/apt"`}},
		{"bad preset", errOf(alpine.Run("pip install x", cache.Pip(cache.Home("home")))),
			[]string{`build: Run("pip install x")`, "Home", "path must be absolute"}},
		{"secret empty id", errOf(alpine.Run("make", mounts.Secret(""))),
			[]string{`build: Run("make")`, "id is empty"}},
		{"cache empty id", errOf(alpine.Run("make", mounts.Cache("/c", mounts.ID("")))),
			[]string{`cache mount "/c"`, "id"}},
		{"bind of nil source", errOf(alpine.Run("make", mounts.Bind("/src", nil))),
			[]string{`bind mount "/src"`}},
		{"nil run option", errOf(alpine.Run("make", nil)),
			[]string{`build: Run("make")`, "is nil"}},
		{"long command is shortened", errOf(alpine.Run(strings.Repeat("x", 100), mounts.Cache("c"))),
			[]string{`build: Run("` + strings.Repeat("x", 60) + `…")`}},

		// Mistakes travel with the stage into the stages built on it.
		{"Copy from a bad stage", errOf(build.Scratch().Copy(build.Image("Bad"), "/a", "/b")),
			[]string{`build: Image("Bad")`}},
		{"mount of a bad stage", errOf(alpine.Run("ls", mounts.Bind("/m", build.Local("a/b")))),
			[]string{`build: Local("a/b")`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			uCheckMessage(t, tc.err(), tc.want)
		})
	}
}

// uUnsetenv unsets the environment variable name for the rest of the test.
func uUnsetenv(t *testing.T, name string) {
	t.Setenv(name, "") // restores the variable when the test ends
	if err := os.Unsetenv(name); err != nil {
		t.Fatal(err)
	}
}

func TestUnitSolveErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	alpine := build.Image("alpine:3.20")

	for _, tc := range []struct {
		name  string
		setup func(t *testing.T) // changes the environment; runs before the options are made
		stage build.Stage
		opts  func() []build.SolveOption
		want  []string
	}{
		// Local directories.
		{name: "WithLocal missing dir", stage: alpine,
			opts: func() []build.SolveOption { return []build.SolveOption{build.WithLocal("src", missing)} },
			want: []string{`build: Solve: WithLocal("src", "` + missing + `")`, "no such file or directory"}},
		{name: "WithLocal of a file", stage: alpine,
			opts: func() []build.SolveOption { return []build.SolveOption{build.WithLocal("src", file)} },
			want: []string{`WithLocal("src", "` + file + `"): not a directory`}},
		{name: "WithLocal twice", stage: alpine,
			opts: func() []build.SolveOption {
				return []build.SolveOption{build.WithLocal("src", dir), build.WithLocal("src", dir)}
			},
			want: []string{`WithLocal("src"): given twice`}},
		{name: "WithLocal bad name", stage: alpine,
			opts: func() []build.SolveOption { return []build.SolveOption{build.WithLocal("a/b", dir)} },
			want: []string{`WithLocal("a/b")`, "letters, digits", `not '/'`}},
		{name: "WithLocal empty name", stage: alpine,
			opts: func() []build.SolveOption { return []build.SolveOption{build.WithLocal("", dir)} },
			want: []string{`WithLocal("")`, "empty name"}},

		// Secrets and SSH.
		{name: "WithSecret empty id", stage: alpine,
			opts: func() []build.SolveOption { return []build.SolveOption{build.WithSecret("", []byte("v"))} },
			want: []string{"WithSecret: empty id"}},
		{name: "WithSecret twice", stage: alpine,
			opts: func() []build.SolveOption {
				return []build.SolveOption{build.WithSecret("tok", []byte("a")), build.WithSecret("tok", []byte("b"))}
			},
			want: []string{`WithSecret("tok"): given twice`}},
		{name: "WithSecretFile missing", stage: alpine,
			opts: func() []build.SolveOption { return []build.SolveOption{build.WithSecretFile("tok", missing)} },
			want: []string{`WithSecretFile("tok")`, missing, "no such file or directory"}},
		{name: "WithSecretEnv unset", stage: alpine,
			setup: func(t *testing.T) { uUnsetenv(t, "LARDER_UNIT_UNSET_SECRET") },
			opts: func() []build.SolveOption {
				return []build.SolveOption{build.WithSecretEnv("tok", "LARDER_UNIT_UNSET_SECRET")}
			},
			want: []string{`WithSecretEnv("tok"): environment variable LARDER_UNIT_UNSET_SECRET is not set`}},
		{name: "WithSSH empty id", stage: alpine,
			opts: func() []build.SolveOption { return []build.SolveOption{build.WithSSH("", "/tmp/agent.sock")} },
			want: []string{"WithSSH: empty id", `the default id of an SSH mount is "default"`}},
		{name: "WithSSH without path or agent", stage: alpine,
			setup: func(t *testing.T) { uUnsetenv(t, "SSH_AUTH_SOCK") },
			opts:  func() []build.SolveOption { return []build.SolveOption{build.WithSSH("default")} },
			want:  []string{`WithSSH("default"): no path given and SSH_AUTH_SOCK is not set`}},

		// Outputs.
		{name: "Push no ref", stage: alpine,
			opts: func() []build.SolveOption { return []build.SolveOption{build.Push()} },
			want: []string{"Push: no reference"}},
		{name: "Push bad ref", stage: alpine,
			opts: func() []build.SolveOption { return []build.SolveOption{build.Push("bad ref!")} },
			want: []string{`Push("bad ref!")`, "want host/repo:tag"}},
		{name: "Push second ref bad", stage: alpine,
			opts: func() []build.SolveOption {
				return []build.SolveOption{build.Push("registry.example.com/app:1", "Registry.example.com/App:1")}
			},
			want: []string{`Push("Registry.example.com/App:1")`, "want host/repo:tag"}},
		{name: "OCITarball missing dir", stage: alpine,
			opts: func() []build.SolveOption {
				return []build.SolveOption{build.OCITarball(filepath.Join(missing, "img.tar"), "")}
			},
			want: []string{`OCITarball("` + filepath.Join(missing, "img.tar") + `")`, "directory " + missing + " does not exist"}},
		{name: "OCITarball empty path", stage: alpine,
			opts: func() []build.SolveOption { return []build.SolveOption{build.OCITarball("", "")} },
			want: []string{"OCITarball: empty path"}},
		{name: "OCITarball bad ref", stage: alpine,
			opts: func() []build.SolveOption {
				return []build.SolveOption{build.OCITarball(filepath.Join(dir, "img.tar"), "bad ref!")}
			},
			want: []string{`OCITarball("` + filepath.Join(dir, "img.tar") + `", "bad ref!")`, "invalid reference format"}},
		{name: "DockerTarball missing dir", stage: alpine,
			opts: func() []build.SolveOption {
				return []build.SolveOption{build.DockerTarball(filepath.Join(missing, "img.tar"), "app:1")}
			},
			want: []string{`DockerTarball("` + filepath.Join(missing, "img.tar") + `")`, "does not exist"}},
		{name: "DockerTarball without ref", stage: alpine,
			opts: func() []build.SolveOption {
				return []build.SolveOption{build.DockerTarball(filepath.Join(dir, "img.tar"), "")}
			},
			want: []string{`DockerTarball("` + filepath.Join(dir, "img.tar") + `")`, "a reference is needed to tag the image"}},
		{name: "LocalDir empty", stage: alpine,
			opts: func() []build.SolveOption { return []build.SolveOption{build.LocalDir("")} },
			want: []string{"LocalDir: empty path"}},
		{name: "Export without type", stage: alpine,
			opts: func() []build.SolveOption { return []build.SolveOption{build.Export(client.ExportEntry{})} },
			want: []string{"Export: entry has no Type"}},

		// Progress and events.
		{name: "Progress bad mode", stage: alpine,
			opts: func() []build.SolveOption { return []build.SolveOption{build.Progress(io.Discard, "fancy")} },
			want: []string{`Progress: mode "fancy"`, "want auto, tty, plain, rawjson or quiet"}},
		{name: "Progress nil writer", stage: alpine,
			opts: func() []build.SolveOption { return []build.SolveOption{build.Progress(nil, "plain")} },
			want: []string{"Progress: nil writer"}},
		{name: "OnEvent nil", stage: alpine,
			opts: func() []build.SolveOption { return []build.SolveOption{build.OnEvent(nil)} },
			want: []string{"OnEvent: nil func"}},

		// Cache backends.
		{name: "CacheFrom bad registry", stage: alpine,
			opts: func() []build.SolveOption { return []build.SolveOption{build.CacheFrom(cache.Registry("bad ref!"))} },
			want: []string{"CacheFrom: ", `registry backend: ref "bad ref!"`}},
		{name: "CacheTo bad registry", stage: alpine,
			opts: func() []build.SolveOption { return []build.SolveOption{build.CacheTo(cache.Registry("bad ref!"))} },
			want: []string{"CacheTo: ", `registry backend: ref "bad ref!"`}},
		{name: "CacheFrom inline", stage: alpine,
			opts: func() []build.SolveOption { return []build.SolveOption{build.CacheFrom(cache.Inline())} },
			want: []string{"CacheFrom: ", "inline backend", "import it with cache.Registry"}},
		{name: "CacheFrom nil", stage: alpine,
			opts: func() []build.SolveOption { return []build.SolveOption{build.CacheFrom(nil)} },
			want: []string{"CacheFrom: nil backend"}},
		{name: "CacheTo nil", stage: alpine,
			opts: func() []build.SolveOption { return []build.SolveOption{build.CacheTo(cache.Inline(), nil)} },
			want: []string{"CacheTo: nil backend"}},

		// Platform and options themselves.
		{name: "Platforms given twice", stage: alpine,
			opts: func() []build.SolveOption { return []build.SolveOption{build.Platforms("linux/amd64", "linux/amd64")} },
			want: []string{"Platforms: linux/amd64 given twice"}},
		{name: "tarball with several platforms", stage: alpine,
			opts: func() []build.SolveOption {
				return []build.SolveOption{build.Platforms("linux/amd64", "linux/arm64"), build.DockerTarball(filepath.Join(t.TempDir(), "x.tar"), "app:1")}
			},
			want: []string{"DockerTarball writes a single platform's image, but 2 platforms are built"}},
		{name: "Platforms bad", stage: alpine,
			opts: func() []build.SolveOption { return []build.SolveOption{build.Platforms("linux/")} },
			want: []string{`Platforms("linux/")`, "want os/arch[/variant], such as linux/arm64"}},
		{name: "nil option", stage: alpine,
			opts: func() []build.SolveOption { return []build.SolveOption{nil} },
			want: []string{"build: Solve: nil option"}},
		{name: "two tarballs on one path", stage: alpine,
			opts: func() []build.SolveOption {
				p := filepath.Join(dir, "img.tar")
				return []build.SolveOption{build.OCITarball(p, ""), build.DockerTarball(p, "app:1")}
			},
			want: []string{`DockerTarball("` + filepath.Join(dir, "img.tar") + `")`, "OCITarball writes there too", "give each output a path of its own"}},
		{name: "LocalDir on a tarball's path", stage: alpine,
			opts: func() []build.SolveOption {
				return []build.SolveOption{build.OCITarball(filepath.Join(dir, "x"), ""), build.LocalDir(filepath.Join(dir, "x"))}
			},
			want: []string{"OCITarball writes there too"}},
		{name: "Push to a digest", stage: alpine,
			opts: func() []build.SolveOption {
				return []build.SolveOption{build.Push("registry.example.com/app@sha256:" + strings.Repeat("a", 64))}
			},
			want: []string{"can't be pushed to a digest", "want host/repo:tag"}},
		{name: "LocalDir on a file", stage: alpine,
			opts: func() []build.SolveOption { return []build.SolveOption{build.LocalDir(file)} },
			want: []string{`LocalDir("` + file + `"): a file is there`, "give a directory"}},
		{name: "Export of an unknown type", stage: alpine,
			opts: func() []build.SolveOption {
				return []build.SolveOption{build.Export(client.ExportEntry{Type: "oci-layout"})}
			},
			want: []string{`unknown exporter type "oci-layout"`, "image, registry, local, tar, oci, docker, cacheonly"}},
		{name: "nil keychain", stage: alpine,
			opts: func() []build.SolveOption { return []build.SolveOption{build.WithKeychain(nil)} },
			want: []string{"build: Solve: WithKeychain: nil keychain", "authn.DefaultKeychain"}},

		// The stage's own mistakes.
		{name: "bad image", stage: build.Image("Debian:Bookworm").Run("true"),
			opts: func() []build.SolveOption { return nil },
			want: []string{`build: Image("Debian:Bookworm")`, "must be lowercase"}},
		{name: "bad mount", stage: alpine.Run("make", mounts.Cache("cache")),
			opts: func() []build.SolveOption { return nil },
			want: []string{`build: Run("make")`, `cache mount "cache"`, `did you mean "/cache"?`}},
		{name: "two secrets on one variable",
			stage: alpine.Run("make", mounts.Secret("a", mounts.Env("TOKEN")), mounts.Secret("b", mounts.Env("TOKEN"))),
			opts: func() []build.SolveOption {
				return []build.SolveOption{build.WithSecret("a", []byte("1")), build.WithSecret("b", []byte("2"))}
			},
			want: []string{`build: Solve: build: Run("make")`, `environment variable "TOKEN" is also set by secret "a"`}},

		// What the graph needs from the session.
		{name: "Local without WithLocal", stage: build.Local("src"),
			opts: func() []build.SolveOption { return nil },
			want: []string{`build: Solve: the graph uses Local("src") but no WithLocal("src", dir) was given`}},
		{name: "Local in a bind mount without WithLocal", stage: alpine.Run("ls /src", mounts.Bind("/src", build.Local("ctx"))),
			opts: func() []build.SolveOption { return []build.SolveOption{build.WithLocal("src", dir)} },
			want: []string{`the graph uses Local("ctx") but no WithLocal("ctx", dir) was given`}},
		{name: "required secret without WithSecret", stage: alpine.Run("cat /run/secrets/tok", mounts.Secret("tok", mounts.Required())),
			opts: func() []build.SolveOption { return []build.SolveOption{build.WithSecret("other", nil)} },
			want: []string{`a step mounts the required secret "tok" but no WithSecret("tok", …) was given`}},
		{name: "required secret env without WithSecret", stage: alpine.Run("echo $TOKEN", mounts.Secret("tok", mounts.Env("TOKEN"), mounts.Required())),
			opts: func() []build.SolveOption { return nil },
			want: []string{`a step reads the required secret "tok" into $TOKEN but no WithSecret("tok", …) was given`}},
		{name: "required SSH without WithSSH", stage: alpine.Run("ssh-add -l", mounts.SSH(mounts.Required())),
			opts: func() []build.SolveOption { return nil },
			want: []string{`a step mounts the required SSH agent "default" but no WithSSH("default", …) was given`}},
		{name: "required SSH with another id", stage: alpine.Run("git fetch", mounts.SSH(mounts.ID("github"), mounts.Required())),
			opts: func() []build.SolveOption { return []build.SolveOption{build.WithSSH("default", "/tmp/agent.sock")} },
			want: []string{`required SSH agent "github" but no WithSSH("github", …)`}},
		{name: "every missing session input at once",
			stage: build.Local("a").Run("make",
				mounts.Secret("s1", mounts.Required()),
				mounts.SSH(mounts.Required()),
				mounts.Bind("/b", build.Local("b"))),
			opts: func() []build.SolveOption { return nil },
			want: []string{`Local("a")`, `Local("b")`, `secret "s1"`, `SSH agent "default"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup(t)
			}
			_, err := build.Solve(context.Background(), uNoBuilder{t}, tc.stage, tc.opts()...)
			uCheckMessage(t, err, tc.want)
		})
	}
}

func TestUnitSolveReportsEveryOptionError(t *testing.T) {
	_, err := build.Solve(context.Background(), uNoBuilder{t}, build.Image("alpine"),
		build.Push(),
		build.LocalDir(""),
		build.Platforms("??"),
		build.OnEvent(nil),
	)
	uCheckMessage(t, err, []string{"Push: no reference", "LocalDir: empty path", `Platforms("??")`, "OnEvent: nil func"})
}

func TestUnitSolveBuilderChecks(t *testing.T) {
	_, err := build.Solve(context.Background(), nil, build.Image("alpine"))
	uCheckMessage(t, err, []string{"build: Solve: nil builder"})

	// Option errors come first, even without a builder.
	_, err = build.Solve(context.Background(), nil, build.Image("alpine"), build.Push())
	uCheckMessage(t, err, []string{"Push: no reference"})

	empty := &uReachBuilder{}
	_, err = build.Solve(context.Background(), empty, build.Image("alpine"))
	uCheckMessage(t, err, []string{"the builder lists no platform; set one with Platforms"})
	if empty.acquired != 0 {
		t.Errorf("a builder with no platform was acquired")
	}
	_, err = build.Solve(context.Background(), empty, build.Image("alpine"), build.Platforms("linux/arm64"))
	if !errors.Is(err, errUReached) {
		t.Errorf("with Platforms: err = %v, want the builder reached", err)
	}
}

// The checks must not reject what is given: a graph whose session inputs
// are all provided reaches the builder, on the platform and key asked for.
func TestUnitSolveValidGraphReachesBuilder(t *testing.T) {
	dir := t.TempDir()
	s := build.Image("alpine").Run("make",
		mounts.Bind("/src", build.Local("src")),
		mounts.Secret("npmrc", mounts.Required()),
		mounts.Secret("tok", mounts.Env("TOKEN"), mounts.Required()),
		mounts.Secret("optional"), // optional: needs no WithSecret
		mounts.SSH(mounts.Required()),
	)
	b := &uReachBuilder{platforms: []ocispecs.Platform{{OS: "linux", Architecture: "amd64"}}}
	_, err := build.Solve(context.Background(), b, s,
		build.WithLocal("src", dir),
		build.WithSecret("npmrc", []byte("//registry/:_authToken=x")),
		build.WithSecret("tok", nil),
		build.WithSSH("default", uAgentSocket(t, dir)),
		build.Platforms("linux/arm64/v8"),
		build.Key("project-a"),
		build.Progress(io.Discard, "quiet"),
		build.OnEvent(func(build.Event) {}),
		build.CacheFrom(cache.Registry("registry.example.com/app:cache")),
		build.CacheTo(cache.Registry("registry.example.com/app:cache", cache.ModeMax)),
		build.OCITarball(filepath.Join(dir, "img.tar"), ""),
		build.DockerTarball(filepath.Join(dir, "docker.tar"), "app:1"),
		build.LocalDir(filepath.Join(dir, "out")),
		build.Push("registry.example.com/app:1"),
	)
	if !errors.Is(err, errUReached) {
		t.Fatalf("Solve = %v, want it to reach the builder", err)
	}
	if b.acquired != 1 {
		t.Errorf("Acquire called %d times, want 1", b.acquired)
	}
	if b.platform.OS != "linux" || b.platform.Architecture != "arm64" {
		t.Errorf("Acquire for %v, want linux/arm64", b.platform)
	}
	if b.key != "project-a" {
		t.Errorf("Acquire with key %q, want project-a", b.key)
	}
	if !strings.HasPrefix(err.Error(), "build: Solve: ") {
		t.Errorf("Acquire's error is not wrapped with the caller: %q", err)
	}

	b = &uReachBuilder{platforms: []ocispecs.Platform{{OS: "linux", Architecture: "arm", Variant: "v7"}, {OS: "linux", Architecture: "amd64"}}}
	build.Solve(context.Background(), b, build.Scratch())
	if b.platform.Architecture != "arm" || b.platform.Variant != "v7" {
		t.Errorf("without Platforms: Acquire for %v, want the builder's first platform, linux/arm/v7", b.platform)
	}
}

func TestUnitErrorsAsAndIs(t *testing.T) {
	ctx := context.Background()
	alpine := build.Image("alpine")

	t.Run("mounts.Error from Err", func(t *testing.T) {
		var me *mounts.Error
		if err := alpine.Run("make", mounts.Cache("cache")).Err(); !errors.As(err, &me) {
			t.Fatalf("errors.As(%v, *mounts.Error) = false", err)
		}
		if me.Kind != "cache" || me.Field != "target" || me.Value != "cache" {
			t.Errorf("mounts.Error = %+v, want the cache target \"cache\"", me)
		}
	})

	t.Run("mounts.Error from Solve", func(t *testing.T) {
		_, err := build.Solve(ctx, uNoBuilder{t}, alpine.Run("make", mounts.Bind("src", alpine)).Run("later"))
		var me *mounts.Error
		if !errors.As(err, &me) {
			t.Fatalf("errors.As(%v, *mounts.Error) = false", err)
		}
		if me.Kind != "bind" || me.Field != "target" || me.Value != "src" {
			t.Errorf("mounts.Error = %+v, want the bind target \"src\"", me)
		}
	})

	t.Run("mounts.Error from a raw llb state", func(t *testing.T) {
		// Here the mount itself poisons the step through llb's Async,
		// without Larder's checks.
		st := llb.Image("docker.io/library/alpine:latest").Run(llb.Shlex("make"), mounts.Tmpfs("tmp")).Root()
		_, err := build.Solve(ctx, uNoBuilder{t}, build.From(st))
		var me *mounts.Error
		if !errors.As(err, &me) {
			t.Fatalf("errors.As(%v, *mounts.Error) = false", err)
		}
		if me.Kind != "tmpfs" || me.Value != "tmp" {
			t.Errorf("mounts.Error = %+v, want the tmpfs target \"tmp\"", me)
		}
	})

	t.Run("cache.Error from Solve", func(t *testing.T) {
		_, err := build.Solve(ctx, uNoBuilder{t}, alpine, build.CacheTo(cache.Registry("bad ref!")))
		var ce *cache.Error
		if !errors.As(err, &ce) {
			t.Fatalf("errors.As(%v, *cache.Error) = false", err)
		}
		if ce.Backend != "registry" || ce.Option != "ref" || ce.Value != "bad ref!" {
			t.Errorf("cache.Error = %+v, want the registry ref \"bad ref!\"", ce)
		}
	})

	t.Run("fs.ErrNotExist from WithLocal", func(t *testing.T) {
		_, err := build.Solve(ctx, uNoBuilder{t}, alpine, build.WithLocal("src", filepath.Join(t.TempDir(), "missing")))
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("errors.Is(%v, fs.ErrNotExist) = false", err)
		}
	})

	t.Run("builder's error", func(t *testing.T) {
		b := &uReachBuilder{platforms: []ocispecs.Platform{{OS: "linux", Architecture: "amd64"}}}
		if _, err := build.Solve(ctx, b, alpine); !errors.Is(err, errUReached) {
			t.Errorf("errors.Is(%v, Acquire's error) = false", err)
		}
	})
}

// uAgentSocket listens on a unix socket in dir, as an SSH agent would, so
// that WithSSH finds it.
func uAgentSocket(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "agent.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return path
}
