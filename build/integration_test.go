package build_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/moby/buildkit/solver/errdefs"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/cache"
	"github.com/larder-build/larder/internal/testenv"
	"github.com/larder-build/larder/mounts"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// setup returns the shared environment and its busybox reference.
func setup(t *testing.T) (*testenv.Env, string) {
	t.Helper()
	env := testenv.Get(t)
	ref, err := env.Busybox(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return env, ref
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// solveDir solves s and exports its filesystem to a new directory.
func solveDir(t *testing.T, env *testenv.Env, s build.Stage, opts ...build.SolveOption) (string, *build.Result) {
	t.Helper()
	dir := t.TempDir()
	res, err := build.Solve(ctxT(t), env.Builder, s, append(opts, build.LocalDir(dir))...)
	if err != nil {
		t.Fatalf("solve: %v", err)
	}
	return dir, res
}

// nonce makes a step's command unique to this run, so it is not cached.
func nonce() string { return fmt.Sprint(time.Now().UnixNano()) }

func TestCacheMountKeepsContentsAcrossSolves(t *testing.T) {
	env, bb := setup(t)
	n := nonce()
	m := mounts.Cache("/c", mounts.ID("keep-"+n))
	build1 := build.Image(bb).Run("echo one > /c/file", m)
	solveDir(t, env, build1)
	dir, _ := solveDir(t, env, build.Image(bb).Run("cat /c/file > /seen", m))
	if got := testenv.ReadFile(t, dir, "seen"); got != "one\n" {
		t.Fatalf("second solve read %q from the cache mount, want %q", got, "one\n")
	}
	// A cache mount is not part of the image.
	if _, err := os.Stat(filepath.Join(dir, "c", "file")); err == nil {
		t.Error("the cache mount's file is in the exported filesystem")
	}
}

func TestCacheMountIDsAreSeparate(t *testing.T) {
	env, bb := setup(t)
	n := nonce()
	solveDir(t, env, build.Image(bb).Run("echo x > /c/only-in-a", mounts.Cache("/c", mounts.ID("a-"+n))))
	dir, _ := solveDir(t, env, build.Image(bb).Run("ls -A /c > /listing", mounts.Cache("/c", mounts.ID("b-"+n))))
	if got := testenv.ReadFile(t, dir, "listing"); got != "" {
		t.Fatalf("cache id b sees %q, want an empty cache", got)
	}
}

func TestCacheMountOwnerAndMode(t *testing.T) {
	env, bb := setup(t)
	m := mounts.Cache("/c", mounts.ID("owned-"+nonce()), mounts.Owner(1000, 1001), mounts.Mode(0o750))
	dir, _ := solveDir(t, env, build.Image(bb).Run("stat -c '%u:%g %a' /c > /stat; touch /c/w", m))
	if got := testenv.ReadFile(t, dir, "stat"); got != "1000:1001 750\n" {
		t.Fatalf("cache mount is %q, want 1000:1001 750", got)
	}
}

// Two concurrent solves share a locked cache mount: each step appends a
// start line, waits, and appends an end line. Locked sharing must keep the
// pairs together; the steps' own record shows it.
func TestLockedCacheMountSerializesSolves(t *testing.T) {
	env, bb := setup(t)
	n := nonce()
	m := mounts.Cache("/c", mounts.ID("locked-"+n), mounts.Sharing(mounts.Locked))
	var wg sync.WaitGroup
	dirs := make([]string, 2)
	for i, who := range []string{"A", "B"} {
		dirs[i] = t.TempDir()
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := build.Image(bb).Run(fmt.Sprintf("echo start-%s >> /c/log; sleep 2; echo end-%s >> /c/log; cp /c/log /log # %s", who, who, n), m)
			if _, err := build.Solve(ctxT(t), env.Builder, s, build.LocalDir(dirs[i])); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	var full string
	for _, d := range dirs {
		if l := testenv.ReadFile(t, d, "log"); strings.Count(l, "\n") == 4 {
			full = l
		}
	}
	if full != "start-A\nend-A\nstart-B\nend-B\n" && full != "start-B\nend-B\nstart-A\nend-A\n" {
		t.Fatalf("log of the later step is %q, want one step's start and end before the other's", full)
	}
}

func TestBindMountIsVisibleOnlyDuringItsStep(t *testing.T) {
	env, bb := setup(t)
	data := build.Image(bb).Run("mkdir /data && echo bound > /data/x # " + nonce())
	s := build.Image(bb).
		Run("cat /mnt/data/x > /seen; touch /mnt/data/written 2>/dev/null && echo rw > /rw || echo ro > /rw",
			mounts.Bind("/mnt", data)).
		Run("ls -A /mnt > /next 2>&1 || true")
	dir, _ := solveDir(t, env, s)
	if got := testenv.ReadFile(t, dir, "seen"); got != "bound\n" {
		t.Errorf("step read %q through the bind mount, want bound", got)
	}
	if got := testenv.ReadFile(t, dir, "rw"); got != "ro\n" {
		t.Errorf("bind mount is %q, want read-only by default", got)
	}
	if got := testenv.ReadFile(t, dir, "next"); strings.Contains(got, "data") {
		t.Errorf("the next step sees the bind mount's contents: %q", got)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "mnt")); len(entries) > 0 {
		t.Errorf("the image holds the bind mount's contents: %v", entries)
	}
}

func TestBindMountOfLocalDirectory(t *testing.T) {
	env, bb := setup(t)
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "main.c"), []byte("int main(){return 0;}\n"), 0o644)
	s := build.Image(bb).Run("wc -c < /src/main.c > /size", mounts.Bind("/src", build.Local("src")))
	dir, _ := solveDir(t, env, s, build.WithLocal("src", src))
	if got := strings.TrimSpace(testenv.ReadFile(t, dir, "size")); got != "22" {
		t.Fatalf("size of the bound local file = %q, want 22", got)
	}
}

