package persist

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/larder-build/larder/cache"
)

func layerOf(content string) (Layer, *strings.Reader) {
	return Layer{Descriptor: ocispecs.Descriptor{Digest: digest.FromString(content), Size: int64(len(content))}, Files: 1, Bytes: int64(len(content))},
		strings.NewReader(content)
}

// commit adds a layer with content on top of base.
func commit(t *testing.T, s cache.MountStore, base *Artifact, content string, at time.Time) *Committed {
	t.Helper()
	l, r := layerOf(content)
	c, err := Commit(context.Background(), s, base, Save{Layer: l, Content: r}, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func read(t *testing.T, s cache.MountStore, key string) *Artifact {
	t.Helper()
	a, err := Read(context.Background(), s, key)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func contents(t *testing.T, s cache.MountStore, a *Artifact) []string {
	t.Helper()
	dir := t.TempDir()
	a, _, err := Fetch(context.Background(), s, a, dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range a.Layers {
		b, err := os.ReadFile(filepath.Join(dir, LayerFile(l)))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

var t0 = time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)

func TestCommitThenRead(t *testing.T) {
	s := cache.DirStore(t.TempDir())
	key := cache.MountKey("ns", "id", "linux/amd64")
	if a := read(t, s, key); len(a.Heads)+len(a.Layers) != 0 {
		t.Fatalf("empty store: %+v", a)
	}
	c := commit(t, s, &Artifact{Key: key}, "one", t0)
	if c.Name == "" || c.Layers != 1 || c.Uploaded != 3 {
		t.Errorf("first commit: %+v", c)
	}
	a := read(t, s, key)
	c = commit(t, s, a, "two", t0.Add(time.Second))
	if c.Layers != 2 || len(c.Concurrent) != 0 {
		t.Errorf("second commit: %+v", c)
	}
	a = read(t, s, key)
	if len(a.Heads) != 1 || !slices.Equal(contents(t, s, a), []string{"one", "two"}) {
		t.Errorf("after two saves: heads %v, layers %v", a.Heads, contents(t, s, a))
	}
	// Nothing new and one head: nothing to commit.
	if c, err := Commit(context.Background(), s, a, Save{}, t0.Add(2*time.Second)); err != nil || c.Name != "" {
		t.Errorf("an empty save committed %+v, %v", c, err)
	}
}

// Saves that restored the same artifact all keep their layers; the next
// read merges them, and a save after that consolidates them.
func TestConcurrentCommitsMerge(t *testing.T) {
	s := cache.DirStore(t.TempDir())
	key := cache.MountKey("ns", "id", "linux/amd64")
	commit(t, s, &Artifact{Key: key}, "base", t0)
	base := read(t, s, key)
	var concurrent int
	for i, c := range []string{"a", "b", "c"} {
		concurrent += len(commit(t, s, base, c, t0.Add(time.Duration(i+1)*time.Second)).Concurrent)
	}
	if concurrent != 0+1+2 {
		t.Errorf("the saves saw %d concurrent heads, want 0, 1 and 2", concurrent)
	}
	a := read(t, s, key)
	if len(a.Heads) != 3 || !slices.Equal(contents(t, s, a), []string{"base", "a", "b", "c"}) {
		t.Fatalf("merged: heads %v, layers %v", a.Heads, contents(t, s, a))
	}
	c, err := Commit(context.Background(), s, a, Save{}, t0.Add(time.Minute))
	if err != nil || c.Layers != 4 {
		t.Fatalf("consolidation: %+v, %v", c, err)
	}
	a = read(t, s, key)
	if len(a.Heads) != 1 || len(a.Layers) != 4 {
		t.Errorf("after consolidating: %+v", a)
	}
}

// A store that can't delete heads keeps them; readers skip the heads a
// newer head replaces.
type keepsHeads struct{ cache.MountStore }

func (keepsHeads) DeleteHead(context.Context, string, string) error { return errors.ErrUnsupported }

func TestReplacedHeadsAreSkipped(t *testing.T) {
	s := keepsHeads{cache.DirStore(t.TempDir())}
	key := cache.MountKey("ns", "id", "linux/amd64")
	commit(t, s, &Artifact{Key: key}, "one", t0)
	c := commit(t, s, read(t, s, key), "two", t0.Add(time.Second))
	if c.Cleanup != nil {
		t.Errorf("a store that can't delete is not a failure: %v", c.Cleanup)
	}
	a := read(t, s, key)
	if len(a.Heads) != 1 || len(a.Replaced) != 1 || !slices.Equal(contents(t, s, a), []string{"one", "two"}) {
		t.Errorf("read: %+v", a)
	}
	// A full save replaces the chain, and what it replaced stays replaced.
	l, r := layerOf("all")
	if _, err := Commit(context.Background(), s, a, Save{Layer: l, Content: r, Full: true}, t0.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	a = read(t, s, key)
	if len(a.Heads) != 1 || len(a.Replaced) != 2 || !slices.Equal(contents(t, s, a), []string{"all"}) {
		t.Errorf("after a full save: %+v", a)
	}
}

func TestInvalidHeadsAreLeftOut(t *testing.T) {
	dir := t.TempDir()
	s := cache.DirStore(dir)
	key := cache.MountKey("ns", "id", "linux/amd64")
	commit(t, s, &Artifact{Key: key}, "good", t0)
	bad := map[string]string{
		"1765000000000000001-00000001": "$(touch /pwned)",
		"1765000000000000002-00000002": `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.larder.cache-mount.v1","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[{"mediaType":"text/x-shellscript","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}]}`,
		"1765000000000000003-00000003": `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.larder.cache-mount.v1","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:../../etc/passwd","size":2}]}`,
	}
	for n, m := range bad {
		if err := s.CommitHead(context.Background(), key, n, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	a := read(t, s, key)
	if len(a.Invalid) != 3 || len(a.Heads) != 1 || !slices.Equal(contents(t, s, a), []string{"good"}) {
		t.Errorf("read: heads %v, invalid %v", a.Heads, a.Invalid)
	}
	// A save replaces the good head only: heads it can't read may be a
	// newer Larder's.
	commit(t, s, a, "more", t0.Add(time.Hour))
	if a := read(t, s, key); len(a.Invalid) != 3 || len(a.Heads) != 1 {
		t.Errorf("after a save: heads %v, invalid %v", a.Heads, a.Invalid)
	}
}

// A blob whose content does not match its digest is never used, and a
// save whose content does not match is never committed.
func TestContentIsVerified(t *testing.T) {
	dir := t.TempDir()
	s := cache.DirStore(dir)
	key := cache.MountKey("ns", "id", "linux/amd64")
	commit(t, s, &Artifact{Key: key}, "good", t0)
	a := read(t, s, key)
	blob := filepath.Join(dir, key, "blobs", "sha256", a.Layers[0].Digest.Encoded())
	for _, tampered := range []string{"evil", "good!", "goo"} {
		os.WriteFile(blob, []byte(tampered), 0o644)
		out := t.TempDir()
		got, _, err := Fetch(context.Background(), s, a, out)
		if err != nil || len(got.Layers) != 0 || len(got.Heads) != 0 || len(got.Invalid) != 1 || !errors.Is(got.Invalid[0].Err, ErrContent) {
			t.Errorf("fetching %q: %+v, %v; want its head left out with ErrContent", tampered, got, err)
		}
		if ents, _ := os.ReadDir(out); len(ents) != 0 {
			t.Errorf("a tampered layer was kept: %v", ents)
		}
	}
	l, _ := layerOf("claimed")
	if _, err := Commit(context.Background(), s, &Artifact{Key: key}, Save{Layer: l, Content: bytes.NewReader([]byte("other!!"))}, t0.Add(time.Hour)); !errors.Is(err, ErrContent) {
		t.Errorf("committing content of another digest: %v", err)
	}
	if heads, _ := s.Heads(context.Background(), key); len(heads) != 1 {
		t.Errorf("a failed commit left a head: %v", heads)
	}
}

// A blob the store lost leaves out the heads that hold it, not the
// others; a save on top replaces only the heads it fetched.
func TestLostLayerLeavesOutItsHeads(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := cache.DirStore(dir)
	key := cache.MountKey("ns", "id", "linux/amd64")
	commit(t, s, &Artifact{Key: key}, "base", t0)
	base := read(t, s, key)
	for i, c := range []string{"a", "b", "c"} {
		commit(t, s, base, c, t0.Add(time.Duration(i+1)*time.Second))
	}
	a := read(t, s, key)
	lostHead := a.Heads[1]
	if err := os.Remove(filepath.Join(dir, key, "blobs", "sha256", digest.FromString("b").Encoded())); err != nil {
		t.Fatal(err)
	}
	got, _, err := Fetch(ctx, s, a, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(contents(t, s, a), []string{"base", "a", "c"}) || len(got.Heads) != 2 || len(got.Invalid) != 1 ||
		got.Invalid[0].Name != lostHead || !errors.Is(got.Invalid[0].Err, cache.ErrNotFound) {
		t.Fatalf("with b's layer lost: heads %v, invalid %v, layers %v", got.Heads, got.Invalid, contents(t, s, a))
	}
	commit(t, s, got, "d", t0.Add(time.Minute))
	heads, err := s.Heads(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(heads, lostHead) || len(heads) != 2 {
		t.Errorf("after a save on top: heads %v; want the new one and %s, whose layer is lost", heads, lostHead)
	}
	if got := contents(t, s, read(t, s, key)); !slices.Equal(got, []string{"base", "a", "c", "d"}) {
		t.Errorf("after a save on top: layers %v", got)
	}
}
