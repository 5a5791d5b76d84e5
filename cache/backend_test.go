package cache_test

import (
	"errors"
	"maps"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/larder-build/larder/cache"
)

const (
	testDigest = "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4"
	ref        = "registry.example.com/team/app:buildcache"

	// Secrets used below; none may appear in String or in an error.
	secretToken  = "ghs_SECRETTOKEN1234"
	secretGH     = "ghp_SECRETGITHUB5678"
	secretKeyID  = "AKIASECRETKEYID"
	secretKey    = "SECRETACCESSKEY/abc+def"
	secretSess   = "SECRETSESSIONTOKEN=="
	secretURLPwd = "hunter2pass"
)

var ghaEnv = []string{"ACTIONS_CACHE_URL", "ACTIONS_RESULTS_URL", "ACTIONS_RUNTIME_TOKEN", "ACTIONS_CACHE_SERVICE_V2"}

// setGHAEnv clears the GitHub Actions variables, then sets kv (key, value,
// key, value, ...), so tests do not depend on where they run.
func setGHAEnv(t *testing.T, kv ...string) {
	t.Helper()
	for _, k := range ghaEnv {
		t.Setenv(k, "")
	}
	for i := 0; i+1 < len(kv); i += 2 {
		t.Setenv(kv[i], kv[i+1])
	}
}

type attrsCase struct {
	name    string
	backend func() cache.Backend
	export  map[string]string // nil: ExportAttrs must fail
	imp     map[string]string // nil: ImportAttrs must fail
	str     string
}

