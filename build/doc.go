// Package build writes container image builds as Go values and solves them
// on BuildKit.
//
// # Stages
//
// A [Stage] is one state of a build graph: a source ([Image], [Local],
// [Git], [HTTP], [Scratch]) with steps applied ([Stage.Run],
// [Stage.RunArgs], [Stage.Copy]) and settings for the steps that follow
// and for the image ([Stage.Env], [Stage.Dir], [Stage.User],
// [Stage.Entrypoint], [Stage.Cmd], [Stage.Label]). Stages are immutable:
// every method returns a new Stage, so a stage can be shared and branched
// freely, as llb.State can.
//
//	src := build.Local("src")
//	img := build.Image("debian:bookworm").
//		Run("apt-get update && apt-get install -y --no-install-recommends gcc", cache.Apt()).
//		Dir("/src").
//		Run("make", mounts.Bind("/src", src))
//
// A step takes any llb.RunOption: the mounts of package mounts, the presets
// of package cache, and raw llb options such as llb.Network. Options that
// implement mounts.StepOption, as mounts and presets do, are checked
// together (two mounts on one target, two secrets set as one variable) and
// learn the platform of their step.
//
// Mistakes (a malformed reference, a relative mount target) do not panic
// and are not returned by each method: they travel with the Stage, into
// every stage built on it, and [Solve], [Stage.Marshal] and [Stage.Err]
// report all of them at once, before any builder is contacted.
//
// llb goes both ways: [From] wraps any llb.State in a Stage, and
// [Stage.State] gives one back.
//
// # Dockerfiles
//
// [Dockerfile] makes a Stage of an existing Dockerfile: BuildKit's own
// converter turns it into a graph when the stage is marshalled, for the
// platform solved, so it builds on a fleet, persists its cache mounts and
// fills the report as a typed graph does. [BuildArg], [Target] and
// [BuildContext] are docker build's --build-arg, --target and
// --build-context; the solve's [WithSecret] and [WithSSH] serve its RUN
// --mount=type=secret and type=ssh. A Dockerfile that does not parse is a
// [*DockerfileError]; a RUN that fails, a [*StepError] with its line.
//
// # Solving
//
// [Solve] builds a Stage on a [Builder]: a *remote.Builder (one daemon) or
// a *remote.Fleet (several, routed by platform). Build never imports
// remote; the Builder interface is all it needs. Options say what the
// client session offers ([WithLocal], [WithSecret], [WithSSH],
// [WithKeychain]), what to build for ([Platforms], [Key]), where the result
// goes ([Push], [Load], [OCITarball], [DockerTarball], [LocalDir],
// [Export]), which layer cache to import and export ([CacheFrom],
// [CacheTo], with the backends of package cache), and how to show progress
// ([Progress], [OnEvent]).
//
//	res, err := build.Solve(ctx, b, img,
//		build.WithLocal("src", "./src"),
//		build.Push("registry.example.com/team/app:1.2"),
//		build.CacheTo(cache.Registry("registry.example.com/team/app:buildcache", cache.ModeMax)))
//	if err != nil {
//		return err // a failed command is a *build.StepError
//	}
//	fmt.Println(res.Digest, res.Report.CachedSteps(), "steps from cache")
//
// Each platform is solved on its own daemon, concurrently; with several,
// [Push] pushes one index of them all.
//
// # Images
//
// The exported image's configuration is the base image's (or the
// Dockerfile's) with what the stage sets: [Stage.Env], [Stage.Dir],
// [Stage.User], [Stage.Entrypoint], [Stage.Cmd], [Stage.Label],
// [Stage.Expose], [Stage.Volume], [Stage.Healthcheck], [Stage.StopSignal];
// settings that only change the configuration change no cache key. Its
// history holds one entry per step and setting, as the Dockerfile frontend
// writes them. [Annotation] annotates manifests and indexes,
// [SourceDateEpoch] makes the image's digest reproducible, and
// [Provenance] and [SBOM] add BuildKit's attestations, kept in the index
// Larder pushes or writes for several platforms.
//
// # Report and errors
//
// A [Result] holds the image digest and a [Report]: each step, whether it
// ran or came from cache and how long it took, the warnings of presets
// whose cache a command defeats, and what persisted cache mounts did. A
// command that fails is a [*StepError] with its command, exit code and last
// lines of output; every error wraps BuildKit's own.
//
// # Persisted cache mounts
//
// BuildKit keeps a cache mount only on the daemon that made it, so every
// fresh builder, such as a CI job's, starts with empty apt, go or npm
// caches. [PersistCacheMounts] keeps them in a store of package cache
// between builders, without changing the graph or its cache keys.
package build
