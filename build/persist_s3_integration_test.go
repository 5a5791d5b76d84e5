package build_test

import (
	"context"
	"testing"

	"github.com/larder-build/larder/cache"
	"github.com/larder-build/larder/internal/testenv"
)

// s3Store returns a store in the environment's S3 bucket, under a prefix
// of its own. Without an S3 server, the test is skipped, or fails in CI.
func s3Store(t *testing.T, env *testenv.Env, n string) (cache.MountStore, bool) {
	t.Helper()
	s3, err := env.S3(context.Background())
	if err != nil {
		testenv.Unavailable(t, err)
		return nil, false
	}
	return cache.S3Store(s3.Bucket, s3.Region, cache.Endpoint(s3.Endpoint), cache.PathStyle(true),
		cache.Credentials(s3.AccessKeyID, s3.SecretAccessKey, ""), cache.Prefix("build-"+n+"/")), true
}