func TestAttrs(t *testing.T) {
	setGHAEnv(t)
	tests := []attrsCase{
		{
			name:    "registry defaults",
			backend: func() cache.Backend { return cache.Registry(ref) },
			export:  map[string]string{"ref": ref, "mode": "min"},
			imp:     map[string]string{"ref": ref},
			str:     "type=registry,ref=" + ref + ",mode=min",
		},
		{
			name:    "registry max",
			backend: func() cache.Backend { return cache.Registry(ref, cache.ModeMax) },
			export:  map[string]string{"ref": ref, "mode": "max"},
			imp:     map[string]string{"ref": ref},
			str:     "type=registry,ref=" + ref + ",mode=max",
		},
		{
			name: "registry every option",
			backend: func() cache.Backend {
				return cache.Registry("127.0.0.1:5000/app:buildcache",
					cache.ModeMax, cache.IgnoreError(true), cache.ImageManifest(true), cache.OCIMediaTypes(true),
					cache.Compression(cache.Zstd), cache.CompressionLevel(22), cache.ForceCompression(true),
					cache.Insecure(true))
			},
			export: map[string]string{
				"ref": "127.0.0.1:5000/app:buildcache", "mode": "max", "ignore-error": "true",
				"image-manifest": "true", "oci-mediatypes": "true", "compression": "zstd",
				"compression-level": "22", "force-compression": "true", "registry.insecure": "true",
			},
			imp: map[string]string{"ref": "127.0.0.1:5000/app:buildcache", "registry.insecure": "true"},
			str: "type=registry,ref=127.0.0.1:5000/app:buildcache,mode=max,compression=zstd,compression-level=22," +
				"force-compression=true,ignore-error=true,image-manifest=true,oci-mediatypes=true,registry.insecure=true",
		},
		{
			name:    "registry docker media types",
			backend: func() cache.Backend { return cache.Registry("app:cache", cache.OCIMediaTypes(false)) },
			export:  map[string]string{"ref": "app:cache", "mode": "min", "oci-mediatypes": "false"},
			imp:     map[string]string{"ref": "app:cache"},
			str:     "type=registry,ref=app:cache,mode=min,oci-mediatypes=false",
		},
		{
			name: "registry last option wins",
			backend: func() cache.Backend {
				return cache.Registry(ref, cache.ModeMax, cache.ModeMin, cache.Compression(cache.Zstd), cache.Compression(cache.Gzip))
			},
			export: map[string]string{"ref": ref, "mode": "min", "compression": "gzip"},
			imp:    map[string]string{"ref": ref},
			str:    "type=registry,ref=" + ref + ",mode=min,compression=gzip",
		},
		{
			name: "registry gzip and estargz levels",
			backend: func() cache.Backend {
				return cache.Registry(ref, cache.Compression(cache.Estargz), cache.CompressionLevel(0))
			},
			export: map[string]string{"ref": ref, "mode": "min", "compression": "estargz", "compression-level": "0"},
			imp:    map[string]string{"ref": ref},
			str:    "type=registry,ref=" + ref + ",mode=min,compression=estargz,compression-level=0",
		},
		{
			name:    "registry default gzip level",
			backend: func() cache.Backend { return cache.Registry(ref, cache.CompressionLevel(9)) },
			export:  map[string]string{"ref": ref, "mode": "min", "compression-level": "9"},
			imp:     map[string]string{"ref": ref},
			str:     "type=registry,ref=" + ref + ",mode=min,compression-level=9",
		},
		{
			name:    "registry digest ref imports only",
			backend: func() cache.Backend { return cache.Registry("app@" + testDigest) },
			export:  nil,
			imp:     map[string]string{"ref": "app@" + testDigest},
			str:     "type=registry,ref=app@" + testDigest + ",mode=min",
		},
		{
			name:    "local defaults",
			backend: func() cache.Backend { return cache.Local("/tmp/cache") },
			export:  map[string]string{"dest": "/tmp/cache", "mode": "min"},
			imp:     map[string]string{"src": "/tmp/cache"},
			str:     "type=local,dest=/tmp/cache,src=/tmp/cache,mode=min",
		},
		{
			name: "local every option",
			backend: func() cache.Backend {
				return cache.Local("cache dir,1", cache.ModeMax, cache.Tag("v1.2_x"), cache.Digest(testDigest), cache.Reset(true),
					cache.IgnoreError(false), cache.Compression(cache.Uncompressed), cache.ImageManifest(false), cache.OCIMediaTypes(false))
			},
			export: map[string]string{
				"dest": "cache dir,1", "tag": "v1.2_x", "reset": "true", "mode": "max", "ignore-error": "false",
				"compression": "uncompressed", "image-manifest": "false", "oci-mediatypes": "false",
			},
			imp: map[string]string{"src": "cache dir,1", "tag": "v1.2_x", "digest": testDigest},
			str: `type=local,"dest=cache dir,1","src=cache dir,1",mode=max,compression=uncompressed,digest=` + testDigest +
				",ignore-error=false,image-manifest=false,oci-mediatypes=false,reset=true,tag=v1.2_x",
		},
		{
			name:    "inline",
			backend: cache.Inline,
			export:  map[string]string{},
			imp:     nil,
			str:     "type=inline",
		},
		{
			name: "gha explicit v1",
			backend: func() cache.Backend {
				return cache.GHA(cache.URL("https://cache.example.com/abc/"), cache.Token(secretToken))
			},
			export: map[string]string{"scope": "buildkit", "url": "https://cache.example.com/abc/", "token": secretToken, "mode": "min"},
			imp:    map[string]string{"scope": "buildkit", "url": "https://cache.example.com/abc/", "token": secretToken},
			str:    "type=gha,scope=buildkit,mode=min,token=<redacted>,url=https://cache.example.com/abc/",
		},
		{
			name: "gha every option",
			backend: func() cache.Backend {
				return cache.GHA(cache.Scope("app-linux/amd64"), cache.URLV2("https://results.example.com/"), cache.Token(secretToken),
					cache.Version(2), cache.Timeout(90*time.Second), cache.GitHubAPI("octo/app", secretGH),
					cache.ModeMax, cache.IgnoreError(true))
			},
			export: map[string]string{
				"scope": "app-linux/amd64", "url_v2": "https://results.example.com/", "token": secretToken, "version": "2",
				"timeout": "1m30s", "repository": "octo/app", "ghtoken": secretGH, "mode": "max", "ignore-error": "true",
			},
			imp: map[string]string{
				"scope": "app-linux/amd64", "url_v2": "https://results.example.com/", "token": secretToken, "version": "2",
				"timeout": "1m30s",
			},
			str: "type=gha,scope=app-linux/amd64,mode=max,ghtoken=<redacted>,ignore-error=true,repository=octo/app," +
				"timeout=1m30s,token=<redacted>,url_v2=https://results.example.com/,version=2",
		},
		{
			name: "gha url user information is redacted in String",
			backend: func() cache.Backend {
				return cache.GHA(cache.URL("https://user:"+secretURLPwd+"@cache.example.com/"), cache.Token(secretToken))
			},
			export: map[string]string{"scope": "buildkit", "url": "https://user:" + secretURLPwd + "@cache.example.com/", "token": secretToken, "mode": "min"},
			imp:    map[string]string{"scope": "buildkit", "url": "https://user:" + secretURLPwd + "@cache.example.com/", "token": secretToken},
			str:    "type=gha,scope=buildkit,mode=min,token=<redacted>,url=https://redacted@cache.example.com/",
		},
		{
			name:    "s3 defaults",
			backend: func() cache.Backend { return cache.S3("my-bucket", "eu-west-1") },
			export:  map[string]string{"bucket": "my-bucket", "region": "eu-west-1", "mode": "min"},
			imp:     map[string]string{"bucket": "my-bucket", "region": "eu-west-1"},
			str:     "type=s3,bucket=my-bucket,region=eu-west-1,mode=min",
		},
		{
			name: "s3 every option",
			backend: func() cache.Backend {
				return cache.S3("my-bucket", "us-east-1", cache.Prefix("app/"), cache.ManifestsPrefix(""), cache.BlobsPrefix("b/"),
					cache.Name("main", "pr-12"), cache.Endpoint("http://minio:9000"), cache.PathStyle(true),
					cache.Credentials(secretKeyID, secretKey, secretSess), cache.UploadParallelism(8), cache.TouchRefresh(12*time.Hour),
					cache.ModeMax, cache.IgnoreError(true))
			},
			export: map[string]string{
				"bucket": "my-bucket", "region": "us-east-1", "prefix": "app/", "manifests_prefix": "", "blobs_prefix": "b/",
				"name": "main;pr-12", "endpoint_url": "http://minio:9000", "use_path_style": "true",
				"access_key_id": secretKeyID, "secret_access_key": secretKey, "session_token": secretSess,
				"upload_parallelism": "8", "touch_refresh": "12h0m0s", "mode": "max", "ignore-error": "true",
			},
			imp: map[string]string{
				"bucket": "my-bucket", "region": "us-east-1", "prefix": "app/", "manifests_prefix": "", "blobs_prefix": "b/",
				"name": "main;pr-12", "endpoint_url": "http://minio:9000", "use_path_style": "true",
				"access_key_id": secretKeyID, "secret_access_key": secretKey, "session_token": secretSess,
			},
			str: "type=s3,bucket=my-bucket,region=us-east-1,mode=max,access_key_id=<redacted>,blobs_prefix=b/," +
				"endpoint_url=http://minio:9000,ignore-error=true,manifests_prefix=,name=main;pr-12,prefix=app/," +
				"secret_access_key=<redacted>,session_token=<redacted>,touch_refresh=12h0m0s,upload_parallelism=8,use_path_style=true",
		},
		{
			name: "s3 long-term keys without session token",
			backend: func() cache.Backend {
				return cache.S3("b", "r", cache.Credentials(secretKeyID, secretKey, ""), cache.TouchRefresh(0))
			},
			export: map[string]string{"bucket": "b", "region": "r", "access_key_id": secretKeyID, "secret_access_key": secretKey, "touch_refresh": "0s", "mode": "min"},
			imp:    map[string]string{"bucket": "b", "region": "r", "access_key_id": secretKeyID, "secret_access_key": secretKey},
			str:    "type=s3,bucket=b,region=r,mode=min,access_key_id=<redacted>,secret_access_key=<redacted>,touch_refresh=0s",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.backend()
			got, err := b.ExportAttrs()
			switch {
			case tt.export == nil && err == nil:
				t.Errorf("ExportAttrs() = %v, want an error", got)
			case tt.export != nil && err != nil:
				t.Errorf("ExportAttrs() error: %v", err)
			case !maps.Equal(got, tt.export):
				t.Errorf("ExportAttrs() = %v, want %v", got, tt.export)
			}
			got, err = b.ImportAttrs()
			switch {
			case tt.imp == nil && err == nil:
				t.Errorf("ImportAttrs() = %v, want an error", got)
			case tt.imp != nil && err != nil:
				t.Errorf("ImportAttrs() error: %v", err)
			case !maps.Equal(got, tt.imp):
				t.Errorf("ImportAttrs() = %v, want %v", got, tt.imp)
			}
			if s := b.String(); s != tt.str {
				t.Errorf("String() =\n%s\nwant\n%s", s, tt.str)
			}
		})
	}
}

