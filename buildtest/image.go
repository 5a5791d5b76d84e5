package buildtest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/buildkit/client/llb"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/mounts"
)

// Image is a stage that [Build] solved, with the solve options it was
// built with, so that commands can run in it and files can be read from it.
// An Image is immutable and safe for concurrent use by parallel tests.
type Image struct {
	b      build.Builder
	stage  build.Stage
	opts   []build.SolveOption
	result *build.Result
	shell  *shell // nil: the image's own /bin/sh
}

// shell is a shell mounted from another stage, set by Image.WithShell.
type shell struct {
	from build.Stage
	path string
}

// Build solves s on the test binary's [Builder] and returns the result. A
// failed build fails the test with what went wrong: for a failed command,
// the step, its command, its exit code and its last output lines. When no
// builder can be had, Build skips the test, or fails it when CI=true.
//
// opts are given to this solve and to every later solve of the image (its
// Run, RunWith, ReadFile and Export), so they should be session options:
// build.WithLocal, build.WithSecret, build.WithSSH, build.CacheFrom,
// build.Key, build.Progress and build.OnEvent. Outputs such as build.Push or
// build.LocalDir would be written again on each solve, and build.Platforms
// should name at most one platform, because an Image is one platform's
// filesystem. The default platform is the builder's.
//
// The solve exports nothing: the result stays in the builder's cache, so
// the solves that follow reuse it.
func Build(t testing.TB, s build.Stage, opts ...build.SolveOption) *Image {
	t.Helper()
	b := Builder(t)
	res, err := build.Solve(t.Context(), b, s, opts...)
	if err != nil {
		fail(t, "Build", "", err)
	}
	return &Image{b: b, stage: s, opts: slices.Clone(opts), result: res}
}

// Stage returns the stage the image was built from.
func (img *Image) Stage() build.Stage { return img.stage }

// Result returns what the build's solve returned: its report says which
// steps ran and which came from cache, for tests that check a build is
// cached.
func (img *Image) Result() *build.Result { return img.result }

// RunResult is what a command run in an image wrote and how it exited.
type RunResult struct {
	// Stdout and Stderr are everything the command wrote to each.
	Stdout, Stderr string
	// ExitCode is the command's exit status, as the shell reports it:
	// 128+n for a command killed by signal n, 127 for a command not found,
	// 126 for one that could not be executed.
	ExitCode int
}

// The directory a Run step writes its results to, and where the shell of
// WithShell is mounted.
const (
	resultDir  = "/.buildtest"
	shellMount = "/.buildtest-shell"
)

// The wrapper that runs the command: it runs "$@", the command's argv as
// given, so nothing in it is read by the shell again.
const wrapper = `"$@" >` + resultDir + `/stdout 2>` + resultDir + `/stderr; echo $? >` + resultDir + `/exit`

// resultDirStage holds resultDir, which a Run step copies in writable by
// every user (build.Chmod), so that the command's results are written
// whatever user the image runs as.
var resultDirStage = build.From(llb.Scratch().File(llb.Mkdir(resultDir, 0o777)))

// Run runs args in the image, as the image's user, in its working directory
// and with its environment, and returns what the command wrote and its exit
// code. args[0] is looked up in the image's PATH, and no argument is read by
// a shell. Run fails the test only when the step itself fails, as it does
// in an image without /bin/sh; a command that exits non-zero, or that is
// not found (exit code 127), is a result for the test to check.
//
// There is no container engine: Run is a build step on the image, so every
// BuildKit feature works in it (see [Image.RunWith]). The step is new each
// time, so the command always runs and never comes from cache, and it runs
// on a copy: the image is unchanged, and one Run does not see another's
// changes. The command's standard input is empty.
//
// The step is started by /bin/sh, which the image must have; for an image
// without a shell, see [Image.WithShell]. The paths /.buildtest and
// /.buildtest-shell are Run's own in the step: it keeps the command's
// results in the first and mounts WithShell's shell at the second.
func (img *Image) Run(t testing.TB, args ...string) RunResult {
	t.Helper()
	return img.RunWith(t, args)
}

