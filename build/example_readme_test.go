package build_test

import (
	"context"
	"fmt"
	"os"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/cache"
	"github.com/larder-build/larder/mounts"
	"github.com/larder-build/larder/remote"
)

// The README's sample. It needs a builder, so it is compiled, not run.
func Example_solve() {
	ctx := context.Background()
	run := func() error {
		b, err := remote.Dial(ctx, "") // $BUILDKIT_HOST, else BuildKit's default socket
		if err != nil {
			return err
		}
		defer b.Close()

		img := build.Image("debian:bookworm").
			Run("apt-get update && apt-get install -y --no-install-recommends gcc",
				mounts.Cache("/var/cache/apt", mounts.Sharing(mounts.Locked)),
				mounts.Cache("/var/lib/apt", mounts.Sharing(mounts.Locked))).
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