func TestType(t *testing.T) {
	setGHAEnv(t)
	for want, b := range map[string]cache.Backend{
		"registry": cache.Registry(ref),
		"local":    cache.Local("dir"),
		"inline":   cache.Inline(),
		"gha":      cache.GHA(),
		"s3":       cache.S3("b", "r"),
	} {
		if got := b.Type(); got != want {
			t.Errorf("Type() = %q, want %q", got, want)
		}
	}
}

// TestAttrsAreFresh checks that callers may modify the maps they get, as
// BuildKit's client does with a local import's digest.
func TestAttrsAreFresh(t *testing.T) {
	b := cache.Local("dir", cache.ModeMax)
	m, _ := b.ImportAttrs()
	m["digest"] = testDigest
	m2, _ := b.ImportAttrs()
	if _, ok := m2["digest"]; ok {
		t.Errorf("ImportAttrs() returned a shared map")
	}
	e, _ := b.ExportAttrs()
	e["mode"] = "min"
	if e2, _ := b.ExportAttrs(); e2["mode"] != "max" {
		t.Errorf("ExportAttrs() returned a shared map")
	}
}

func TestRegistryRefs(t *testing.T) {
	valid := []string{
		"127.0.0.1:5000/app:buildcache",
		"registry.example.com/team/app:cache",
		"app",
		"app:cache",
		"library/app:cache",
		"docker.io/app:cache",
		"localhost/app",
		"localhost:5000/a/b/c:t",
		"Registry.Example.com/app:cache",
		"[::1]:5000/app:t",
		"reg:5000/app:t_t.x-y",
		"reg.example.com/a__b",
		"reg.example.com/a--b.c_d",
		"app:tag@" + testDigest,
	}
	for _, r := range valid {
		if _, err := cache.Registry(r).ImportAttrs(); err != nil {
			t.Errorf("Registry(%q): %v", r, err)
		}
	}
	invalid := map[string]string{
		"":                      `cache: registry backend: ref: must not be empty (give the cache's reference, such as "registry.example.com/team/app:buildcache")`,
		"App:cache":             `cache: registry backend: ref "App:cache": invalid reference: repository can only contain the characters ` + "`abcdefghijklmnopqrstuvwxyz0123456789_-./`" + `: App`,
		"app:":                  `cache: registry backend: ref "app:": invalid reference: app: must specify a tag name after the colon`,
		"http://reg/app":        `cache: registry backend: ref "http://reg/app": invalid reference: must not contain a URL scheme: drop "http://" (give "reg/app") and add cache.Insecure(true) for a plain-HTTP registry`,
		"https://reg/app":       `cache: registry backend: ref "https://reg/app": invalid reference: must not contain a URL scheme: drop "https://" (give "reg/app")`,
		"reg/app name":          `cache: registry backend: ref "reg/app name": invalid reference: repository can only contain the characters ` + "`abcdefghijklmnopqrstuvwxyz0123456789_-./`" + `: reg/app name`,
		"app:-x":                `cache: registry backend: ref "app:-x": invalid reference: tag "-x" must be 1 to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'`,
		"a..b/c":                `cache: registry backend: ref "a..b/c": invalid reference: registry "a..b" is not a valid host name (want dot-separated labels of letters, digits and '-', with an optional :port, such as registry.example.com or localhost:5000)`,
		"a/b//c":                `cache: registry backend: ref "a/b//c": invalid reference: path component "" must be lowercase letters and digits separated by '.', '_', '__' or '-'`,
		"reg.example.com/_app":  `cache: registry backend: ref "reg.example.com/_app": invalid reference: path component "_app" must be lowercase letters and digits separated by '.', '_', '__' or '-'`,
		"reg.example.com/app_":  `cache: registry backend: ref "reg.example.com/app_": invalid reference: path component "app_" must be lowercase letters and digits separated by '.', '_', '__' or '-'`,
		"reg.example.com/a___b": `cache: registry backend: ref "reg.example.com/a___b": invalid reference: path component "a___b" must be lowercase letters and digits separated by '.', '_', '__' or '-'`,
	}
	for r, want := range invalid {
		_, err := cache.Registry(r).ImportAttrs()
		if err == nil {
			t.Errorf("Registry(%q): no error, want %s", r, want)
			continue
		}
		if err.Error() != want {
			t.Errorf("Registry(%q):\n got %s\nwant %s", r, err, want)
		}
	}
}

func TestRegistryRefErrorUnwraps(t *testing.T) {
	_, err := cache.Registry("App:cache").ExportAttrs()
	var bad *name.ErrBadName
	if !errors.As(err, &bad) {
		t.Errorf("errors.As(%v, *name.ErrBadName) = false", err)
	}
}

type errCase struct {
	name    string
	backend func() cache.Backend
	export  string // the ExportAttrs error, "" if none
	imp     string // the ImportAttrs error, "" if none
}

