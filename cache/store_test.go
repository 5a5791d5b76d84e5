package cache_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/registry"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/larder-build/larder/cache"
	"github.com/larder-build/larder/internal/testenv"
)

// failingReader fails after n bytes, as a stream cut off midway.
type failingReader struct {
	r io.Reader
	n int
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("cut off")
	}
	if len(p) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

// untouchable fails the test when read.
type untouchable struct{ t *testing.T }

func (u untouchable) Read([]byte) (int, error) {
	u.t.Error("the store read a blob it holds already")
	return 0, io.EOF
}

// storeContract checks what every MountStore promises.
func storeContract(t *testing.T, s cache.MountStore) {
	ctx := context.Background()
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	s = s.WithKeychain(authn.DefaultKeychain)
	key := cache.MountKey("contract", "/var/cache/apt", "linux/arm64/v8")
	const head = "1765432109876543210-0a1b2c3d"

	if hs, err := s.Heads(ctx, key); err != nil || len(hs) != 0 {
		t.Fatalf("Heads of an empty key = %v, %v; want none and no error", hs, err)
	}
	if _, err := s.ReadHead(ctx, key, head); !errors.Is(err, cache.ErrNotFound) {
		t.Errorf("ReadHead of a missing head = %v, want ErrNotFound", err)
	}
	content := bytes.Repeat([]byte("layer "), 100000)
	d := ocispecs.Descriptor{MediaType: ocispecs.MediaTypeImageLayerGzip, Digest: digest.FromBytes(content), Size: int64(len(content))}
	if _, err := s.ReadBlob(ctx, key, d); !errors.Is(err, cache.ErrNotFound) {
		t.Errorf("ReadBlob of a missing blob = %v, want ErrNotFound", err)
	}

	// A write cut off midway leaves nothing behind.
	if err := s.WriteBlob(ctx, key, d, &failingReader{r: bytes.NewReader(content), n: 1000}); err == nil {
		t.Error("WriteBlob of a reader that fails succeeded")
	}
	if rc, err := s.ReadBlob(ctx, key, d); err == nil {
		b, _ := io.ReadAll(rc)
		rc.Close()
		t.Errorf("a cut-off write left %d bytes readable", len(b))
	}

	if err := s.WriteBlob(ctx, key, d, bytes.NewReader(content)); err != nil {
		t.Fatal(err)
	}
	rc, err := s.ReadBlob(ctx, key, d)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, content) {
		t.Errorf("ReadBlob gave %d bytes, %v; want what was written", len(got), err)
	}
	if err := s.WriteBlob(ctx, key, d, untouchable{t}); err != nil {
		t.Errorf("WriteBlob of a blob the store holds: %v", err)
	}

	manifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}`)
	empty := ocispecs.DescriptorEmptyJSON
	if err := s.WriteBlob(ctx, key, empty, bytes.NewReader(empty.Data)); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitHead(ctx, key, head, manifest); err != nil {
		t.Fatal(err)
	}
	if hs, err := s.Heads(ctx, key); err != nil || !slices.Equal(hs, []string{head}) {
		t.Errorf("Heads = %v, %v; want [%s]", hs, err, head)
	}
	if hs, _ := s.Heads(ctx, cache.MountKey("contract", "/other", "linux/arm64")); len(hs) != 0 {
		t.Errorf("another key sees the head: %v", hs)
	}
	if b, err := s.ReadHead(ctx, key, head); err != nil || !bytes.Equal(b, manifest) {
		t.Errorf("ReadHead = %q, %v", b, err)
	}
	err = s.DeleteHead(ctx, key, head)
	if errors.Is(err, errors.ErrUnsupported) {
		t.Logf("%s can't delete heads: %v", s, err)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if hs, _ := s.Heads(ctx, key); len(hs) != 0 {
		t.Errorf("Heads after DeleteHead = %v", hs)
	}
	if err := s.DeleteHead(ctx, key, head); err != nil {
		t.Errorf("deleting a head that is not there: %v", err)
	}

	// Keys and names of other forms are refused.
	for _, k := range []string{"", "../up", "a/b", ".hidden", strings.Repeat("k", 101)} {
		if _, err := s.Heads(ctx, k); err == nil {
			t.Errorf("Heads(%q) was accepted", k)
		}
	}
	for _, n := range []string{"", "../x", "123-abc", "1765432109876543210-0A1B2C3D"} {
		if err := s.CommitHead(ctx, key, n, manifest); err == nil {
			t.Errorf("CommitHead(%q) was accepted", n)
		}
	}
}

func TestDirStoreContract(t *testing.T) {
	storeContract(t, cache.DirStore(t.TempDir()))
}

func TestRegistryStoreContract(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	storeContract(t, cache.RegistryStore(strings.TrimPrefix(srv.URL, "http://")+"/team/caches"))
}

func TestMountKey(t *testing.T) {
	for _, tc := range []struct{ ns, id, platform, prefix string }{
		{"default", "larder/default/apt/var/cache/apt@linux/amd64", "linux/amd64", "default-larder-default-apt-var-cache-apt-linux-amd64-linux-amd64-"},
		{"", "", "", "cache-any-"},
		{"team", strings.Repeat("x", 200), "linux/arm/v7", "team-" + strings.Repeat("x", 55) + "-linux-arm-v7-"},
	} {
		k := cache.MountKey(tc.ns, tc.id, tc.platform)
		if !strings.HasPrefix(k, tc.prefix) || !cache.ValidKey(k) {
			t.Errorf("MountKey(%q, %q, %q) = %q, want a valid key starting %q", tc.ns, tc.id, tc.platform, k, tc.prefix)
		}
	}
	if cache.MountKey("a", "b", "linux/amd64") == cache.MountKey("a", "b", "linux/arm64") ||
		cache.MountKey("a-b", "c", "p") == cache.MountKey("a", "b-c", "p") {
		t.Error("different caches share a key")
	}
}

func TestMountStoreValidate(t *testing.T) {
	for _, tc := range []struct {
		s    cache.MountStore
		want string
	}{
		{cache.RegistryStore(""), "empty repository"},
		{cache.RegistryStore("Registry.example.com/UPPER:tag"), "not a repository"},
		{cache.DirStore(""), "empty directory"},
	} {
		if err := tc.s.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate() = %v, want %q", tc.s, err, tc.want)
		}
	}
}

func TestS3StoreContract(t *testing.T) {
	env := testenv.Get(t)
	s3, err := env.S3(context.Background())
	if err != nil {
		testenv.Unavailable(t, err)
	}
	storeContract(t, cache.S3Store(s3.Bucket, s3.Region, cache.Endpoint(s3.Endpoint), cache.PathStyle(true),
		cache.Credentials(s3.AccessKeyID, s3.SecretAccessKey, ""), cache.Prefix("contract/")))
}

func TestS3StoreOptions(t *testing.T) {
	s := cache.S3Store("bucket", "eu-west-1", cache.Endpoint("http://minio:9000"), cache.Credentials("AKIAEXAMPLE", "secret-value", ""), cache.Prefix("ci/"))
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := s.String(); strings.Contains(got, "AKIAEXAMPLE") || strings.Contains(got, "secret-value") || !strings.Contains(got, "s3://bucket/ci/") {
		t.Errorf("String() = %q", got)
	}
	for _, tc := range []struct {
		opt  cache.S3Option
		want string
	}{
		{cache.Name("x"), "Name"},
		{cache.ManifestsPrefix("m/"), "ManifestsPrefix"},
		{cache.UploadParallelism(2), "UploadParallelism"},
		{cache.ModeMax, "Mode"},
		{cache.Endpoint("minio:9000"), "endpoint_url"},
	} {
		err := cache.S3Store("bucket", "eu-west-1", tc.opt).Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("S3Store with %s: Validate() = %v", tc.want, err)
		}
	}
	if err := cache.S3Store("", "").Validate(); err == nil {
		t.Error("S3Store with no bucket or region is valid")
	}
}
