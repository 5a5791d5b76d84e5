package build

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/client"
)

func TestEngineSocket(t *testing.T) {
	for _, c := range []struct{ host, path, err string }{
		{"unix:///var/run/docker.sock", "/var/run/docker.sock", ""},
		{"unix:///run/podman//podman.sock", "/run/podman/podman.sock", ""},
		{"", "", "empty address"},
		{"tcp://127.0.0.1:2375", "", "scheme tcp:// is not supported"},
		{"ssh://me@host", "", "scheme ssh:// is not supported"},
		{"/var/run/docker.sock", "", `did you mean "unix:///var/run/docker.sock"?`},
		{"docker.sock", "", "not a unix socket address"},
		{"unix://docker.sock", "", `socket path "docker.sock" is not absolute`},
		{"unix://", "", `socket path "" is not absolute`},
	} {
		path, err := engineSocket(c.host)
		switch {
		case c.err == "" && (err != nil || path != c.path):
			t.Errorf("engineSocket(%q) = %q, %v; want %q", c.host, path, err, c.path)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("engineSocket(%q) = %q, %v; want an error saying %q", c.host, path, err, c.err)
		}
	}
}

func TestEngineCandidates(t *testing.T) {
	hosts := func(cs []engineCandidate) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.host)
		}
		return out
	}
	t.Setenv("DOCKER_HOST", "")
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/1000")
	cs, fix, err := engineCandidates("")
	want := "unix:///var/run/docker.sock unix:///run/user/1000/podman/podman.sock unix:///run/podman/podman.sock"
	if err != nil || strings.Join(hosts(cs), " ") != want || !strings.Contains(fix, "set $DOCKER_HOST") {
		t.Errorf("by default: %v, %q, %v; want %s", hosts(cs), fix, err, want)
	}
	t.Setenv("XDG_RUNTIME_DIR", "")
	cs, _, _ = engineCandidates("")
	if got := strings.Join(hosts(cs), " "); got != "unix:///var/run/docker.sock unix:///run/podman/podman.sock" {
		t.Errorf("without $XDG_RUNTIME_DIR: %s", got)
	}
	t.Setenv("DOCKER_HOST", "unix:///tmp/d.sock")
	cs, fix, err = engineCandidates("")
	if err != nil || strings.Join(hosts(cs), " ") != "unix:///tmp/d.sock" || !strings.Contains(fix, "$DOCKER_HOST") {
		t.Errorf("with $DOCKER_HOST: %v, %q, %v", hosts(cs), fix, err)
	}
	cs, fix, err = engineCandidates("unix:///tmp/given.sock")
	if err != nil || strings.Join(hosts(cs), " ") != "unix:///tmp/given.sock" || !strings.Contains(fix, "LoadInto") {
		t.Errorf("with LoadInto and $DOCKER_HOST: %v, %q, %v", hosts(cs), fix, err)
	}
	t.Setenv("DOCKER_HOST", "tcp://127.0.0.1:2375")
	if _, _, err = engineCandidates(""); err == nil || !strings.Contains(err.Error(), `$DOCKER_HOST is "tcp://127.0.0.1:2375": scheme tcp:// is not supported`) ||
		!strings.Contains(err.Error(), "name the engine with LoadInto") {
		t.Errorf("with $DOCKER_HOST over tcp: %v", err)
	}
}

// Every mistake is reported by the option, before any engine or builder is
// contacted.
func TestLoadRejects(t *testing.T) {
	t.Setenv("DOCKER_HOST", "")
	for _, c := range []struct {
		opt  SolveOption
		want []string
	}{
		{Load(""), []string{"Load: empty reference", `such as "app:1.2"`}},
		{Load("Bad Ref"), []string{`Load("Bad Ref"): invalid reference format`, "want a reference such as app:1.2"}},
		{Load("App:1"), []string{`Load("App:1"): `, "must be lowercase", "want a reference such as app:1.2"}},
		{Load("app@sha256:" + strings.Repeat("a", 64)), []string{`Load("app@sha256:`, "a digest is not a tag", "want a reference such as app:1.2"}},
		{Load("app:1", nil), []string{`Load("app:1"): option 1 is nil (leave it out)`}},
		{Load("app:1", LoadInto("tcp://127.0.0.1:2375")), []string{`Load("app:1"): LoadInto("tcp://127.0.0.1:2375"): scheme tcp:// is not supported`, `want a unix socket address such as "unix:///var/run/docker.sock"`}},
		{Load("app:1", LoadInto("")), []string{`LoadInto(""): empty address`, "want a unix socket address"}},
		{Load("app:1", LoadInto("unix://run/docker.sock")), []string{`LoadInto("unix://run/docker.sock"): socket path "run/docker.sock" is not absolute`}},
		{Load("app:1", LoadInto("/run/docker.sock")), []string{`did you mean "unix:///run/docker.sock"?`}},
		{Load("app:1", LoadInto("unix:///nonexistent/larder/docker.sock")), []string{`Load("app:1"): no container engine answers at unix:///nonexistent/larder/docker.sock (LoadInto): no socket there`, "start the engine there, or name a running one with LoadInto"}},
	} {
		var o solveOptions
		err := c.opt(&o)
		if err == nil {
			t.Errorf("no error; want one saying %q", c.want)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v\ndoes not say %q", err, w)
			}
		}
		if len(o.exports) != 0 || o.imageOutput {
			t.Errorf("%v: the option added an export all the same", err)
		}
	}
}