func TestErrors(t *testing.T) {
	setGHAEnv(t)
	both := func(name string, b func() cache.Backend, msg string) errCase {
		return errCase{name: name, backend: b, export: msg, imp: msg}
	}
	tests := []errCase{
		// Mode
		both("unknown mode", func() cache.Backend { return cache.Registry(ref, cache.Mode("maxx")) },
			`cache: registry backend: mode "maxx": unknown mode (use cache.ModeMin or cache.ModeMax)`),
		both("upper-case mode", func() cache.Backend { return cache.Local("d", cache.Mode("MAX")) },
			`cache: local backend: mode "MAX": unknown mode (use cache.ModeMin or cache.ModeMax)`),
		both("empty mode", func() cache.Backend { return cache.S3("b", "r", cache.Mode("")) },
			`cache: s3 backend: mode: must not be empty (use cache.ModeMin or cache.ModeMax)`),
		both("gha mode", func() cache.Backend {
			return cache.GHA(cache.URL("https://c.example.com/"), cache.Token("t"), cache.Mode("all"))
		}, `cache: gha backend: mode "all": unknown mode (use cache.ModeMin or cache.ModeMax)`),

		// Format options
		both("image manifest without OCI media types", func() cache.Backend {
			return cache.Registry(ref, cache.ImageManifest(true), cache.OCIMediaTypes(false))
		}, `cache: registry backend: image-manifest "true": requires OCI media types (drop cache.OCIMediaTypes(false) or use cache.ImageManifest(false))`),
		both("estargz without OCI media types", func() cache.Backend {
			return cache.Local("d", cache.OCIMediaTypes(false), cache.Compression(cache.Estargz))
		}, `cache: local backend: compression "estargz": requires OCI media types (drop cache.OCIMediaTypes(false))`),
		both("unknown compression", func() cache.Backend { return cache.Registry(ref, cache.Compression("brotli")) },
			`cache: registry backend: compression "brotli": unknown compression (use cache.Gzip, cache.Zstd, cache.Estargz or cache.Uncompressed)`),
		both("empty compression", func() cache.Backend { return cache.Registry(ref, cache.Compression("")) },
			`cache: registry backend: compression: must not be empty (use cache.Gzip, cache.Zstd, cache.Estargz or cache.Uncompressed)`),
		both("gzip level too high", func() cache.Backend { return cache.Registry(ref, cache.CompressionLevel(10)) },
			`cache: registry backend: compression-level "10": out of range for gzip (0-9)`),
		both("negative gzip level", func() cache.Backend {
			return cache.Registry(ref, cache.CompressionLevel(-1), cache.Compression(cache.Gzip))
		}, `cache: registry backend: compression-level "-1": out of range for gzip (0-9)`),
		both("zstd level too high", func() cache.Backend {
			return cache.Local("d", cache.CompressionLevel(23), cache.Compression(cache.Zstd))
		}, `cache: local backend: compression-level "23": out of range for zstd (0-22)`),
		both("estargz level too high", func() cache.Backend {
			return cache.Registry(ref, cache.Compression(cache.Estargz), cache.CompressionLevel(12))
		}, `cache: registry backend: compression-level "12": out of range for estargz (0-9)`),
		both("level for uncompressed", func() cache.Backend {
			return cache.Registry(ref, cache.Compression(cache.Uncompressed), cache.CompressionLevel(1))
		}, `cache: registry backend: compression-level "1": not used with uncompressed layers (drop cache.CompressionLevel)`),

		// Registry
		{
			name:    "export to a digest",
			backend: func() cache.Backend { return cache.Registry("app@" + testDigest) },
			export:  `cache: registry backend: ref "app@` + testDigest + `": cannot export to a digest reference (use a tag, such as app:buildcache)`,
		},
		both("nil option", func() cache.Backend { return cache.Registry(ref, nil) },
			`cache: registry backend: nil option (leave it out of the list)`),
		both("every error is reported", func() cache.Backend {
			return cache.Registry("", cache.Mode("x"), cache.CompressionLevel(99))
		}, `cache: registry backend: ref: must not be empty (give the cache's reference, such as "registry.example.com/team/app:buildcache")`+"\n"+
			`cache: registry backend: mode "x": unknown mode (use cache.ModeMin or cache.ModeMax)`+"\n"+
			`cache: registry backend: compression-level "99": out of range for gzip (0-9)`),

		// Local
		both("empty dir", func() cache.Backend { return cache.Local("") },
			`cache: local backend: dir: must not be empty (give the directory on the client that holds the cache, such as "/var/cache/buildkit")`),
		both("empty tag", func() cache.Backend { return cache.Local("d", cache.Tag("")) },
			`cache: local backend: tag: must not be empty (leave out cache.Tag to use "latest", or give one such as "buildcache")`),
		both("bad tag", func() cache.Backend { return cache.Local("d", cache.Tag("latest ")) },
			`cache: local backend: tag "latest ": invalid tag (use 1 to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-')`),
		both("tag too long", func() cache.Backend { return cache.Local("d", cache.Tag(strings.Repeat("a", 129))) },
			`cache: local backend: tag "`+strings.Repeat("a", 129)+`": invalid tag (use 1 to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-')`),
		both("empty digest", func() cache.Backend { return cache.Local("d", cache.Digest("")) },
			`cache: local backend: digest: must not be empty (leave out cache.Digest to look the cache up by tag, or give one such as "sha256:" and 64 lowercase hex digits)`),
		both("bad digest", func() cache.Backend { return cache.Local("d", cache.Digest("sha256:abc")) },
			`cache: local backend: digest "sha256:abc": invalid digest (want sha256:, sha384: or sha512: and lowercase hex)`),
		both("digest without algorithm", func() cache.Backend { return cache.Local("d", cache.Digest(testDigest[7:])) },
			`cache: local backend: digest "`+testDigest[7:]+`": invalid digest (want sha256:, sha384: or sha512: and lowercase hex)`),
		both("local nil option", func() cache.Backend { return cache.Local("d", nil) },
			`cache: local backend: nil option (leave it out of the list)`),

		// Inline
		{
			name:    "inline import",
			backend: cache.Inline,
			imp:     `cache: inline backend: cannot be imported: inline cache travels in the pushed image (import it with cache.Registry(imageRef))`,
		},

		// GHA options
		both("empty scope", func() cache.Backend { return cache.GHA(cache.Scope("")) },
			`cache: gha backend: scope: must not be empty (leave out cache.Scope to use "buildkit", or give one such as "app-linux-amd64")`),
		both("scope with comma", func() cache.Backend { return cache.GHA(cache.Scope("a,b")) },
			`cache: gha backend: scope "a,b": must not contain a comma, which GitHub Actions cache keys cannot hold (use '-' instead, as in "a-b")`),
		both("empty url", func() cache.Backend { return cache.GHA(cache.URL("")) },
			`cache: gha backend: url: must not be empty (leave out cache.URL to read ACTIONS_CACHE_URL or ACTIONS_RESULTS_URL, or give the cache service's URL, such as "https://cache.example.com/")`),
		both("relative url", func() cache.Backend { return cache.GHA(cache.URL("cache.example.com/x")) },
			`cache: gha backend: url "cache.example.com/x": must be an absolute http:// or https:// URL`),
		both("ftp url_v2", func() cache.Backend { return cache.GHA(cache.URLV2("ftp://x/")) },
			`cache: gha backend: url_v2 "ftp://x/": must be an absolute http:// or https:// URL`),
		both("bad url with password", func() cache.Backend {
			return cache.GHA(cache.URL("https://u:" + secretURLPwd + "@bad host/"))
		}, `cache: gha backend: url "<redacted>": must be an absolute http:// or https:// URL`),
		both("url without host keeps user out", func() cache.Backend {
			return cache.GHA(cache.URL("https://u:" + secretURLPwd + "@/x"))
		}, `cache: gha backend: url "https://redacted@/x": must be an absolute http:// or https:// URL`),
		both("empty token", func() cache.Backend { return cache.GHA(cache.Token("")) },
			`cache: gha backend: token: must not be empty (leave out cache.Token to read ACTIONS_RUNTIME_TOKEN, or give the runner's token)`),
		both("unknown version", func() cache.Backend { return cache.GHA(cache.Version(3)) },
			`cache: gha backend: version "3": unknown cache service version (use 1 or 2)`),
		both("url_v2 with version 1", func() cache.Backend {
			return cache.GHA(cache.Version(1), cache.URLV2("https://r.example.com/"), cache.Token("t"))
		}, `cache: gha backend: url_v2 "https://r.example.com/": not used with cache.Version(1) (drop one of them)`),
		both("zero timeout", func() cache.Backend { return cache.GHA(cache.Timeout(0)) },
			`cache: gha backend: timeout "0s": must be positive`),
		both("bad repository and empty github token", func() cache.Backend { return cache.GHA(cache.GitHubAPI("octo", "")) },
			`cache: gha backend: repository "octo": invalid repository (use "owner/name")`+"\n"+
				`cache: gha backend: ghtoken: must not be empty (give a GitHub token that can read the repository's Actions cache, such as the workflow's GITHUB_TOKEN)`),
		both("gha nil option", func() cache.Backend { return cache.GHA(nil) },
			`cache: gha backend: nil option (leave it out of the list)`),

		// GHA environment
		both("no url and no token", func() cache.Backend { return cache.GHA() },
			"cache: gha backend: url: not set (use cache.URL or set ACTIONS_CACHE_URL or ACTIONS_RESULTS_URL)\n"+
				"cache: gha backend: token: not set (use cache.Token or set ACTIONS_RUNTIME_TOKEN)"),
		both("no token", func() cache.Backend { return cache.GHA(cache.URL("https://c.example.com/")) },
			"cache: gha backend: token: not set (use cache.Token or set ACTIONS_RUNTIME_TOKEN)"),
		both("no url for version 2", func() cache.Backend { return cache.GHA(cache.Version(2), cache.Token("t")) },
			"cache: gha backend: url: not set (use cache.URLV2 or set ACTIONS_RESULTS_URL)"),

		// S3
		both("empty bucket and region", func() cache.Backend { return cache.S3("", "") },
			`cache: s3 backend: bucket: must not be empty (give the bucket's name, such as "team-buildcache")`+"\n"+
				`cache: s3 backend: region: must not be empty (give the bucket's region, such as "eu-west-1", or "us-east-1" for a service without regions)`),
		both("bucket with path", func() cache.Backend { return cache.S3("bucket/app", "r") },
			`cache: s3 backend: bucket "bucket/app": must not contain '/' (use cache.Prefix for a folder within the bucket)`),
		both("bucket with space", func() cache.Backend { return cache.S3("my bucket", "r") },
			`cache: s3 backend: bucket "my bucket": must not contain spaces (a bucket name is lowercase letters, digits, '.' and '-', such as "team-buildcache")`),
		both("region with space", func() cache.Backend { return cache.S3("b", "eu-west-1 ") },
			`cache: s3 backend: region "eu-west-1 ": must not contain spaces (give the region's code, such as "eu-west-1")`),
		both("no names", func() cache.Backend { return cache.S3("b", "r", cache.Name()) },
			`cache: s3 backend: name: needs at least one name`),
		both("empty name", func() cache.Backend { return cache.S3("b", "r", cache.Name("a", "")) },
			`cache: s3 backend: name: must not be empty (give each name as an argument, such as cache.Name("app"), or leave out cache.Name to use "buildkit")`),
		both("name with semicolon", func() cache.Backend { return cache.S3("b", "r", cache.Name("a;b")) },
			`cache: s3 backend: name "a;b": must not contain ';' (give several names as separate arguments)`),
		both("bad endpoint", func() cache.Backend { return cache.S3("b", "r", cache.Endpoint("minio:9000")) },
			`cache: s3 backend: endpoint_url "minio:9000": must be an absolute http:// or https:// URL`),
		both("empty credentials", func() cache.Backend { return cache.S3("b", "r", cache.Credentials("", "", secretSess)) },
			"cache: s3 backend: access_key_id: must not be empty (give the AWS access key id, or leave out cache.Credentials for the default AWS credentials)\n"+
				"cache: s3 backend: secret_access_key: must not be empty (give the secret access key that goes with the key id, or leave out cache.Credentials for the default AWS credentials)"),
		both("missing secret key", func() cache.Backend { return cache.S3("b", "r", cache.Credentials(secretKeyID, "", "")) },
			"cache: s3 backend: secret_access_key: must not be empty (give the secret access key that goes with the key id, or leave out cache.Credentials for the default AWS credentials)"),
		both("zero parallelism", func() cache.Backend { return cache.S3("b", "r", cache.UploadParallelism(0)) },
			`cache: s3 backend: upload_parallelism "0": must be positive`),
		both("negative touch refresh", func() cache.Backend { return cache.S3("b", "r", cache.TouchRefresh(-time.Hour)) },
			`cache: s3 backend: touch_refresh "-1h0m0s": must not be negative`),
		both("s3 nil option", func() cache.Backend { return cache.S3("b", "r", nil) },
			`cache: s3 backend: nil option (leave it out of the list)`),
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.backend()
			_, err := b.ExportAttrs()
			checkErr(t, "ExportAttrs", err, tt.export)
			_, err = b.ImportAttrs()
			checkErr(t, "ImportAttrs", err, tt.imp)
		})
	}
}