// A secret is readable in its step and found nowhere else: not in the
// definition, the pushed image's layers or config, nor the progress output.
func TestSecretDoesNotLeak(t *testing.T) {
	env, bb := setup(t)
	secret := []byte("larder-secret-" + nonce())
	sum := sha256.Sum256(secret)
	s := build.Image(bb).
		Run("sha256sum /run/secrets/token | cut -d' ' -f1 > /file-hash", mounts.Secret("token", mounts.Required())).
		Run(`printf %s "$TOKEN" | sha256sum | cut -d' ' -f1 > /env-hash`, mounts.Secret("token", mounts.Env("TOKEN")))
	ref := env.Registry + "/test/secret:" + nonce()
	var progress bytes.Buffer
	cacheDir := t.TempDir()
	res, err := build.Solve(ctxT(t), env.Builder, s, build.WithSecret("token", secret), build.Push(ref),
		build.Progress(&progress, "plain"), build.CacheTo(cache.Local(cacheDir, cache.ModeMax)))
	if err != nil {
		t.Fatal(err)
	}
	want := hex.EncodeToString(sum[:]) + "\n"
	img := testenv.Pull(t, ref)
	files := testenv.ImageFiles(t, img)
	if got := files["file-hash"]; got != want {
		t.Errorf("secret file in the step hashed to %q, want %q", got, want)
	}
	if got := files["env-hash"]; got != want {
		t.Errorf("secret env in the step hashed to %q, want %q", got, want)
	}
	def, err := s.Marshal(context.Background(), "linux/amd64")
	if err != nil {
		t.Fatal(err)
	}
	for _, dt := range def.Def {
		if bytes.Contains(dt, secret) {
			t.Error("the secret is in the marshalled definition")
		}
	}
	layers, _ := img.Layers()
	for i, l := range layers {
		rc, _ := l.Uncompressed()
		b, _ := io.ReadAll(rc)
		rc.Close()
		if bytes.Contains(b, secret) {
			t.Errorf("the secret is in layer %d", i)
		}
	}
	cfg, _ := img.RawConfigFile()
	if bytes.Contains(cfg, secret) {
		t.Error("the secret is in the image config")
	}
	if bytes.Contains(progress.Bytes(), secret) {
		t.Error("the secret is in the progress output")
	}
	// Nor in the cache export: every blob, uncompressed where it is a layer.
	blobs, _ := filepath.Glob(filepath.Join(cacheDir, "blobs", "sha256", "*"))
	if len(blobs) == 0 {
		t.Fatal("the cache export wrote no blob")
	}
	for _, path := range blobs {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if zr, err := gzip.NewReader(bytes.NewReader(b)); err == nil {
			if ub, err := io.ReadAll(zr); err == nil {
				b = ub
			}
		}
		if bytes.Contains(b, secret) {
			t.Errorf("the secret is in the cache export's blob %s", filepath.Base(path))
		}
	}
	if res.Digest == "" {
		t.Error("no digest for a pushed image")
	}
}

