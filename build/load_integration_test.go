package build_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/internal/testenv"
	"github.com/moby/buildkit/client"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// Load puts the image into a real Docker engine, tagged: the engine runs
// it, with the image's command.
func TestLoadIntoDocker(t *testing.T) {
	env, bb := setup(t)
	host := testenv.Docker(t)
	ctx := ctxT(t)
	tag := "larder-load-test:" + nonce()
	s := build.Image(bb).Run("echo hello from larder > /msg").Cmd("cat", "/msg")

	res, err := build.Solve(ctx, env.Builder, s, build.Load(tag, build.LoadInto(host)))
	if err != nil {
		t.Fatalf("solve: %v", err)
	}
	if res.Digest == "" {
		t.Error("the result has no digest")
	}
	docker := func(args ...string) string {
		t.Helper()
		out, err := exec.CommandContext(ctx, "docker", append([]string{"--host", host}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("docker %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if tags := docker("image", "inspect", "--format", "{{json .RepoTags}}", tag); !strings.Contains(tags, `"`+tag+`"`) {
		t.Errorf("the engine's image is tagged %s, want %s", tags, tag)
	}
	if got := docker("run", "--rm", "--network", "none", tag); got != "hello from larder" {
		t.Errorf("the loaded image printed %q, want %q", got, "hello from larder")
	}

	// Debian's Docker keeps one platform's image per tag: two platforms
	// fail before the builder is contacted, naming the store's limit.
	_, err = build.Solve(ctx, &loadRefuser{t: t}, s, build.Platforms("linux/amd64", "linux/arm64"), build.Load(tag, build.LoadInto(host)))
	if err == nil || !strings.Contains(err.Error(), "keeps one platform's image per tag (Docker's classic image store), and 2 platforms are built") {
		t.Errorf("two platforms into the classic store: %v", err)
	}
}

// An engine that refuses the image fails the solve with its message, after
// it was sent the whole tarball.
func TestLoadReportsTheEnginesRefusal(t *testing.T) {
	env, bb := setup(t)
	const refusal = "write /var/lib/docker/tmp/docker-import-1/layer.tar: no space left on device"
	eng := startLoadEngine(t, func(w http.ResponseWriter, body []byte) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"errorDetail":{"message":"`+refusal+`"},"error":"`+refusal+`"}`+"\n")
	})
	s := build.Image(bb).Run("echo refused > /msg")
	_, err := build.Solve(ctxT(t), env.Builder, s, build.Load("larder-load-refused:"+nonce(), build.LoadInto(eng.host)))
	if err == nil {
		t.Fatal("the solve succeeded, though the engine refused the image")
	}
	if !strings.Contains(err.Error(), refusal) || !strings.Contains(err.Error(), "Load(") {
		t.Errorf("the error does not give Load and the engine's message: %v", err)
	}
	names := eng.entries()
	if !slices.Contains(names, "manifest.json") {
		t.Errorf("the engine got no docker-load tarball: its entries are %v", names)
	}
}

// Without an engine at the socket, Load fails before the builder is
// contacted, naming the socket.
func TestLoadWithoutEngineFailsBeforeTheBuilder(t *testing.T) {
	dir, err := os.MkdirTemp("", "ldl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "docker.sock")
	b := &loadRefuser{t: t}

	_, err = build.Solve(context.Background(), b, build.Image("busybox"), build.Load("app:1", build.LoadInto("unix://"+sock)))
	if err == nil {
		t.Fatal("Solve succeeded without an engine")
	}
	for _, want := range []string{`build: Solve: Load("app:1"): `, sock, "start the engine there"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}

	// The same through $DOCKER_HOST, and a $DOCKER_HOST that is not a unix
	// socket.
	t.Setenv("DOCKER_HOST", "unix://"+sock)
	_, err = build.Solve(context.Background(), b, build.Image("busybox"), build.Load("app:1"))
	if err == nil || !strings.Contains(err.Error(), sock) || !strings.Contains(err.Error(), "$DOCKER_HOST") {
		t.Errorf("with $DOCKER_HOST at no engine, Solve says: %v", err)
	}
	t.Setenv("DOCKER_HOST", "tcp://127.0.0.1:2375")
	_, err = build.Solve(context.Background(), b, build.Image("busybox"), build.Load("app:1"))
	if err == nil || !strings.Contains(err.Error(), `$DOCKER_HOST is "tcp://127.0.0.1:2375"`) || !strings.Contains(err.Error(), "unix socket only") {
		t.Errorf("with $DOCKER_HOST over tcp, Solve says: %v", err)
	}
}

// loadRefuser is a builder that fails the test when it is contacted.
type loadRefuser struct{ t *testing.T }

func (b *loadRefuser) Platforms() []ocispecs.Platform {
	return []ocispecs.Platform{{OS: "linux", Architecture: "amd64"}}
}

func (b *loadRefuser) Acquire(context.Context, ocispecs.Platform, string) (*client.Client, string, func(error), error) {
	b.t.Error("the builder was contacted")
	return nil, "", nil, errors.New("loadRefuser: contacted")
}

// loadEngine is a stand-in for an engine's API on a unix socket: it
// answers /_ping, and /images/load with answer, once it has read the
// tarball.
type loadEngine struct {
	host string
	mu   sync.Mutex
	tars [][]byte
}

func startLoadEngine(t *testing.T, answer func(w http.ResponseWriter, body []byte)) *loadEngine {
	t.Helper()
	dir, err := os.MkdirTemp("", "lde") // short: a socket's path has 108 bytes at most
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "engine.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	e := &loadEngine{host: "unix://" + sock}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_ping", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "OK") })
	mux.HandleFunc("POST /images/load", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, `{"message":"reading the body: `+err.Error()+`"}`, http.StatusInternalServerError)
			return
		}
		e.mu.Lock()
		e.tars = append(e.tars, body)
		e.mu.Unlock()
		answer(w, body)
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(l)
	t.Cleanup(func() {
		srv.Close()
		os.RemoveAll(dir)
	})
	return e
}

// entries lists the files of the tarballs the engine was sent.
func (e *loadEngine) entries() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var names []string
	for _, b := range e.tars {
		tr := tar.NewReader(bytes.NewReader(b))
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			names = append(names, h.Name)
		}
	}
	return names
}