func checkErr(t *testing.T, what string, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("%s() error: %v", what, err)
	case want != "" && err == nil:
		t.Errorf("%s() = nil error, want %s", what, want)
	case want != "" && err.Error() != want:
		t.Errorf("%s() error:\n got %s\nwant %s", what, err, want)
	}
	if err == nil {
		return
	}
	var e *cache.Error
	if !errors.As(err, &e) {
		t.Errorf("%s() error %v is not a *cache.Error", what, err)
	}
}

func TestErrorFields(t *testing.T) {
	_, err := cache.Registry(ref, cache.ModeMax, cache.Mode("maxx")).ExportAttrs()
	var e *cache.Error
	if !errors.As(err, &e) {
		t.Fatalf("errors.As(%v) = false", err)
	}
	want := cache.Error{Backend: "registry", Option: "mode", Value: "maxx", Reason: "unknown mode (use cache.ModeMin or cache.ModeMax)"}
	if *e != want {
		t.Errorf("error = %#v, want %#v", *e, want)
	}

	// Several errors are joined; errors.As finds the first.
	_, err = cache.S3("", "r", cache.UploadParallelism(-1)).ImportAttrs()
	if !errors.As(err, &e) || e.Option != "bucket" {
		t.Errorf("errors.As(%v) = %#v, want the bucket error", err, e)
	}
}

