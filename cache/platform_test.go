package cache_test

import (
	"strings"
	"testing"

	"github.com/larder-build/larder/cache"
)

func TestForPlatformKeepsPlatformsApart(t *testing.T) {
	for _, tc := range []struct {
		b    cache.Backend
		want string // in the export attrs' String
	}{
		{cache.Registry("127.0.0.1:5000/app:cache", cache.ModeMax), "ref=127.0.0.1:5000/app:cache-linux-arm64"},
		{cache.Registry("127.0.0.1:5000/app"), "ref=127.0.0.1:5000/app:latest-linux-arm64"},
		{cache.Local("/tmp/c"), "dest=/tmp/c/linux-arm64"},
		{cache.GHA(cache.Scope("app"), cache.URL("http://127.0.0.1:1/"), cache.Token("t")), "scope=app-linux-arm64"},
		{cache.S3("bucket", "eu-west-1"), "name=buildkit-linux-arm64"},
	} {
		got := cache.ForPlatform(tc.b, "linux/arm64").String()
		if !strings.Contains(got, tc.want) {
			t.Errorf("ForPlatform(%s) = %s, want it to hold %s", tc.b, got, tc.want)
		}
		if strings.Contains(tc.b.String(), "linux-arm64") {
			t.Errorf("ForPlatform changed its argument: %s", tc.b)
		}
	}
	if got := cache.ForPlatform(cache.Inline(), "linux/arm64"); got.String() != cache.Inline().String() {
		t.Errorf("ForPlatform(Inline) = %s", got)
	}
}