func TestFailedStepIsTypedError(t *testing.T) {
	env, bb := setup(t)
	s := build.Image(bb).Run("echo building " + nonce() + "; echo 'cc: error: no such file' >&2; exit 3")
	_, err := build.Solve(ctxT(t), env.Builder, s)
	var se *build.StepError
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T) is not a *build.StepError", err, err)
	}
	if se.ExitCode != 3 {
		t.Errorf("exit code %d, want 3", se.ExitCode)
	}
	if len(se.Args) != 3 || se.Args[0] != "/bin/sh" {
		t.Errorf("args %q, want the shell command", se.Args)
	}
	if out := strings.Join(se.Output, "\n"); !strings.Contains(out, "cc: error: no such file") || !strings.Contains(out, "building") {
		t.Errorf("output tail %q lacks the step's output", out)
	}
	var vertexErr *errdefs.VertexError
	if !errors.As(err, &vertexErr) {
		t.Error("errors.As does not reach BuildKit's *errdefs.VertexError")
	}
	if !strings.Contains(err.Error(), "exit code 3") || !strings.Contains(err.Error(), "cc: error") {
		t.Errorf("message %q lacks the exit code or output", err)
	}
}

// The image pushed carries the stage's and the base image's configuration,
// and runs the files it was built with.
func TestPushedImageReadsBackAndRuns(t *testing.T) {
	env, bb := setup(t)
	// A base image whose config sets an env var, to see that stages inherit it.
	baseRef := env.Registry + "/test/base:withenv"
	base := testenv.Pull(t, bb)
	cf, _ := base.ConfigFile()
	cf = cf.DeepCopy()
	cf.Config.Env = append(cf.Config.Env, "FROM_BASE=yes")
	base, _ = mutate.ConfigFile(base, cf)
	push(t, baseRef, base)

	n := nonce()
	s := build.Image(baseRef).
		Env("GREETING", "hello").
		Dir("/app").
		Run("echo \"$GREETING $FROM_BASE "+n+"\" > message").
		Cmd("cat", "/app/message").
		Label("org.example.built-by", "larder")
	ref := env.Registry + "/test/app:" + n
	res, err := build.Solve(ctxT(t), env.Builder, s, build.Push(ref, ref+"-alias"))
	if err != nil {
		t.Fatal(err)
	}
	img := testenv.Pull(t, ref)
	d, _ := img.Digest()
	if d.String() != res.Digest.String() {
		t.Errorf("pushed digest %s, result says %s", d, res.Digest)
	}
	cfg, _ := img.ConfigFile()
	env2 := strings.Join(cfg.Config.Env, " ")
	for _, want := range []string{"GREETING=hello", "FROM_BASE=yes", "PATH="} {
		if !strings.Contains(env2, want) {
			t.Errorf("image env %q lacks %s", env2, want)
		}
	}
	if cfg.Config.WorkingDir != "/app" || strings.Join(cfg.Config.Cmd, " ") != "cat /app/message" || cfg.Config.Labels["org.example.built-by"] != "larder" {
		t.Errorf("image config: dir %q cmd %q labels %v", cfg.Config.WorkingDir, cfg.Config.Cmd, cfg.Config.Labels)
	}
	if got := testenv.ImageFiles(t, img)["app/message"]; got != "hello yes "+n+"\n" {
		t.Errorf("/app/message = %q", got)
	}
	testenv.Pull(t, ref+"-alias")
	// Run the pushed image's own file in a new build.
	dir, _ := solveDir(t, env, build.Image(ref).Run("cp message /copy"))
	if got := testenv.ReadFile(t, dir, "copy"); got != "hello yes "+n+"\n" {
		t.Errorf("running the pushed image read %q", got)
	}
}

func TestTarballAndLocalOutputs(t *testing.T) {
	env, bb := setup(t)
	n := nonce()
	s := build.Image(bb).Run("echo " + n + " > /stamp")
	out := t.TempDir()
	ociPath, dockerPath, localDir := filepath.Join(out, "oci.tar"), filepath.Join(out, "docker.tar"), filepath.Join(out, "fs")
	_, err := build.Solve(ctxT(t), env.Builder, s,
		build.OCITarball(ociPath, ""), build.DockerTarball(dockerPath, "larder.test/app:"+n), build.LocalDir(localDir))
	if err != nil {
		t.Fatal(err)
	}
	if got := testenv.ReadFile(t, localDir, "stamp"); got != n+"\n" {
		t.Errorf("local export stamp = %q", got)
	}
	tag, _ := name.NewTag("larder.test/app:" + n)
	dimg, err := tarball.ImageFromPath(dockerPath, &tag)
	if err != nil {
		t.Fatalf("docker tarball does not load: %v", err)
	}
	if got := testenv.ImageFiles(t, dimg)["stamp"]; got != n+"\n" {
		t.Errorf("docker tarball stamp = %q", got)
	}
	ldir := t.TempDir()
	untar(t, ociPath, ldir)
	idx, err := layout.ImageIndexFromPath(ldir)
	if err != nil {
		t.Fatalf("OCI tarball is not an OCI layout: %v", err)
	}
	im, _ := idx.IndexManifest()
	if len(im.Manifests) != 1 {
		t.Fatalf("OCI layout has %d manifests, want 1", len(im.Manifests))
	}
	oimg, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	if got := testenv.ImageFiles(t, oimg)["stamp"]; got != n+"\n" {
		t.Errorf("OCI tarball stamp = %q", got)
	}
}