// RunWith is [Image.Run] with options for the step: mounts and presets (a
// cache mount shows what earlier builds left in the cache, and what the
// command writes there stays for later ones), and raw llb options such as
// llb.AddEnv, llb.Dir, llb.User or llb.Network. They apply to this step
// only, which is new on every call, so nothing of it comes from cache; they
// do not change the image.
func (img *Image) RunWith(t testing.TB, args []string, opts ...llb.RunOption) RunResult {
	t.Helper()
	what := fmt.Sprintf("Run(%s)", formatArgs(args))
	if len(args) == 0 || args[0] == "" {
		t.Fatalf("buildtest: %s: empty command (give a program and its arguments, such as \"cat\", \"/etc/os-release\")", what)
	}
	sh := "/bin/sh"
	opts = slices.Clone(opts)
	if img.shell != nil {
		sh = path.Join(shellMount, img.shell.path)
		opts = append(opts, mounts.Bind(shellMount, img.shell.from))
	}
	// The nonce is a comment that makes the step new, so that it always
	// runs, also when parallel tests run the same command at once (BuildKit
	// runs identical steps of concurrent solves once).
	argv := append([]string{sh, "-c", wrapper + " # run " + nonce(), "sh"}, args...)
	ran := img.stage.Copy(resultDirStage, resultDir, resultDir, build.Chmod(0o777)).RunArgs(argv, opts...)
	hint := "(Run starts the command with the image's /bin/sh; for an image without one, see Image.WithShell)"
	if img.shell != nil {
		hint = fmt.Sprintf("(Run starts the command with %s of the stage given to WithShell, which must work from any directory)", img.shell.path)
	}
	dir := img.solveTo(t, build.Scratch().Copy(ran, resultDir, "/"), what, hint)
	defer os.RemoveAll(dir)

	var r RunResult
	var code string
	for _, f := range []struct {
		name string
		to   *string
	}{{"stdout", &r.Stdout}, {"stderr", &r.Stderr}, {"exit", &code}} {
		b, err := os.ReadFile(filepath.Join(dir, f.name))
		if err != nil {
			t.Fatalf("buildtest: %s: the step left no %s: %v", what, f.name, err)
		}
		*f.to = string(b)
	}
	n, err := strconv.Atoi(strings.TrimSpace(code))
	if err != nil {
		t.Fatalf("buildtest: %s: exit status %q: %v", what, code, err)
	}
	r.ExitCode = n
	return r
}

// WithShell returns a copy of img whose Run and RunWith start commands with
// the shell at path inside from, mounted read-only for the step, instead of
// the image's /bin/sh: for images without a shell, such as distroless ones
// or a scratch stage holding one program. The shell runs from where it is
// mounted, /.buildtest-shell, so it must be statically linked, and a link
// to it must be relative or a hard link: busybox's sh is all of these. Only
// its builtins are used. The image itself, and so the command, is
// unchanged.
func (img *Image) WithShell(from build.Stage, path string) *Image {
	c := *img
	c.shell = &shell{from: from, path: path}
	return &c
}

// ReadFile returns the content of the file at path in the image, following
// symbolic links. Paths are absolute, or relative to the image's root. A
// path that does not exist, or that is a directory, fails the test.
func (img *Image) ReadFile(t testing.TB, path string) []byte {
	t.Helper()
	return readFile(t, img.b, img.stage, path, img.opts)
}

// Export copies path from the image to a new temporary directory that is
// removed when the test ends, and returns the directory: a directory's
// contents, or a file under its own name. Paths are absolute, or relative to
// the image's root. A path that does not exist fails the test.
func (img *Image) Export(t testing.TB, path string) string {
	t.Helper()
	return export(t, img.b, img.stage, path, img.opts)
}