func TestParseMode(t *testing.T) {
	for _, s := range []string{"min", "max"} {
		m, err := cache.ParseMode(s)
		if err != nil || string(m) != s {
			t.Errorf("ParseMode(%q) = %q, %v", s, m, err)
		}
	}
	for s, want := range map[string]string{
		"maxx": `cache: mode "maxx": unknown mode (use cache.ModeMin or cache.ModeMax)`,
		"Max":  `cache: mode "Max": unknown mode (use cache.ModeMin or cache.ModeMax)`,
		" min": `cache: mode " min": unknown mode (use cache.ModeMin or cache.ModeMax)`,
		"":     `cache: mode: must not be empty (use cache.ModeMin or cache.ModeMax)`,
	} {
		m, err := cache.ParseMode(s)
		if err == nil || err.Error() != want {
			t.Errorf("ParseMode(%q) = %q, %v; want error %s", s, m, err, want)
		}
		var e *cache.Error
		if !errors.As(err, &e) || e.Backend != "" || e.Option != "mode" {
			t.Errorf("ParseMode(%q) error = %#v", s, e)
		}
	}
}

func TestGHAEnvironment(t *testing.T) {
	const (
		cacheURL   = "https://artifactcache.example.com/abc/"
		resultsURL = "https://results-receiver.example.com/"
		envToken   = "ENVTOKEN_SECRET"
	)
	tests := []struct {
		name string
		env  []string
		opts []cache.GHAOption
		want map[string]string // import attributes; nil: an error
		err  string
	}{
		{
			name: "v1 from ACTIONS_CACHE_URL",
			env:  []string{"ACTIONS_CACHE_URL", cacheURL, "ACTIONS_RESULTS_URL", resultsURL, "ACTIONS_RUNTIME_TOKEN", envToken},
			want: map[string]string{"scope": "buildkit", "url": cacheURL, "token": envToken},
		},
		{
			name: "v1 falls back to ACTIONS_RESULTS_URL",
			env:  []string{"ACTIONS_RESULTS_URL", resultsURL, "ACTIONS_RUNTIME_TOKEN", envToken},
			want: map[string]string{"scope": "buildkit", "url": resultsURL, "token": envToken},
		},
		{
			name: "v2 from ACTIONS_CACHE_SERVICE_V2",
			env: []string{"ACTIONS_CACHE_SERVICE_V2", "true", "ACTIONS_CACHE_URL", cacheURL,
				"ACTIONS_RESULTS_URL", resultsURL, "ACTIONS_RUNTIME_TOKEN", envToken},
			want: map[string]string{"scope": "buildkit", "url_v2": resultsURL, "token": envToken},
		},
		{
			name: "ACTIONS_CACHE_SERVICE_V2 accepts 1",
			env:  []string{"ACTIONS_CACHE_SERVICE_V2", "1", "ACTIONS_RESULTS_URL", resultsURL, "ACTIONS_RUNTIME_TOKEN", envToken},
			want: map[string]string{"scope": "buildkit", "url_v2": resultsURL, "token": envToken},
		},
		{
			name: "ACTIONS_CACHE_SERVICE_V2 false",
			env:  []string{"ACTIONS_CACHE_SERVICE_V2", "false", "ACTIONS_RESULTS_URL", resultsURL, "ACTIONS_RUNTIME_TOKEN", envToken},
			want: map[string]string{"scope": "buildkit", "url": resultsURL, "token": envToken},
		},
		{
			name: "v2 without ACTIONS_RESULTS_URL uses ACTIONS_CACHE_URL",
			env:  []string{"ACTIONS_CACHE_SERVICE_V2", "true", "ACTIONS_CACHE_URL", cacheURL, "ACTIONS_RUNTIME_TOKEN", envToken},
			want: map[string]string{"scope": "buildkit", "url": cacheURL, "token": envToken},
		},
		{
			name: "explicit version 1 ignores ACTIONS_CACHE_SERVICE_V2",
			env: []string{"ACTIONS_CACHE_SERVICE_V2", "true", "ACTIONS_CACHE_URL", cacheURL,
				"ACTIONS_RESULTS_URL", resultsURL, "ACTIONS_RUNTIME_TOKEN", envToken},
			opts: []cache.GHAOption{cache.Version(1)},
			want: map[string]string{"scope": "buildkit", "version": "1", "url": cacheURL, "token": envToken},
		},
		{
			name: "explicit version 2",
			env:  []string{"ACTIONS_CACHE_URL", cacheURL, "ACTIONS_RESULTS_URL", resultsURL, "ACTIONS_RUNTIME_TOKEN", envToken},
			opts: []cache.GHAOption{cache.Version(2)},
			want: map[string]string{"scope": "buildkit", "version": "2", "url_v2": resultsURL, "token": envToken},
		},
		{
			name: "options win over the environment",
			env:  []string{"ACTIONS_CACHE_URL", cacheURL, "ACTIONS_RUNTIME_TOKEN", envToken},
			opts: []cache.GHAOption{cache.URL("https://mine.example.com/"), cache.Token("mine")},
			want: map[string]string{"scope": "buildkit", "url": "https://mine.example.com/", "token": "mine"},
		},
		{
			name: "explicit url is not overridden by the v2 switch",
			env: []string{"ACTIONS_CACHE_SERVICE_V2", "true", "ACTIONS_CACHE_URL", cacheURL,
				"ACTIONS_RESULTS_URL", resultsURL, "ACTIONS_RUNTIME_TOKEN", envToken},
			opts: []cache.GHAOption{cache.URL("https://mine.example.com/")},
			want: map[string]string{"scope": "buildkit", "url": "https://mine.example.com/", "token": envToken},
		},
		{
			name: "explicit url with version 2",
			env:  []string{"ACTIONS_RESULTS_URL", resultsURL, "ACTIONS_RUNTIME_TOKEN", envToken},
			opts: []cache.GHAOption{cache.Version(2), cache.URL("https://mine.example.com/")},
			want: map[string]string{"scope": "buildkit", "version": "2", "url": "https://mine.example.com/", "token": envToken},
		},
		{
			name: "explicit url_v2 leaves url unset",
			env:  []string{"ACTIONS_CACHE_URL", cacheURL, "ACTIONS_RUNTIME_TOKEN", envToken},
			opts: []cache.GHAOption{cache.URLV2("https://mine.example.com/")},
			want: map[string]string{"scope": "buildkit", "url_v2": "https://mine.example.com/", "token": envToken},
		},
		{
			name: "token from the environment, url missing",
			env:  []string{"ACTIONS_RUNTIME_TOKEN", envToken},
			err:  "cache: gha backend: url: not set (use cache.URL or set ACTIONS_CACHE_URL or ACTIONS_RESULTS_URL)",
		},
		{
			name: "v2 switch, no url",
			env:  []string{"ACTIONS_CACHE_SERVICE_V2", "true", "ACTIONS_RUNTIME_TOKEN", envToken},
			err:  "cache: gha backend: url: not set (use cache.URLV2 or set ACTIONS_RESULTS_URL)",
		},
		{
			name: "url missing token",
			env:  []string{"ACTIONS_CACHE_URL", cacheURL},
			err:  "cache: gha backend: token: not set (use cache.Token or set ACTIONS_RUNTIME_TOKEN)",
		},
		{
			name: "bad ACTIONS_CACHE_URL",
			env:  []string{"ACTIONS_CACHE_URL", "not a url", "ACTIONS_RUNTIME_TOKEN", envToken},
			err:  `cache: gha backend: url "not a url": from ACTIONS_CACHE_URL: must be an absolute http:// or https:// URL`,
		},
		{
			name: "bad ACTIONS_RESULTS_URL for v2",
			env:  []string{"ACTIONS_CACHE_SERVICE_V2", "true", "ACTIONS_RESULTS_URL", "results", "ACTIONS_RUNTIME_TOKEN", envToken},
			err:  `cache: gha backend: url_v2 "results": from ACTIONS_RESULTS_URL: must be an absolute http:// or https:// URL`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setGHAEnv(t, tt.env...)
			b := cache.GHA(tt.opts...)
			got, err := b.ImportAttrs()
			if tt.want != nil {
				if err != nil {
					t.Fatalf("ImportAttrs() error: %v", err)
				}
				if !maps.Equal(got, tt.want) {
					t.Errorf("ImportAttrs() = %v, want %v", got, tt.want)
				}
				exp, err := b.ExportAttrs()
				if err != nil {
					t.Fatalf("ExportAttrs() error: %v", err)
				}
				want := maps.Clone(tt.want)
				want["mode"] = "min"
				if !maps.Equal(exp, want) {
					t.Errorf("ExportAttrs() = %v, want %v", exp, want)
				}
			} else {
				checkErr(t, "ImportAttrs", err, tt.err)
				_, err = b.ExportAttrs()
				checkErr(t, "ExportAttrs", err, tt.err)
			}
			if s := b.String(); strings.Contains(s, envToken) {
				t.Errorf("String() = %s shows the token", s)
			}
		})
	}
}

