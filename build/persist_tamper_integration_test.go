package build_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/cache"
	"github.com/larder-build/larder/internal/persist"
	"github.com/larder-build/larder/internal/testenv"
)

// What a store's contents are replaced with: text meant for a shell (which
// would leave a file in the cache if anything ran it), a path, and bytes
// of the wrong digest.
var tampering = map[string][]byte{
	"shell": []byte("$(touch /cache/PWNED) `touch /cache/PWNED`; touch /cache/PWNED #"),
	"path":  []byte("../../../../../../etc/passwd"),
	"bytes": []byte("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xffnot the content its digest names"),
}

// checkUntouched solves a step that lists the cache, and checks that it
// holds the saved files or nothing (as the report says), and never a file
// a shell would have made.
func checkUntouched(t *testing.T, b build.Builder, bb, id, n string, store cache.MountStore, wantRestored bool) {
	t.Helper()
	out := t.TempDir()
	res, err := build.Solve(ctxT(t), b, persistGraph(bb, id, "ls -A /c > /listing # check "+id), build.PersistCacheMounts(store), build.LocalDir(out))
	if err != nil {
		t.Fatalf("a tampered store failed the build: %v", err)
	}
	m := onlyMount(t, res)
	got := testenv.ReadFile(t, out, "listing")
	switch {
	case strings.Contains(got, "PWNED"):
		t.Fatalf("something ran the store's contents: the cache holds %q", got)
	case m.Restored && got != "file\n":
		t.Errorf("restored %q, want the saved file alone", got)
	case !m.Restored && got != "":
		t.Errorf("not restored, yet the cache holds %q", got)
	case !m.Restored && len(m.Notes) == 0:
		t.Errorf("nothing restored and the report does not say why: %+v", m)
	}
	if m.Restored != wantRestored {
		t.Errorf("restored = %v, want %v: %+v", m.Restored, wantRestored, m)
	}
	t.Logf("restored %v; notes %q", m.Restored, m.Notes)
}

// Every file of a directory store's artifact, replaced: nothing runs, and
// nothing tampered is restored. Only the config blob, which Larder never
// reads (a head must name OCI's empty descriptor), changes nothing.
func TestPersistTamperedDirStore(t *testing.T) {
	env, bb := setup(t)
	n := nonce()
	orig := t.TempDir()
	id0 := "tamper-" + n
	if _, err := build.Solve(ctxT(t), freshBuilder(t, env), persistGraph(bb, id0, "echo kept > /c/file # "+n), build.PersistCacheMounts(cache.DirStore(orig))); err != nil {
		t.Fatal(err)
	}
	key0 := cache.MountKey("default", id0, "linux/amd64")
	var files []string
	filepath.WalkDir(filepath.Join(orig, key0), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(filepath.Join(orig, key0), p)
			files = append(files, rel)
		}
		return nil
	})
	if len(files) != 3 {
		t.Fatalf("the artifact's files: %q, want a head, a layer and the config", files)
	}
	b := freshBuilder(t, env)
	i := 0
	for _, f := range files {
		config := strings.HasSuffix(f, ocispecs.DescriptorEmptyJSON.Digest.Encoded())
		for what, content := range tampering {
			i++
			t.Run(fmt.Sprintf("%s/%s", f, what), func(t *testing.T) {
				id := fmt.Sprintf("%s-%d", id0, i)
				dir := t.TempDir()
				key := cache.MountKey("default", id, "linux/amd64")
				if err := os.CopyFS(filepath.Join(dir, key), os.DirFS(filepath.Join(orig, key0))); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, key, f), content, 0o644); err != nil {
					t.Fatal(err)
				}
				checkUntouched(t, b, bb, id, n, cache.DirStore(dir), config)
			})
		}
	}
	t.Run("strict", func(t *testing.T) {
		dir := t.TempDir()
		id := id0 + "-strict"
		key := cache.MountKey("default", id, "linux/amd64")
		os.CopyFS(filepath.Join(dir, key), os.DirFS(filepath.Join(orig, key0)))
		heads, _ := filepath.Glob(filepath.Join(dir, key, "heads", "*"))
		os.WriteFile(heads[0], tampering["shell"], 0o644)
		_, err := build.Solve(ctxT(t), b, persistGraph(bb, id, "ls /c # strict "+n), build.PersistCacheMounts(cache.DirStore(dir), build.Strict()))
		if err == nil || !strings.Contains(err.Error(), id) || !strings.Contains(err.Error(), "not a manifest") {
			t.Errorf("strict: err = %v, want the head's fault, naming the cache", err)
		}
	})
}

