package buildtest_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/buildkit/client/llb"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/buildtest"
)

func TestRunCapturesStdoutStderrAndExitCode(t *testing.T) {
	t.Parallel()
	img := buildtest.Build(t, build.Image(busybox(t)))
	r := img.Run(t, "sh", "-c", "echo out; echo err >&2; echo more out; exit 3")
	want := buildtest.RunResult{Stdout: "out\nmore out\n", Stderr: "err\n", ExitCode: 3}
	if r != want {
		t.Fatalf("Run = %+v, want %+v", r, want)
	}
	if r := img.Run(t, "cat"); r != (buildtest.RunResult{}) {
		t.Fatalf("cat = %+v, want an empty standard input", r)
	}
}

// Arguments reach the command as given: no shell reads them again.
func TestRunPassesArgvUnchanged(t *testing.T) {
	t.Parallel()
	img := buildtest.Build(t, build.Image(busybox(t)))
	args := []string{"a b", "$HOME", "'quoted'", `"double"`, "*", "; exit 9", ""}
	r := img.Run(t, append([]string{"printf", "[%s]"}, args...)...)
	want := "[a b][$HOME]['quoted'][\"double\"][*][; exit 9][]"
	if r.Stdout != want || r.ExitCode != 0 {
		t.Fatalf("Run = %+v, want stdout %q", r, want)
	}
}

func TestRunCommandNotFound(t *testing.T) {
	t.Parallel()
	img := buildtest.Build(t, build.Image(busybox(t)))
	r := img.Run(t, "no-such-command", "x")
	if r.ExitCode != 127 || !strings.Contains(r.Stderr, "no-such-command") || r.Stdout != "" {
		t.Fatalf("Run = %+v, want exit code 127 and the shell's message on stderr", r)
	}
}

// Each Run runs, and on a copy of the image: what one changes, the next
// does not see.
func TestRunAlwaysRunsOnACopy(t *testing.T) {
	t.Parallel()
	img := buildtest.Build(t, build.Image(busybox(t)))
	first := img.Run(t, "sh", "-c", "cat /proc/sys/kernel/random/uuid; touch /made; rm /etc/passwd")
	second := img.Run(t, "sh", "-c", "cat /proc/sys/kernel/random/uuid; ls /made; test -e /etc/passwd")
	if first.ExitCode != 0 {
		t.Fatalf("first Run = %+v", first)
	}
	if uuid, _, _ := strings.Cut(second.Stdout, "\n"); uuid+"\n" == first.Stdout {
		t.Errorf("both Runs printed %q: the second came from cache", first.Stdout)
	}
	if second.ExitCode != 0 || !strings.Contains(second.Stderr, "/made") {
		t.Errorf("second Run = %+v, want /made missing and /etc/passwd present", second)
	}
	if got := string(img.ReadFile(t, "/etc/passwd")); !strings.HasPrefix(got, "root:") {
		t.Errorf("the image's /etc/passwd is %q after Run removed it in its copy", got)
	}
}

// A command runs as the image's user, in its directory, with its
// environment; the results are written whatever the user.
func TestRunUsesTheImagesUserDirAndEnv(t *testing.T) {
	t.Parallel()
	s := build.Image(busybox(t)).Env("GREETING", "hi").Dir("/work").User("nobody")
	img := buildtest.Build(t, s)
	r := img.Run(t, "sh", "-c", `echo "$(id -u) $(pwd) $GREETING"`)
	if r != (buildtest.RunResult{Stdout: "65534 /work hi\n"}) {
		t.Fatalf("Run = %+v, want uid 65534 in /work with GREETING=hi", r)
	}
	r = img.RunWith(t, []string{"sh", "-c", `echo "$(id -u) $(pwd) $GREETING"`},
		llb.User("root"), llb.Dir("/tmp"), llb.AddEnv("GREETING", "hello"))
	if r.Stdout != "0 /tmp hello\n" {
		t.Fatalf("RunWith(User, Dir, AddEnv) = %+v", r)
	}
}

// An image without a shell runs commands with a shell from another stage.
func TestWithShellRunsInAnImageWithoutShell(t *testing.T) {
	t.Parallel()
	bb := build.Image(busybox(t))
	// One program and nothing else: no /bin/sh, no /etc. (busybox runs
	// the applet its file is named after.)
	s := build.Scratch().Copy(bb, "/bin/busybox", "/app/ls")
	img := buildtest.Build(t, s)

	msg := record(t, func(tb testing.TB) { img.Run(tb, "/app/ls", "/app") })
	if !strings.Contains(msg, "WithShell") {
		t.Errorf("Run in an image without /bin/sh failed with %q, want a hint to WithShell", msg)
	}
	t.Logf("without a shell, Run fails with:\n%s", msg)

	withShell := img.WithShell(bb, "/bin/sh")
	if r := withShell.Run(t, "/app/ls", "/app"); r != (buildtest.RunResult{Stdout: "ls\n"}) {
		t.Errorf("ls /app with a shell from busybox = %+v", r)
	}
	if r := withShell.Run(t, "/app/ls", "/bin"); r.ExitCode == 0 || !strings.Contains(r.Stderr, "/bin") {
		t.Errorf("ls /bin with a shell from busybox = %+v, want it missing from the image", r)
	}
}