// TestGHAReadsEnvironmentLate checks that the environment is read when the
// attributes are computed, not when the backend is constructed.
func TestGHAReadsEnvironmentLate(t *testing.T) {
	setGHAEnv(t)
	b := cache.GHA()
	if _, err := b.ImportAttrs(); err == nil {
		t.Fatal("ImportAttrs() without environment: no error")
	}
	setGHAEnv(t, "ACTIONS_CACHE_URL", "https://c.example.com/", "ACTIONS_RUNTIME_TOKEN", "tok")
	if _, err := b.ImportAttrs(); err != nil {
		t.Errorf("ImportAttrs() after setting the environment: %v", err)
	}
}

// TestSecretsNeverShown checks that credentials appear neither in String nor
// in any error, whatever else is wrong with the backend.
func TestSecretsNeverShown(t *testing.T) {
	setGHAEnv(t, "ACTIONS_RUNTIME_TOKEN", secretToken)
	secrets := []string{secretToken, secretGH, secretKeyID, secretKey, secretSess, secretURLPwd}
	backends := []cache.Backend{
		cache.GHA(cache.Token(secretToken), cache.GitHubAPI("octo/app", secretGH), cache.URL("https://u:"+secretURLPwd+"@c.example.com/")),
		cache.GHA(cache.Token(secretToken), cache.GitHubAPI("bad", secretGH), cache.Mode("bad")),
		cache.GHA(cache.URL("https://u:" + secretURLPwd + "@bad host/")),
		cache.GHA(cache.URLV2("https://u:" + secretURLPwd + "@/")),
		cache.GHA(cache.GitHubAPI("octo/app", secretGH)),
		cache.S3("b", "r", cache.Credentials(secretKeyID, secretKey, secretSess)),
		cache.S3("b", "r", cache.Credentials(secretKeyID, "", secretSess), cache.Mode("bad")),
		cache.S3("b", "r", cache.Credentials("", secretKey, secretSess), cache.Endpoint("https://u:"+secretURLPwd+"@minio/")),
		cache.S3("", "", cache.Credentials(secretKeyID, secretKey, secretSess), cache.Endpoint("u:"+secretURLPwd+"@minio")),
	}
	for i, b := range backends {
		texts := []string{b.String()}
		if _, err := b.ExportAttrs(); err != nil {
			texts = append(texts, err.Error())
		}
		if _, err := b.ImportAttrs(); err != nil {
			texts = append(texts, err.Error())
		}
		for _, text := range texts {
			for _, s := range secrets {
				if strings.Contains(text, s) {
					t.Errorf("backend %d: %q shows secret %q", i, text, s)
				}
			}
		}
	}
}