// A registry store's heads replaced: by an image that is not an artifact,
// by a manifest whose annotations hold text for a shell and a path, and by
// one whose layer is text for a shell (its digest right). Nothing runs,
// nothing tampered is restored.
func TestPersistTamperedRegistryStore(t *testing.T) {
	env, bb := setup(t)
	n := nonce()
	repo := env.Registry + "/test/tamper-" + n
	store := cache.RegistryStore(repo)
	b := freshBuilder(t, env)
	ctx := context.Background()

	save := func(t *testing.T, id string) (key, head string, m ocispecs.Manifest) {
		t.Helper()
		if _, err := build.Solve(ctxT(t), b, persistGraph(bb, id, "echo kept > /c/file # "+id), build.PersistCacheMounts(store)); err != nil {
			t.Fatal(err)
		}
		key = cache.MountKey("default", id, "linux/amd64")
		heads, err := store.Heads(ctx, key)
		if err != nil || len(heads) != 1 {
			t.Fatalf("heads %v, %v", heads, err)
		}
		raw, err := store.ReadHead(ctx, key, heads[0])
		if err != nil {
			t.Fatal(err)
		}
		json.Unmarshal(raw, &m)
		return key, heads[0], m
	}
	put := func(t *testing.T, key, head string, m ocispecs.Manifest) {
		t.Helper()
		raw, _ := json.Marshal(m)
		if err := store.CommitHead(ctx, key, head, raw); err != nil {
			t.Fatal(err)
		}
	}
	fresh := func(t *testing.T, id string) {
		t.Helper()
		// Another builder's cache starts empty: the save above filled b's.
		checkUntouched(t, freshBuilder(t, env), bb, id, n, store, false)
	}

	t.Run("not an artifact", func(t *testing.T) {
		id := "junk-" + n
		key, head, _ := save(t, id)
		junk, _ := random.Image(512, 1)
		ref, _ := name.NewTag(repo + ":" + key + ".h" + head)
		if err := ggcrremote.Write(ref, junk); err != nil {
			t.Fatal(err)
		}
		fresh(t, id)
	})
	t.Run("annotations", func(t *testing.T) {
		id := "annotations-" + n
		key, head, m := save(t, id)
		m.Annotations["dev.larder.cache-mount.replaces"] = string(tampering["shell"])
		m.Layers[0].Annotations = map[string]string{"dev.larder.cache-mount.files": string(tampering["path"])}
		put(t, key, head, m)
		fresh(t, id)
	})
	t.Run("layer of shell text", func(t *testing.T) {
		id := "layer-" + n
		key, head, m := save(t, id)
		l := static.NewLayer(tampering["shell"], types.MediaType(persist.LayerType))
		r, _ := name.NewRepository(repo)
		if err := ggcrremote.WriteLayer(r, l); err != nil {
			t.Fatal(err)
		}
		d, _ := l.Digest()
		m.Layers[0].Digest = digest.Digest(d.String())
		m.Layers[0].Size = int64(len(tampering["shell"]))
		put(t, key, head, m)
		fresh(t, id)
	})
	t.Run("layer of another digest", func(t *testing.T) {
		id := "digest-" + n
		key, head, m := save(t, id)
		m.Layers[0].Size += 7
		put(t, key, head, m)
		fresh(t, id)
	})
}
