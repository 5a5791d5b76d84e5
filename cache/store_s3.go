package cache

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
	"path"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// s3Store is the MountStore S3Store returns.
type s3Store struct {
	cfg    *s3Backend
	client *minio.Client
	err    error
}

var _ MountStore = (*s3Store)(nil)

// S3Store keeps persisted cache mounts in an Amazon S3 bucket, or in a
// bucket of an S3-compatible service with Endpoint: under Prefix, each key
// has objects <key>/blobs/sha256/<hex> and <key>/heads/<name>. The client
// reads and writes the bucket itself, not the builder. It takes the options
// of the S3 cache backend that say where the bucket is and who reads it:
// Prefix, Endpoint, PathStyle and Credentials; the others are errors.
// Without Credentials the client's own AWS credentials are used: the
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN variables,
// the shared credentials file, or the instance's role.
func S3Store(bucket, region string, opts ...S3Option) MountStore {
	b := S3(bucket, region, opts...).(*s3Backend)
	b.backend = "mount store"
	for _, bad := range []struct {
		set  bool
		name string
	}{
		{b.manifestsPrefix != nil, "ManifestsPrefix"},
		{b.blobsPrefix != nil, "BlobsPrefix"},
		{len(b.names) > 0, "Name"},
		{b.uploadParallelism != 0, "UploadParallelism"},
		{b.touchRefresh != nil, "TouchRefresh"},
		{b.export != (exportConfig{}), "Mode and IgnoreError"},
	} {
		if bad.set {
			b.fail(bad.name, "", "does not apply to S3Store, which takes Prefix, Endpoint, PathStyle and Credentials")
		}
	}
	s := &s3Store{cfg: b, err: b.err()}
	if s.err == nil {
		s.client, s.err = s.newClient()
	}
	return s
}

func (s *s3Store) newClient() (*minio.Client, error) {
	c := s.cfg
	host, secure := "s3."+c.region+".amazonaws.com", true
	if c.endpoint != "" {
		u, err := url.Parse(c.endpoint)
		if err != nil {
			return nil, &Error{Backend: "mount store", Option: "Endpoint", Value: displayURL(c.endpoint), Reason: "not a URL", Err: err}
		}
		host, secure = u.Host, u.Scheme == "https"
	}
	creds := credentials.NewChainCredentials([]credentials.Provider{
		&credentials.EnvAWS{},
		&credentials.FileAWSCredentials{},
		&credentials.IAM{},
	})
	if c.accessKeyID != "" {
		creds = credentials.NewStaticV4(c.accessKeyID, c.secretAccessKey, c.sessionToken)
	}
	lookup := minio.BucketLookupAuto
	if c.pathStyle != nil && *c.pathStyle {
		lookup = minio.BucketLookupPath
	}
	return minio.New(host, &minio.Options{Creds: creds, Secure: secure, Region: c.region, BucketLookup: lookup})
}

func (s *s3Store) String() string {
	where := "s3://" + s.cfg.bucket + "/" + s.cfg.prefix
	if s.cfg.endpoint != "" {
		where += " at " + displayURL(s.cfg.endpoint)
	}
	return "s3 " + where
}

func (s *s3Store) Validate() error { return s.err }

func (s *s3Store) WithKeychain(authn.Keychain) MountStore { return s }

func (s *s3Store) object(key string, parts ...string) string {
	return s.cfg.prefix + path.Join(append([]string{key}, parts...)...)
}

func (s *s3Store) blob(key string, d ocispecs.Descriptor) (string, error) {
	if err := d.Digest.Validate(); err != nil || d.Digest.Algorithm() != "sha256" {
		return "", fmt.Errorf("cache: blob digest %q is not a sha256 digest", d.Digest)
	}
	return s.object(key, "blobs", "sha256", d.Digest.Encoded()), nil
}

// notFound reports whether err says the object is not there.
func notFound(err error) bool {
	code := minio.ToErrorResponse(err).Code
	return code == minio.NoSuchKey || code == minio.NoSuchBucket
}

func (s *s3Store) Heads(ctx context.Context, key string) ([]string, error) {
	if err := s.usable(key); err != nil {
		return nil, err
	}
	dir := s.object(key, "heads") + "/"
	var names []string
	for o := range s.client.ListObjects(ctx, s.cfg.bucket, minio.ListObjectsOptions{Prefix: dir}) {
		if o.Err != nil {
			if notFound(o.Err) {
				return nil, nil
			}
			return nil, o.Err
		}
		if n := strings.TrimPrefix(o.Key, dir); ValidHeadName(n) {
			names = append(names, n)
		}
	}
	return names, nil
}

func (s *s3Store) ReadHead(ctx context.Context, key, name string) ([]byte, error) {
	if err := s.usable(key); err != nil {
		return nil, err
	}
	if err := checkHead(key, name); err != nil {
		return nil, err
	}
	o, err := s.client.GetObject(ctx, s.cfg.bucket, s.object(key, "heads", name), minio.GetObjectOptions{})
	if err == nil {
		defer o.Close()
		var b []byte
		if b, err = readManifest(o); err == nil {
			return b, nil
		}
	}
	if notFound(err) {
		return nil, fmt.Errorf("head %s of %s: %w", name, key, ErrNotFound)
	}
	return nil, err
}

func (s *s3Store) ReadBlob(ctx context.Context, key string, d ocispecs.Descriptor) (io.ReadCloser, error) {
	if err := s.usable(key); err != nil {
		return nil, err
	}
	obj, err := s.blob(key, d)
	if err != nil {
		return nil, err
	}
	o, err := s.client.GetObject(ctx, s.cfg.bucket, obj, minio.GetObjectOptions{})
	if err == nil {
		_, err = o.Stat()
		if err != nil {
			o.Close()
		}
	}
	if notFound(err) {
		return nil, fmt.Errorf("blob %s of %s: %w", d.Digest, key, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return o, nil
}

func (s *s3Store) WriteBlob(ctx context.Context, key string, d ocispecs.Descriptor, r io.Reader) error {
	if err := s.usable(key); err != nil {
		return err
	}
	obj, err := s.blob(key, d)
	if err != nil {
		return err
	}
	if info, err := s.client.StatObject(ctx, s.cfg.bucket, obj, minio.StatObjectOptions{}); err == nil && info.Size == d.Size {
		return nil
	}
	_, err = s.client.PutObject(ctx, s.cfg.bucket, obj, r, d.Size, minio.PutObjectOptions{ContentType: "application/octet-stream"})
	return err
}

func (s *s3Store) CommitHead(ctx context.Context, key, name string, manifest []byte) error {
	if err := s.usable(key); err != nil {
		return err
	}
	if err := checkHead(key, name); err != nil {
		return err
	}
	_, err := s.client.PutObject(ctx, s.cfg.bucket, s.object(key, "heads", name), bytes.NewReader(manifest), int64(len(manifest)),
		minio.PutObjectOptions{ContentType: ocispecs.MediaTypeImageManifest})
	return err
}

func (s *s3Store) DeleteHead(ctx context.Context, key, name string) error {
	if err := s.usable(key); err != nil {
		return err
	}
	if err := checkHead(key, name); err != nil {
		return err
	}
	err := s.client.RemoveObject(ctx, s.cfg.bucket, s.object(key, "heads", name), minio.RemoveObjectOptions{})
	if notFound(err) {
		return nil
	}
	return err
}

func (s *s3Store) usable(key string) error {
	if s.err != nil {
		return s.err
	}
	return checkKey(key)
}
