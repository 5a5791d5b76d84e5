package build_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/cache"
	"github.com/larder-build/larder/internal/testenv"
)

// The Dockerfiles of the Depot article (one cache mount, shared) and of
// Docker's docs (two, locked), built with persisted cache mounts on a fresh
// builder, then rebuilt with curl added on another: apt downloads curl's
// packages only, as on a builder that kept its caches.
func TestDockerfileCacheMountsPersistAcrossFreshBuilders(t *testing.T) {
	env, _ := setup(t)
	debian, err := env.Debian(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for name, dockerfile := range map[string]string{
		"depot": `FROM %[1]s
RUN rm -f /etc/apt/apt.conf.d/docker-clean
RUN --mount=type=cache,target=/var/cache/apt apt-get update && apt-get -y install --no-install-recommends %[2]s # %[3]s
`,
		"docker docs": `FROM %[1]s
RUN rm -f /etc/apt/apt.conf.d/docker-clean; echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' > /etc/apt/apt.conf.d/keep-cache
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt,sharing=locked \
    apt-get update && apt-get --no-install-recommends install -y %[2]s # %[3]s
`,
	} {
		t.Run(name, func(t *testing.T) {
			n := nonce()
			store := build.PersistCacheMounts(cache.RegistryStore(env.Registry+"/test/dockerfile-caches-"+n), build.Namespace("df-"+n))
			df := func(pkgs string) build.Stage {
				return build.Dockerfile([]byte(fmt.Sprintf(dockerfile, debian, pkgs, n)), build.Scratch())
			}
			var first, second testenv.LogLines
			res, err := build.Solve(ctxT(t), freshBuilder(t, env), df("gcc"), store, build.OnEvent(first.Record))
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range res.Report.CacheMounts {
				if !m.Exported {
					t.Errorf("cache %s not saved: %+v", m.ID, m)
				}
			}
			res, err = build.Solve(ctxT(t), freshBuilder(t, env), df("gcc curl"), store, build.OnEvent(second.Record))
			if err != nil {
				t.Fatal(err)
			}
			a, _ := downloads(first.Lines())
			b, _ := downloads(second.Lines())
			t.Logf("the first build downloaded %d packages; the rebuild with curl, on a fresh builder, %d: %v", len(a), len(b), b)
			if !slices.Contains(a, "gcc-12") || !slices.Contains(b, "curl") {
				t.Fatalf("first %v, second %v", a, b)
			}
			for _, p := range b {
				if slices.Contains(a, p) {
					t.Errorf("the rebuild downloaded %s again", p)
				}
			}
			if len(b) != 16 {
				t.Errorf("the rebuild downloaded %d packages, want curl's 16", len(b))
			}
			for _, m := range res.Report.CacheMounts {
				if !m.Restored {
					t.Errorf("cache %s not restored: %+v", m.ID, m)
				}
			}
			if !strings.Contains(res.Report.String(), "RUN --mount=type=cache") {
				t.Errorf("the report does not name the Dockerfile's steps:\n%s", res.Report)
			}
		})
	}
}
