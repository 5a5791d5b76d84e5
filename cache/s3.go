package cache

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

// S3Option configures S3. Mode, ExportOption, Prefix, ManifestsPrefix,
// BlobsPrefix, Name, Endpoint, PathStyle, Credentials, UploadParallelism and
// TouchRefresh values are S3Options.
type S3Option interface {
	applyS3(*s3Backend)
}

// s3Option sets an option that only S3 understands.
type s3Option func(*s3Backend)

func (o s3Option) applyS3(s *s3Backend) { o(s) }

// s3Backend is the Backend S3 returns.
type s3Backend struct {
	base
	bucket            string
	region            string
	prefix            string
	manifestsPrefix   *string
	blobsPrefix       *string
	names             []string
	endpoint          string
	pathStyle         *bool
	accessKeyID       string
	secretAccessKey   string
	sessionToken      string
	uploadParallelism int
	touchRefresh      *time.Duration
	export            exportConfig
}

// S3 stores cache in an Amazon S3 bucket, or in a bucket of an S3-compatible
// service with Endpoint. Both bucket and region are required; a bucket must
// not contain '/' (use Prefix for a folder within it). Without Credentials
// the builder uses its own AWS credentials (its environment, profile or
// instance role).
//
// S3 accepts Mode, ExportOption, Prefix, ManifestsPrefix, BlobsPrefix, Name,
// Endpoint, PathStyle, Credentials, UploadParallelism and TouchRefresh.
func S3(bucket, region string, opts ...S3Option) Backend {
	s := &s3Backend{base: base{backend: typeS3}, bucket: bucket, region: region}
	switch {
	case bucket == "":
		s.fail("bucket", "", `must not be empty (give the bucket's name, such as "team-buildcache")`)
	case strings.Contains(bucket, "/"):
		s.fail("bucket", bucket, "must not contain '/' (use cache.Prefix for a folder within the bucket)")
	case strings.ContainsFunc(bucket, isSpace):
		s.fail("bucket", bucket, `must not contain spaces (a bucket name is lowercase letters, digits, '.' and '-', such as "team-buildcache")`)
	}
	switch {
	case region == "":
		s.fail("region", "", `must not be empty (give the bucket's region, such as "eu-west-1", or "us-east-1" for a service without regions)`)
	case strings.ContainsFunc(region, isSpace):
		s.fail("region", region, `must not contain spaces (give the region's code, such as "eu-west-1")`)
	}
	for _, o := range opts {
		if o == nil {
			s.nilOption()
			continue
		}
		o.applyS3(s)
	}
	return s
}

func isSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f'
}

// Prefix is prepended to the key of every object the cache stores, like a
// folder within the bucket ("app/"). The default is "" (the bucket's root).
func Prefix(prefix string) S3Option {
	return s3Option(func(s *s3Backend) { s.prefix = prefix })
}

// ManifestsPrefix is the folder, under Prefix, that holds the cache
// manifests. The default is "manifests/".
func ManifestsPrefix(prefix string) S3Option {
	return s3Option(func(s *s3Backend) { s.manifestsPrefix = &prefix })
}

// BlobsPrefix is the folder, under Prefix, that holds the cache layers. The
// default is "blobs/".
func BlobsPrefix(prefix string) S3Option {
	return s3Option(func(s *s3Backend) { s.blobsPrefix = &prefix })
}

// Name names the cache manifest. Export writes the manifest under every
// name; import reads the first. The default is "buildkit". Names must not be
// empty or contain ';'.
func Name(names ...string) S3Option {
	names = slices.Clone(names)
	return s3Option(func(s *s3Backend) {
		if len(names) == 0 {
			s.fail("name", "", "needs at least one name")
			return
		}
		for _, n := range names {
			switch {
			case n == "":
				s.fail("name", "", `must not be empty (give each name as an argument, such as cache.Name("app"), or leave out cache.Name to use "buildkit")`)
				return
			case strings.Contains(n, ";"):
				s.fail("name", n, "must not contain ';' (give several names as separate arguments)")
				return
			}
		}
		s.names = names
	})
}