// loadTestEngine serves an engine's API on a unix socket, with handler.
func loadTestEngine(t *testing.T, handler http.Handler) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ldu") // short: a socket's path has 108 bytes at most
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "engine.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler}
	go srv.Serve(l)
	t.Cleanup(func() {
		srv.Close()
		os.RemoveAll(dir)
	})
	return "unix://" + sock
}

func pingOK(mux *http.ServeMux) {
	mux.HandleFunc("GET /_ping", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "OK") })
}

func TestLoadStreamsIntoTheEngine(t *testing.T) {
	got := make(chan string, 1)
	mux := http.NewServeMux()
	pingOK(mux)
	mux.HandleFunc("POST /images/load", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- r.URL.RawQuery + " " + r.Header.Get("Content-Type") + " " + string(b)
		io.WriteString(w, `{"stream":"Loaded image: app:1\n"}`+"\n")
	})
	host := loadTestEngine(t, mux)

	var o solveOptions
	if err := Load("app:1", LoadInto(host))(&o); err != nil {
		t.Fatal(err)
	}
	if len(o.exports) != 1 || o.exports[0].Type != client.ExporterDocker || o.exports[0].Attrs["name"] != "app:1" ||
		o.exportFns[0] != "Load" || !o.imageOutput {
		t.Fatalf("Load added %+v, %v, image output %v", o.exports, o.exportFns, o.imageOutput)
	}
	w, err := o.exports[0].Output(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"tar", "ball"} {
		if _, err := io.WriteString(w, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("a second Close: %v", err)
	}
	if g := <-got; g != "quiet=1 application/x-tar tarball" {
		t.Errorf("the engine got %q", g)
	}
}

func TestLoadSurfacesTheEnginesError(t *testing.T) {
	for _, c := range []struct {
		name   string
		answer func(w http.ResponseWriter)
		want   string
	}{
		{"in the stream", func(w http.ResponseWriter) {
			io.WriteString(w, `{"stream":"Loading layer"}`+"\n"+`{"errorDetail":{"message":"no space left on device"},"error":"no space left on device"}`+"\n")
		}, "could not load the image: no space left on device"},
		{"as a status", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `{"cause":"bad","message":"payload does not match any of the supported image formats","response":500}`)
		}, "refused the image: 500 Internal Server Error: payload does not match any of the supported image formats"},
		{"as a broken stream", func(w http.ResponseWriter) { io.WriteString(w, `{"stream":`) }, "reading its answer"},
	} {
		t.Run(c.name, func(t *testing.T) {
			mux := http.NewServeMux()
			pingOK(mux)
			mux.HandleFunc("POST /images/load", func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				c.answer(w)
			})
			host := loadTestEngine(t, mux)
			e, err := newEngineAPI(host)
			if err != nil {
				t.Fatal(err)
			}
			w := e.loader(`Load("app:1")`)
			io.WriteString(w, "tarball")
			err = w.Close()
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), `Load("app:1"): the engine at `+host) {
				t.Errorf("Close: %v; want an error saying %q", err, c.want)
			}
		})
	}
}

// An engine that answers before it read the whole tarball makes the next
// write fail with its error, rather than wait.
func TestLoadWriteFailsOnceTheEngineAnswered(t *testing.T) {
	mux := http.NewServeMux()
	pingOK(mux)
	mux.HandleFunc("POST /images/load", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"message":"not a tarball"}`)
	})
	e, err := newEngineAPI(loadTestEngine(t, mux))
	if err != nil {
		t.Fatal(err)
	}
	w := e.loader(`Load("app:1")`)
	done := make(chan error, 1)
	go func() {
		chunk := make([]byte, 64<<10)
		for {
			if _, err := w.Write(chunk); err != nil {
				done <- err
				return
			}
		}
	}()
	select {
	case err := <-done:
		if !strings.Contains(err.Error(), "not a tarball") {
			t.Errorf("the write failed with %v; want the engine's error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("writes still wait, 10 s after the engine answered")
	}
	if err := w.Close(); err == nil || !strings.Contains(err.Error(), "not a tarball") {
		t.Errorf("Close: %v", err)
	}
}

func TestEngineStoresIndexes(t *testing.T) {
	for _, c := range []struct {
		info string
		want bool
	}{
		{`{"Driver":"overlay2","DriverStatus":[["Backing Filesystem","extfs"],["Supports d_type","true"]]}`, false},
		{`{"Driver":"overlayfs","DriverStatus":[["driver-type","io.containerd.snapshotter.v1"]]}`, true},
		{`{"Driver":"overlay"}`, false},
	} {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /info", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, c.info) })
		got, err := engineStoresIndexes(context.Background(), loadTestEngine(t, mux))
		if err != nil || got != c.want {
			t.Errorf("with /info %s: %v, %v; want %v", c.info, got, err, c.want)
		}
	}
	if _, err := engineStoresIndexes(context.Background(), "tcp://127.0.0.1:2375"); err == nil {
		t.Error("no error for a tcp address")
	}
}
