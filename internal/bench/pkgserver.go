package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/moby/buildkit/client/llb"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/mounts"
)

// pkgSizes are the packages the smoke run's package server serves.
var pkgSizes = map[string]int{"alpha": 1_000_000, "beta": 1_000_000, "gamma": 100_000, "delta": 50_000, "epsilon": 50_000, "zeta": 50_000}

// servePackages serves each package of pkgSizes at /NAME on 127.0.0.1,
// with content that does not compress, until the run ends. It returns the
// server's host:port.
func (r *runner) servePackages() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	blobs := map[string][]byte{}
	rng := rand.New(rand.NewPCG(1, 2))
	for name, size := range pkgSizes {
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		blobs[name] = b
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, ok := blobs[strings.TrimPrefix(req.URL.Path, "/")]
		if !ok {
			http.NotFound(w, req)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(b)
	})}
	go srv.Serve(ln)
	r.closers = append(r.closers, func() { srv.Close() })
	return ln.Addr().String(), nil
}

// pkgWorkload is the smoke run's package manager: busybox's wget fetching
// packages from servePackages into /var/cache/pkgs, which, like apt's
// archives, it skips when a package is there already.
func (r *runner) pkgWorkload(ctx context.Context) (workload, error) {
	bb, err := r.env.Busybox(ctx)
	if err != nil {
		return workload{}, err
	}
	addr, err := r.servePackages()
	if err != nil {
		return workload{}, err
	}
	fetch := func(skip bool) func(string) string {
		return func(list string) string {
			get := fmt.Sprintf("echo fetch $p && wget -q -O /var/cache/pkgs/$p http://%s/$p", addr)
			if skip {
				get = "[ -s /var/cache/pkgs/$p ] || { " + get + "; }"
			}
			return "mkdir -p /var/cache/pkgs && for p in " + list + "; do " + get + "; done && " +
				"for p in " + list + "; do cat /var/cache/pkgs/$p; done > /installed"
		}
	}
	return workload{
		name: "pkg", first: "alpha beta", second: "alpha beta gamma",
		base:   build.Image(bb),
		marker: "/var/cache/pkgs",
		baseline: func(list string) string {
			return fetch(false)(list) + " && rm -rf /var/cache/pkgs"
		},
		variants: []variant{{name: "cache mount", cmd: fetch(true), preset: func(project string) llb.RunOption {
			return mounts.Cache("/var/cache/pkgs", mounts.ID(project), mounts.Sharing(mounts.Locked))
		}}},
		unit:      "packages",
		downloads: countLines(func(l string) bool { return strings.HasPrefix(l, "fetch ") }),
		fetched: func(l string) string {
			name, _ := strings.CutPrefix(l, "fetch ")
			if name == l {
				return ""
			}
			return name
		},
		extras: []string{"delta", "epsilon", "zeta"},
	}, nil
}