// TestOptionAcceptance checks which backends accept which options. An option
// a backend does not understand does not compile, which is checked here
// through the option interfaces.
func TestOptionAcceptance(t *testing.T) {
	var (
		registry = reflect.TypeFor[cache.RegistryOption]()
		local    = reflect.TypeFor[cache.LocalOption]()
		gha      = reflect.TypeFor[cache.GHAOption]()
		s3       = reflect.TypeFor[cache.S3Option]()
	)
	all := []reflect.Type{registry, local, gha, s3}
	tests := []struct {
		name   string
		opt    any
		accept []reflect.Type
	}{
		{"ModeMax", cache.ModeMax, all},
		{"IgnoreError", cache.IgnoreError(true), all},
		{"ImageManifest", cache.ImageManifest(true), []reflect.Type{registry, local}},
		{"OCIMediaTypes", cache.OCIMediaTypes(true), []reflect.Type{registry, local}},
		{"Compression", cache.Compression(cache.Zstd), []reflect.Type{registry, local}},
		{"CompressionLevel", cache.CompressionLevel(3), []reflect.Type{registry, local}},
		{"ForceCompression", cache.ForceCompression(true), []reflect.Type{registry, local}},
		{"Insecure", cache.Insecure(true), []reflect.Type{registry}},
		{"Tag", cache.Tag("x"), []reflect.Type{local}},
		{"Digest", cache.Digest(testDigest), []reflect.Type{local}},
		{"Reset", cache.Reset(true), []reflect.Type{local}},
		{"Scope", cache.Scope("x"), []reflect.Type{gha}},
		{"URL", cache.URL("https://x/"), []reflect.Type{gha}},
		{"URLV2", cache.URLV2("https://x/"), []reflect.Type{gha}},
		{"Token", cache.Token("x"), []reflect.Type{gha}},
		{"Version", cache.Version(2), []reflect.Type{gha}},
		{"Timeout", cache.Timeout(time.Minute), []reflect.Type{gha}},
		{"GitHubAPI", cache.GitHubAPI("a/b", "x"), []reflect.Type{gha}},
		{"Prefix", cache.Prefix("x"), []reflect.Type{s3}},
		{"ManifestsPrefix", cache.ManifestsPrefix("x"), []reflect.Type{s3}},
		{"BlobsPrefix", cache.BlobsPrefix("x"), []reflect.Type{s3}},
		{"Name", cache.Name("x"), []reflect.Type{s3}},
		{"Endpoint", cache.Endpoint("https://x/"), []reflect.Type{s3}},
		{"PathStyle", cache.PathStyle(true), []reflect.Type{s3}},
		{"Credentials", cache.Credentials("a", "b", ""), []reflect.Type{s3}},
		{"UploadParallelism", cache.UploadParallelism(2), []reflect.Type{s3}},
		{"TouchRefresh", cache.TouchRefresh(time.Hour), []reflect.Type{s3}},
	}
	for _, tt := range tests {
		typ := reflect.TypeOf(tt.opt)
		for _, iface := range all {
			want := false
			for _, a := range tt.accept {
				want = want || a == iface
			}
			if got := typ.Implements(iface); got != want {
				t.Errorf("%s implements %s = %v, want %v", tt.name, iface.Name(), got, want)
			}
		}
	}
}

// TestOptionsDoNotAlias checks that a backend keeps its own copy of option
// arguments.
func TestOptionsDoNotAlias(t *testing.T) {
	names := []string{"a", "b"}
	opt := cache.Name(names...)
	names[0] = "changed"
	b := cache.S3("bkt", "r", opt)
	m, err := b.ImportAttrs()
	if err != nil || m["name"] != "a;b" {
		t.Errorf("ImportAttrs() = %v, %v; want name=a;b", m, err)
	}
}