func TestReadFileAndExport(t *testing.T) {
	t.Parallel()
	s := build.Image(busybox(t)).Run("mkdir -p /out/sub && echo one > /out/a && echo two > /out/sub/b && ln -s a /out/link")
	if got := string(buildtest.ReadFile(t, s, "/out/a")); got != "one\n" {
		t.Errorf("ReadFile(/out/a) = %q", got)
	}
	if got := string(buildtest.ReadFile(t, s, "out/link")); got != "one\n" {
		t.Errorf("ReadFile(out/link) = %q, want the link's target", got)
	}
	dir := buildtest.Export(t, s, "/out")
	if b, err := os.ReadFile(filepath.Join(dir, "sub", "b")); err != nil || string(b) != "two\n" {
		t.Errorf("Export(/out): sub/b = %q, %v", b, err)
	}
	dir = buildtest.Export(t, s, "/out/a")
	if b, err := os.ReadFile(filepath.Join(dir, "a")); err != nil || string(b) != "one\n" {
		t.Errorf("Export(/out/a): a = %q, %v", b, err)
	}

	img := buildtest.Build(t, s)
	if got := string(img.ReadFile(t, "/out/sub/b")); got != "two\n" {
		t.Errorf("Image.ReadFile = %q", got)
	}
	if entries, _ := os.ReadDir(img.Export(t, "/out/sub")); len(entries) != 1 || entries[0].Name() != "b" {
		t.Errorf("Image.Export(/out/sub) holds %v", entries)
	}

	if msg := record(t, func(tb testing.TB) { img.ReadFile(tb, "/out") }); !strings.Contains(msg, "directory") {
		t.Errorf("ReadFile of a directory failed with %q", msg)
	}
	msg := record(t, func(tb testing.TB) { img.ReadFile(tb, "/nope") })
	if !strings.Contains(msg, "nope") {
		t.Errorf("ReadFile of a missing file failed with %q", msg)
	}
	t.Logf("ReadFile of a missing file fails with:\n%s", msg)
}

// A failed build fails the test with the step's command, exit code and
// output.
func TestBuildFailureReportsTheStep(t *testing.T) {
	t.Parallel()
	stamp := newStamp()
	s := build.Image(busybox(t)).Run("echo compiling " + stamp + "; echo 'cc: error: no input files' >&2; exit 3")
	msg := record(t, func(tb testing.TB) { buildtest.Build(tb, s) })
	for _, want := range []string{"exit code: 3", "cc: error: no input files", "compiling " + stamp, `/bin/sh -c "echo compiling`} {
		if !strings.Contains(msg, want) {
			t.Errorf("failure message lacks %q:\n%s", want, msg)
		}
	}
	t.Logf("a failed build fails with:\n%s", msg)
}

// Solve options given to Build apply to the image's later solves: here, the
// local directory its stage needs.
func TestBuildOptionsApplyToLaterSolves(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "input.txt"), []byte("from the client\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := build.Image(busybox(t)).Copy(build.Local("src"), "input.txt", "/data/")
	img := buildtest.Build(t, s, build.WithLocal("src", src))
	if got := string(img.ReadFile(t, "/data/input.txt")); got != "from the client\n" {
		t.Errorf("ReadFile = %q", got)
	}
	if r := img.Run(t, "cat", "/data/input.txt"); r.Stdout != "from the client\n" {
		t.Errorf("Run = %+v", r)
	}
}

// A second build of the same stage comes from the shared builder's cache.
func TestSecondBuildIsCached(t *testing.T) {
	t.Parallel()
	s := build.Image(busybox(t)).Run("echo " + newStamp() + " > /stamp").Run("echo done")
	first := buildtest.Build(t, s).Result().Report
	second := buildtest.Build(t, s).Result().Report
	if first.RanSteps() != 2 || second.RanSteps() != 0 || second.CachedSteps() != 2 {
		t.Fatalf("first build:\n%s\nsecond build:\n%s\nwant 2 steps run, then 2 from cache", first, second)
	}
}
