package testenv_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/larder-build/larder/internal/testenv"
)

// s3Client returns a minio-go client for the environment's S3 server, with
// the options larder-s3 needs: plain HTTP and path-style bucket addressing.
func s3Client(t *testing.T) (*minio.Client, testenv.S3Server) {
	t.Helper()
	env := testenv.Get(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := env.S3(ctx)
	if err != nil {
		testenv.Unavailable(t, err)
	}
	c, err := minio.New(srv.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(srv.AccessKeyID, srv.SecretAccessKey, ""),
		Secure:       false,
		Region:       srv.Region,
		BucketLookup: minio.BucketLookupPath,
		MaxRetries:   1,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c, srv
}

// pattern returns n bytes that differ from chunk to chunk, so a chunk
// decoded out of place shows.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/65536)
	}
	return b
}

// streamed hides everything but Read, so the client can neither seek nor
// learn the size from the reader: it must stream what it is told the size
// is.
type streamed struct{ r io.Reader }

func (s streamed) Read(p []byte) (int, error) { return s.r.Read(p) }

// failingReader yields n bytes, then fails.
type failingReader struct{ n int }

var errReaderBroke = errors.New("reader broke midway")

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n == 0 {
		return 0, errReaderBroke
	}
	n := min(len(p), f.n)
	clear(p[:n])
	f.n -= n
	return n, nil
}

func errorCode(err error) string { return minio.ToErrorResponse(err).Code }

// The S3 server works with the client Larder's S3 store uses: objects go in
// streamed and come back whole, stat and list see them, and deleted ones
// are gone.
func TestS3ObjectLifecycle(t *testing.T) {
	c, srv := s3Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	prefix := t.Name() + "/"

	// Bigger than one 64 KiB chunk of a streaming-signed upload, and not a
	// multiple of it.
	data := pattern(1<<20 + 123)
	key := prefix + "a/blob"
	info, err := c.PutObject(ctx, srv.Bucket, key, streamed{bytes.NewReader(data)}, int64(len(data)),
		minio.PutObjectOptions{ContentType: "application/octet-stream"})
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	if info.Size != int64(len(data)) {
		t.Errorf("put %s: size %d, want %d", key, info.Size, len(data))
	}

	obj, err := c.GetObject(ctx, srv.Bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	got, err := io.ReadAll(obj)
	obj.Close()
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	if sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatalf("get %s: %d bytes that differ from the %d put", key, len(got), len(data))
	}

	st, err := c.StatObject(ctx, srv.Bucket, key, minio.StatObjectOptions{})
	if err != nil {
		t.Fatalf("stat %s: %v", key, err)
	}
	if st.Size != int64(len(data)) || st.ETag != info.ETag || st.ContentType != "application/octet-stream" {
		t.Errorf("stat %s: size %d, etag %q, type %q; want %d, %q (put's), application/octet-stream",
			key, st.Size, st.ETag, st.ContentType, len(data), info.ETag)
	}
	// The upload's aws-chunked encoding is not the object's.
	if enc := st.Metadata.Get("Content-Encoding"); enc != "" {
		t.Errorf("stat %s: Content-Encoding %q, want none", key, enc)
	}

	for _, k := range []string{prefix + "a/other", prefix + "b"} {
		if _, err := c.PutObject(ctx, srv.Bucket, k, bytes.NewReader([]byte(k)), int64(len(k)), minio.PutObjectOptions{}); err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
	}
	list := func(recursive bool) []string {
		var keys []string
		for o := range c.ListObjects(ctx, srv.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: recursive}) {
			if o.Err != nil {
				t.Fatalf("list %s (recursive %v): %v", prefix, recursive, o.Err)
			}
			keys = append(keys, o.Key)
		}
		slices.Sort(keys)
		return keys
	}
	if got, want := list(false), []string{prefix + "a/", prefix + "b"}; !slices.Equal(got, want) {
		t.Errorf("list %s: %q, want %q", prefix, got, want)
	}
	if got, want := list(true), []string{prefix + "a/blob", prefix + "a/other", prefix + "b"}; !slices.Equal(got, want) {
		t.Errorf("list %s recursively: %q, want %q", prefix, got, want)
	}

	if err := c.RemoveObject(ctx, srv.Bucket, key, minio.RemoveObjectOptions{}); err != nil {
		t.Fatalf("delete %s: %v", key, err)
	}
	obj, err = c.GetObject(ctx, srv.Bucket, key, minio.GetObjectOptions{})
	if err == nil {
		_, err = io.ReadAll(obj)
		obj.Close()
	}
	if errorCode(err) != "NoSuchKey" {
		t.Errorf("get %s after delete: %v, want a NoSuchKey error", key, err)
	}
	if _, err := c.StatObject(ctx, srv.Bucket, key, minio.StatObjectOptions{}); errorCode(err) != "NoSuchKey" {
		t.Errorf("stat %s after delete: %v, want a NoSuchKey error", key, err)
	}
	if got, want := list(true), []string{prefix + "a/other", prefix + "b"}; !slices.Equal(got, want) {
		t.Errorf("list %s recursively after delete: %q, want %q", prefix, got, want)
	}
}