// A tarball takes its path only when the solve succeeds: a failed solve
// leaves the earlier file, and no temporary one.
func TestFailedSolveKeepsTheEarlierTarball(t *testing.T) {
	env, bb := setup(t)
	out := t.TempDir()
	path := filepath.Join(out, "app.tar")
	if err := os.WriteFile(path, []byte("earlier"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := build.Image(bb).Run("echo " + nonce() + " > /stamp")
	// Nothing listens on port 1: the push fails, after or while the
	// tarball is written.
	_, err := build.Solve(ctxT(t), env.Builder, s, build.OCITarball(path, ""), build.Push("127.0.0.1:1/larder/nowhere:1"))
	if err == nil {
		t.Fatal("Solve pushed to 127.0.0.1:1")
	}
	if got := testenv.ReadFile(t, out, "app.tar"); got != "earlier" {
		t.Errorf("after a failed Solve, the tarball's path holds %d bytes, want the earlier file", len(got))
	}
	if entries, _ := os.ReadDir(out); len(entries) != 1 {
		t.Errorf("after a failed Solve, the directory holds %v, want app.tar alone", entries)
	}
	if _, err := build.Solve(ctxT(t), env.Builder, s, build.OCITarball(path, "")); err != nil {
		t.Fatal(err)
	}
	if got := testenv.ReadFile(t, out, "app.tar"); got == "earlier" {
		t.Error("a Solve that succeeded left the earlier file")
	}
	if entries, _ := os.ReadDir(out); len(entries) != 1 {
		t.Errorf("after a Solve, the directory holds %v, want app.tar alone", entries)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("the tarball: %v, %v; want mode 0644", fi, err)
	}
}

func TestReportAndProgress(t *testing.T) {
	env, bb := setup(t)
	s := build.Image(bb).Run("echo first " + nonce()).Run("echo second")
	var plain, raw bytes.Buffer
	var mu sync.Mutex
	kinds := map[build.EventKind]int{}
	res, err := build.Solve(ctxT(t), env.Builder, s,
		build.Progress(&plain, "plain"), build.Progress(&raw, "rawjson"),
		build.OnEvent(func(e build.Event) { mu.Lock(); kinds[e.Kind]++; mu.Unlock() }))
	if err != nil {
		t.Fatal(err)
	}
	if res.Report.RanSteps() != 2 {
		t.Errorf("first solve ran %d steps, want 2 (the two runs):\n%s", res.Report.RanSteps(), res.Report)
	}
	if !strings.Contains(plain.String(), "echo second") {
		t.Errorf("plain progress lacks the step: %q", plain.String())
	}
	if err := json.NewDecoder(&raw).Decode(new(map[string]any)); err != nil {
		t.Errorf("rawjson progress is not JSON: %v", err)
	}
	if kinds[build.StepDone] == 0 || kinds[build.StepLog] == 0 {
		t.Errorf("events %v lack done or log events", kinds)
	}
	res, err = build.Solve(ctxT(t), env.Builder, s)
	if err != nil {
		t.Fatal(err)
	}
	if res.Report.RanSteps() != 0 || res.Report.CachedSteps() != 2 {
		t.Errorf("an unchanged solve should be all cached:\n%s", res.Report)
	}
}

func push(t *testing.T, ref string, img v1.Image) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := ggcrremote.Write(r, img); err != nil {
		t.Fatal(err)
	}
}

func untar(t *testing.T, path, dir string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			os.MkdirAll(p, 0o755)
		case tar.TypeReg:
			os.MkdirAll(filepath.Dir(p), 0o755)
			b, _ := io.ReadAll(tr)
			os.WriteFile(p, b, 0o644)
		}
	}
}