// ReadFile builds s on the test binary's [Builder] and returns the content
// of the file at path in it, following symbolic links.
// Paths are absolute, or relative to the root of s. opts are solve options
// as for [Build]. A failed build, or a path that does not exist or is a
// directory, fails the test.
func ReadFile(t testing.TB, s build.Stage, path string, opts ...build.SolveOption) []byte {
	t.Helper()
	return readFile(t, Builder(t), s, path, opts)
}

// Export builds s on the test binary's [Builder], copies path from it to a
// new temporary directory that is removed when the test ends, and returns
// the directory: a directory's contents, or a file under its own name. Paths are absolute, or relative to the root of s.
// opts are solve options as for [Build]. A failed build, or a path that
// does not exist, fails the test.
func Export(t testing.TB, s build.Stage, path string, opts ...build.SolveOption) string {
	t.Helper()
	return export(t, Builder(t), s, path, opts)
}

func readFile(t testing.TB, b build.Builder, s build.Stage, p string, opts []build.SolveOption) []byte {
	t.Helper()
	what := fmt.Sprintf("ReadFile(%q)", p)
	const name = "buildtest-file"
	img := &Image{b: b, opts: opts}
	dir := img.solveTo(t, build.Scratch().Copy(s, p, "/"+name), what, "")
	defer os.RemoveAll(dir)
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		if fi, serr := os.Stat(filepath.Join(dir, name)); serr == nil && fi.IsDir() {
			t.Fatalf("buildtest: %s: a directory (Export copies a directory)", what)
		}
		t.Fatalf("buildtest: %s: %v", what, err)
	}
	return data
}

func export(t testing.TB, b build.Builder, s build.Stage, p string, opts []build.SolveOption) string {
	t.Helper()
	img := &Image{b: b, opts: opts}
	dir := img.solveTo(t, build.Scratch().Copy(s, p, "/"), fmt.Sprintf("Export(%q)", p), "")
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// solveTo solves s with img's options and writes its filesystem to a new
// directory, which the caller removes.
func (img *Image) solveTo(t testing.TB, s build.Stage, what, hint string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "buildtest-")
	if err != nil {
		t.Fatalf("buildtest: %s: %v", what, err)
	}
	opts := append(slices.Clone(img.opts), build.LocalDir(dir))
	if _, err := build.Solve(t.Context(), img.b, s, opts...); err != nil {
		os.RemoveAll(dir)
		fail(t, what, hint, err)
	}
	return dir
}

// fail fails t with err, spelling out a failed step, and adds hint to
// that.
func fail(t testing.TB, what, hint string, err error) {
	t.Helper()
	var se *build.StepError
	if !errors.As(err, &se) {
		t.Fatalf("buildtest: %s: %v", what, err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "buildtest: %s: a step failed\n", what)
	if se.Step != strings.Join(se.Args, " ") {
		fmt.Fprintf(&b, "step:      %s\n", se.Step)
	}
	fmt.Fprintf(&b, "command:   %s\n", formatArgs(se.Args))
	fmt.Fprintf(&b, "exit code: %d\n", se.ExitCode)
	if len(se.Output) == 0 {
		b.WriteString("output:    (none)")
	} else {
		fmt.Fprintf(&b, "output (last %d lines):", len(se.Output))
		for _, l := range se.Output {
			b.WriteString("\n\t")
			b.WriteString(l)
		}
	}
	if hint != "" {
		b.WriteString("\n")
		b.WriteString(hint)
	}
	t.Fatal(b.String())
}

// formatArgs writes argv on one line, quoting with Go syntax the arguments
// that are empty or hold anything but letters, digits and -_./=:,+@%.
func formatArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a != "" && !strings.ContainsFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
		}) {
			q[i] = a
		} else {
			q[i] = strconv.Quote(a)
		}
	}
	return strings.Join(q, " ")
}

// nonce returns a string that is new on each call.
func nonce() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
