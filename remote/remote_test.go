package remote_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/internal/testenv"
	"github.com/larder-build/larder/remote"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// Both a single builder and a fleet are what build.Solve runs on.
var (
	_ build.Builder = (*remote.Fleet)(nil)
	_ build.Builder = (*remote.Builder)(nil)
)

func busybox(t *testing.T, env *testenv.Env) string {
	t.Helper()
	ref, err := env.Busybox(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// solveTo solves st on b with opts and returns the directory the result's
// filesystem was written to.
func solveTo(ctx context.Context, t *testing.T, b build.Builder, st build.Stage, opts ...build.SolveOption) (string, *build.Result, error) {
	t.Helper()
	dir := t.TempDir()
	res, err := build.Solve(ctx, b, st, append(opts, build.LocalDir(dir))...)
	return dir, res, err
}

// builderOf returns the name of the builder that solved the single
// platform of res.
func builderOf(res *build.Result) string {
	if res == nil || len(res.Platforms) != 1 {
		return ""
	}
	return res.Platforms[0].Builder
}

// gate is an HTTP server on 127.0.0.1 that a build step reaches with wget:
// the first request to /block waits until the gate opens, every other
// request is answered at once. Hits reports each request as it arrives.
type gate struct {
	URL     string
	Hits    chan string
	open    chan struct{}
	blocked atomic.Bool
}

func newGate(t *testing.T) *gate {
	g := &gate{Hits: make(chan string, 16), open: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case g.Hits <- r.URL.Path:
		default:
		}
		if r.URL.Path == "/block" && g.blocked.CompareAndSwap(false, true) {
			select {
			case <-g.open:
			case <-r.Context().Done():
			}
		}
		fmt.Fprintln(w, "ok")
	}))
	g.URL = srv.URL
	t.Cleanup(func() {
		g.Open()
		srv.CloseClientConnections()
		srv.Close()
	})
	return g
}

// Open lets the blocked request, if any, finish.
func (g *gate) Open() {
	select {
	case <-g.open:
	default:
		close(g.open)
	}
}

// waitHit waits for a request to path.
func (g *gate) waitHit(t *testing.T, path string, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case p := <-g.Hits:
			if p == path {
				return
			}
		case <-deadline:
			t.Fatalf("no request to %s within %v", path, d)
		}
	}
}
