package testenv

import (
	"archive/zip"
	"bytes"
	"maps"
	"net/http"
	"net/http/httptest"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Repo is a package repository served over plain HTTP on 127.0.0.1 for
// the length of a test, which build steps reach on the host network: the
// files of a directory, and files put in it by the test (which come first).
// It counts the requests for each path, so that a test can check what a
// package manager downloaded against what it printed.
type Repo struct {
	// URL is the server's address, such as "http://127.0.0.1:39211", with
	// no trailing slash.
	URL string

	dir  string
	mu   sync.Mutex
	put  map[string][]byte
	hits map[string]int
}

// ServeRepo starts a Repo serving dir ("" for none) and stops it when the
// test ends.
func ServeRepo(t testing.TB, dir string) *Repo {
	t.Helper()
	r := &Repo{dir: dir, put: map[string][]byte{}, hits: map[string]int{}}
	var files http.Handler = http.NotFoundHandler()
	if dir != "" {
		files = http.FileServer(http.Dir(dir))
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		p := path.Clean("/" + req.URL.Path)
		r.mu.Lock()
		r.hits[p]++
		b, ok := r.put[p]
		r.mu.Unlock()
		if ok {
			http.ServeContent(w, req, path.Base(p), time.Unix(1, 0), bytes.NewReader(b))
			return
		}
		files.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

// Put serves content at the absolute path p, before any file of the
// directory there.
func (r *Repo) Put(p string, content []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.put[path.Clean("/"+p)] = content
}

// Hits returns how many requests each path had so far, by clean path
// without the query.
func (r *Repo) Hits() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.hits)
}

// Requested returns the paths requested so far that end with one of
// suffixes (all of them when none is given), sorted, each as many times as
// it was requested.
func (r *Repo) Requested(suffixes ...string) []string {
	var out []string
	for p, n := range r.Hits() {
		if len(suffixes) > 0 && !slices.ContainsFunc(suffixes, func(s string) bool { return strings.HasSuffix(p, s) }) {
			continue
		}
		for range n {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// Zip returns a zip archive of files (slash-separated path -> content),
// written in the order of their paths with a fixed time, so that the same
// files make the same bytes.
func Zip(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range slices.Sorted(maps.Keys(files)) {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(files[name])); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
