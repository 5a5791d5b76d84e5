// Package buildtest helps Go tests build container images with Larder and
// check them: build a stage, run a command in the result, read its files.
// Every BuildKit feature works in these tests, cache, secret and SSH mounts
// included, because both the build and the commands run on a BuildKit
// daemon: there is no container engine.
//
// A package's tests share one builder, which [Builder] finds or starts on
// first use: the one given to [UseBuilder], else the daemon at
// $BUILDKIT_HOST, else a local buildkitd that [Main] stops when the tests
// end. Without a builder, tests skip, or fail when CI=true.
//
//	func TestMain(m *testing.M) { buildtest.Main(m) }
//
//	func TestGreeting(t *testing.T) {
//		img := buildtest.Build(t, build.Image("busybox").
//			Run("echo hello > /greeting"))
//		r := img.Run(t, "cat", "/greeting")
//		if r.ExitCode != 0 || r.Stdout != "hello\n" {
//			t.Fatalf("got %+v", r)
//		}
//	}
//
// A build that fails fails the test with the failed step's command, exit
// code and last output lines, from the [build.StepError].
//
// Because the builder is shared, so is its cache: a step that one test ran
// comes from cache in the next, a cache mount written by one test is seen by
// the next that mounts the same cache id (so what one test downloaded into
// it, the next does not download again), and parallel tests may share a
// cache mount, with locked sharing when they must take turns. A builder with a
// state directory that outlives the run (remote.StateDir, given to
// [Configure]) keeps that cache between runs too.
//
// # Relation to build and llb
//
// buildtest takes the build package's stages and solve options as they
// are, and [Image.RunWith] takes any llb.RunOption: mounts, presets and raw
// llb options. A command run in an image is a build step on it that writes
// the command's output and exit code to files and exports them, so an
// image needs /bin/sh for [Image.Run], or a shell from another stage
// ([Image.WithShell]).
package buildtest