// Endpoint sets the address of an S3-compatible service such as MinIO
// ("http://minio:9000"). The default is AWS's endpoint for the region. It
// must be an absolute http or https URL.
func Endpoint(u string) S3Option {
	return s3Option(func(s *s3Backend) {
		if reason := urlProblem(u, `leave out cache.Endpoint for AWS, or give the service's URL, such as "http://minio:9000"`); reason != "" {
			s.fail("endpoint_url", displayURL(u), reason)
			return
		}
		s.endpoint = u
	})
}

// PathStyle addresses the bucket in the URL path (endpoint/bucket/key)
// rather than as a subdomain (bucket.endpoint/key), as many S3-compatible
// services need. The default is false.
func PathStyle(enabled bool) S3Option {
	return s3Option(func(s *s3Backend) { s.pathStyle = &enabled })
}

// Credentials sets the AWS credentials the builder uses; sessionToken may be
// empty for long-term keys. By default the builder uses its own AWS
// credentials. None of the three values ever appears in String or in
// errors.
func Credentials(accessKeyID, secretAccessKey, sessionToken string) S3Option {
	return s3Option(func(s *s3Backend) {
		ok := true
		if accessKeyID == "" {
			s.fail("access_key_id", "", "must not be empty (give the AWS access key id, or leave out cache.Credentials for the default AWS credentials)")
			ok = false
		}
		if secretAccessKey == "" {
			s.fail("secret_access_key", "", "must not be empty (give the secret access key that goes with the key id, or leave out cache.Credentials for the default AWS credentials)")
			ok = false
		}
		if ok {
			s.accessKeyID, s.secretAccessKey, s.sessionToken = accessKeyID, secretAccessKey, sessionToken
		}
	})
}

// UploadParallelism sets how many layers an export uploads at once. The
// default is 4. It must be positive.
func UploadParallelism(n int) S3Option {
	return s3Option(func(s *s3Backend) {
		if n <= 0 {
			s.fail("upload_parallelism", strconv.Itoa(n), "must be positive")
			return
		}
		s.uploadParallelism = n
	})
}

// TouchRefresh sets how old a stored layer that an export would write again
// must be before the export refreshes its modification time, which keeps
// bucket lifecycle rules from expiring layers still in use. The default is
// 24 hours; 0 refreshes on every export. It must not be negative.
func TouchRefresh(d time.Duration) S3Option {
	return s3Option(func(s *s3Backend) {
		if d < 0 {
			s.fail("touch_refresh", d.String(), "must not be negative")
			return
		}
		s.touchRefresh = &d
	})
}

func (s *s3Backend) Type() string { return typeS3 }

func (s *s3Backend) ExportAttrs() (map[string]string, error) {
	if err := s.err(); err != nil {
		return nil, err
	}
	return s.exportAttrs(), nil
}

func (s *s3Backend) ImportAttrs() (map[string]string, error) {
	if err := s.err(); err != nil {
		return nil, err
	}
	return s.importAttrs(), nil
}

func (s *s3Backend) importAttrs() map[string]string {
	m := map[string]string{"bucket": s.bucket, "region": s.region}
	if s.prefix != "" {
		m["prefix"] = s.prefix
	}
	if s.manifestsPrefix != nil {
		m["manifests_prefix"] = *s.manifestsPrefix
	}
	if s.blobsPrefix != nil {
		m["blobs_prefix"] = *s.blobsPrefix
	}
	if len(s.names) > 0 {
		m["name"] = strings.Join(s.names, ";")
	}
	if s.endpoint != "" {
		m["endpoint_url"] = s.endpoint
	}
	setBool(m, "use_path_style", s.pathStyle)
	if s.accessKeyID != "" {
		m["access_key_id"] = s.accessKeyID
		m["secret_access_key"] = s.secretAccessKey
		if s.sessionToken != "" {
			m["session_token"] = s.sessionToken
		}
	}
	return m
}

func (s *s3Backend) exportAttrs() map[string]string {
	m := s.importAttrs()
	if s.uploadParallelism != 0 {
		m["upload_parallelism"] = strconv.Itoa(s.uploadParallelism)
	}
	if s.touchRefresh != nil {
		m["touch_refresh"] = s.touchRefresh.String()
	}
	s.export.attrs(m)
	return m
}

func (s *s3Backend) String() string {
	return render(typeS3, s.exportAttrs())
}
