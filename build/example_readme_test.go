package build_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/cache"
	"github.com/larder-build/larder/mounts"
	"github.com/larder-build/larder/remote"
)

// The README's sample. It needs a builder, so it is compiled, not run.
func Example_solve() {
	ctx := context.Background()
	run := func() error {
		b, err := remote.Auto(ctx) // finds a builder, or starts one
		if err != nil {
			return err
		}
		defer b.Close()

		img := build.Image("debian:bookworm").
			Run("apt-get update && apt-get install -y --no-install-recommends gcc", cache.Apt()).
			Dir("/src").
			Run("make", mounts.Bind("/src", build.Local("src")))

		res, err := build.Solve(ctx, b, img,
			build.WithLocal("src", "./src"),
			build.Push("registry.example.com/team/app:1.2"),
			build.CacheTo(cache.Registry("registry.example.com/team/app:buildcache", cache.ModeMax)),
			build.Progress(os.Stderr, "auto"),
		)
		if err != nil {
			return err // a failed step is a *build.StepError: command, exit code, last output lines
		}
		fmt.Println(res.Digest, res.Report.CachedSteps(), "steps from cache")
		return nil
	}
	_ = run
}

// The README's fleet and persistence sample. It needs builders, so it is
// compiled, not run.
func Example_fleet() {
	ctx := context.Background()
	var ca, cert, key string
	img := build.Image("debian:bookworm")
	run := func() error {
		fleet, err := remote.NewFleet(ctx,
			remote.Member("unix:///run/buildkit/amd64.sock"),
			remote.Member("tcp://arm-1:1234", remote.WithTLS(ca, cert, key), remote.Platforms("linux/arm64")),
		)
		if err != nil {
			return err
		}
		defer fleet.Close()
		res, err := build.Solve(ctx, fleet, img,
			build.Platforms("linux/amd64", "linux/arm64"),
			build.Push("registry.example.com/team/app:1.2"), // one index, both manifests
			build.Key("team/app"),
			build.PersistCacheMounts(cache.RegistryStore("registry.example.com/team/app-caches")))
		if err != nil {
			return err
		}
		fmt.Println(res.Digest)
		return nil
	}
	_ = run
}

// The README's Dockerfile sample. It needs a builder, so it is compiled, not
// run.
func ExampleDockerfile() {
	ctx := context.Background()
	var b build.Builder
	var token []byte
	run := func() error {
		dockerfile, err := os.ReadFile("Dockerfile")
		if err != nil {
			return err
		}
		img := build.Dockerfile(dockerfile, build.Local("context"),
			build.BuildArg("VERSION", "1.2"),                    // --build-arg
			build.Target("release"),                             // --target
			build.BuildContext("assets", build.Local("assets"))) // --build-context
		_, err = build.Solve(ctx, b, img,
			build.WithLocal("context", "."), build.WithLocal("assets", "./assets"),
			build.WithSecret("token", token), // RUN --mount=type=secret,id=token
			build.PersistCacheMounts(cache.RegistryStore("registry.example.com/team/app-caches")),
			build.Push("registry.example.com/team/app:1.2"))
		return err
	}
	_ = run
}

// The README's image sample. It needs a builder, so it is compiled, not run.
func Example_image() {
	ctx := context.Background()
	var b build.Builder
	var commitTime time.Time
	run := func() error {
		img := build.Image("debian:bookworm").
			Run("make install").
			Expose("8080/tcp").
			Volume("/data").
			Healthcheck(build.Health{Test: []string{"CMD", "/app", "-check"}, Interval: 30 * time.Second}).
			StopSignal("SIGINT").
			Cmd("/app")
		_, err := build.Solve(ctx, b, img,
			build.Platforms("linux/amd64", "linux/arm64"),
			build.Push("registry.example.com/team/app:1.2"), // one index
			build.OCITarball("app.tar", "app:1.2"),          // the same index, as an OCI layout
			build.Annotation("org.opencontainers.image.source", "https://example.com/app", build.OnManifest, build.OnIndex),
			build.SourceDateEpoch(commitTime), // same graph, same digest
			build.Provenance("max"),
			build.SBOM("docker/buildkit-syft-scanner:stable-1"))
		return err
	}
	_ = run
}

// The README's Kubernetes sample. It needs a cluster, so it is compiled,
// not run.
func Example_kubernetes() {
	ctx := context.Background()
	img := build.Image("debian:bookworm")
	run := func() error {
		fleet, err := remote.NewFleet(ctx, remote.Discover(
			remote.SRV("_buildkitd._tcp.buildkitd.ci.svc.cluster.local"),
			remote.WithTLS("/certs/ca.pem", "/certs/cert.pem", "/certs/key.pem"),
		))
		if err != nil {
			return err
		}
		defer fleet.Close()
		_, err = build.Solve(ctx, fleet, img,
			build.Platforms("linux/amd64", "linux/arm64"),
			build.Key(remote.ContextKey(".")),
			build.PersistCacheMounts(cache.RegistryStore("registry.example.com/team/app-caches"), build.Namespace("team-app")),
			build.Push("registry.example.com/team/app:1.2"))
		return err
	}
	_ = run
}