// An upload big enough to go in parts (minio-go switches to a multipart
// upload above its part size) comes back whole.
func TestS3MultipartUpload(t *testing.T) {
	c, srv := s3Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	key := t.Name() + "/blob"
	data := pattern(11<<20 + 5)
	info, err := c.PutObject(ctx, srv.Bucket, key, streamed{bytes.NewReader(data)}, int64(len(data)),
		minio.PutObjectOptions{PartSize: 5 << 20})
	if err != nil {
		t.Fatalf("put %s in parts: %v", key, err)
	}
	if info.Size != int64(len(data)) {
		t.Errorf("put %s in parts: size %d, want %d", key, info.Size, len(data))
	}
	obj, err := c.GetObject(ctx, srv.Bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer obj.Close()
	got, err := io.ReadAll(obj)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	if sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatalf("get %s: %d bytes that differ from the %d put", key, len(got), len(data))
	}
}

// A put whose reader fails midway fails, and leaves no object behind, in
// one request or in parts.
func TestS3FailedPutLeavesNothing(t *testing.T) {
	c, srv := s3Client(t)
	for _, tc := range []struct {
		name     string
		size, ok int
		partSize uint64
	}{
		{name: "single", size: 1 << 20, ok: 300 << 10},
		{name: "multipart", size: 12 << 20, ok: 7 << 20, partSize: 5 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			key := t.Name() + "/blob"
			_, err := c.PutObject(ctx, srv.Bucket, key, &failingReader{n: tc.ok}, int64(tc.size),
				minio.PutObjectOptions{PartSize: tc.partSize})
			if err == nil {
				t.Fatalf("put %s from a reader that fails after %d of %d bytes: no error", key, tc.ok, tc.size)
			}
			t.Logf("put %s: %v", key, err)
			if _, err := c.StatObject(ctx, srv.Bucket, key, minio.StatObjectOptions{}); errorCode(err) != "NoSuchKey" {
				t.Errorf("stat %s after the failed put: %v, want a NoSuchKey error", key, err)
			}
			for o := range c.ListObjects(ctx, srv.Bucket, minio.ListObjectsOptions{Prefix: t.Name() + "/", Recursive: true}) {
				t.Errorf("list after the failed put: %q (err %v), want nothing", o.Key, o.Err)
			}
			for u := range c.ListIncompleteUploads(ctx, srv.Bucket, t.Name()+"/", true) {
				t.Errorf("multipart uploads after the failed put: %q (id %q, err %v), want none", u.Key, u.UploadID, u.Err)
			}
		})
	}
}

// The Env starts one S3 server and hands out the same one each time.
func TestS3SharedPerEnv(t *testing.T) {
	c, srv := s3Client(t)
	again, err := testenv.Get(t).S3(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if again != srv {
		t.Errorf("second S3: %+v, want the first, %+v", again, srv)
	}
	ok, err := c.BucketExists(context.Background(), srv.Bucket)
	if err != nil || !ok {
		t.Errorf("bucket %q exists: %v, %v; want true, nil", srv.Bucket, ok, err)
	}
}
