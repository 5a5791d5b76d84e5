// Package remote connects Larder to BuildKit daemons: it dials builders that
// are already running and starts a local one as a child process.
//
// A [Builder] wraps a BuildKit [client.Client] together with the platforms
// its workers run. It satisfies the small interface that build.Solve takes,
// so the build package never imports this one. The raw client is always
// available through [Builder.Client] for anything Larder does not wrap.
//
//	b, err := remote.Dial(ctx, "")   // $BUILDKIT_HOST, else BuildKit's default socket
//	if err != nil { ... }
//	defer b.Close()
//
// [Start] runs buildkitd from PATH with its own state directory, socket and
// configuration, and stops it on Close. It is what Larder's demo and tests
// use when no builder is given.
package remote
