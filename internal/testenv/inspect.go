package testenv

import (
	"archive/tar"
	"bytes"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/larder-build/larder/build"
)

// Pull reads the linux/amd64 image of ref from its registry.
func Pull(t testing.TB, ref string) v1.Image {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := ggcrremote.Image(r, ggcrremote.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"}))
	if err != nil {
		t.Fatalf("pulling %s: %v", ref, err)
	}
	return img
}

// WalkImage calls fn with each entry of img's flattened filesystem, its path
// without a leading "./" or "/", and a reader of its content.
func WalkImage(t testing.TB, img v1.Image, fn func(path string, h *tar.Header, content io.Reader)) {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		fn(strings.TrimPrefix(strings.TrimPrefix(h.Name, "./"), "/"), h, tr)
	}
}

// ImageFiles returns the regular files of img's flattened filesystem that
// are smaller than 1 MiB, by path without the leading slash.
func ImageFiles(t testing.TB, img v1.Image) map[string]string {
	t.Helper()
	files := map[string]string{}
	WalkImage(t, img, func(path string, h *tar.Header, r io.Reader) {
		if h.Typeflag == tar.TypeReg && h.Size < 1<<20 {
			b, _ := io.ReadAll(r)
			files[path] = string(b)
		}
	})
	return files
}

// LogLines gathers the lines the steps of a solve print, from its StepLog
// events: give Record to build.OnEvent. It is safe for concurrent use.
type LogLines struct {
	mu      sync.Mutex
	partial map[string][]byte // by step and stream
	lines   []string
}

// Record takes one event of a solve.
func (l *LogLines) Record(e build.Event) {
	if e.Kind != build.StepLog {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.partial == nil {
		l.partial = map[string][]byte{}
	}
	key := e.Digest.String() + "/" + strconv.Itoa(e.Stream)
	buf := append(l.partial[key], e.Data...)
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			break
		}
		l.lines = append(l.lines, strings.TrimRight(string(buf[:i]), "\r"))
		buf = buf[i+1:]
	}
	l.partial[key] = buf
}

// Lines returns every complete line, then the unfinished ones.
func (l *LogLines) Lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := slices.Clone(l.lines)
	for _, k := range slices.Sorted(maps.Keys(l.partial)) {
		if len(l.partial[k]) > 0 {
			out = append(out, string(l.partial[k]))
		}
	}
	return out
}

// ReadFile returns the content of the file name in dir, failing t when it
// can't be read.
func ReadFile(t testing.TB, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
