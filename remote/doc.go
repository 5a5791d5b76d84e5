// Package remote connects Larder to BuildKit daemons: it finds or starts a
// builder by itself ([Auto]), dials builders that are already running,
// starts a local one as a child process, and routes solves across a fleet
// of builders by platform and key.
//
// A [Builder] wraps a BuildKit [client.Client] together with the platforms
// its workers run. It satisfies the small interface that build.Solve takes,
// so the build package never imports this one. The raw client is always
// available through [Builder.Client] for anything Larder does not wrap.
//
//	b, err := remote.Auto(ctx) // $BUILDKIT_HOST, the default socket, Docker or Podman, or a local buildkitd
//	if err != nil { ... }
//	defer b.Close()
//
// [Auto] takes the first that works of: the builder at $BUILDKIT_HOST; one
// answering at BuildKit's default socket; a builder container that Docker
// or Podman runs, made once and reused, with a volume that keeps its
// caches; a buildkitd child process, as root or rootless. [Builder.Origin]
// says which; when none works, the [*AutoError] lists each attempt and its
// fix. The docker-container and podman-container connection helpers it uses
// are registered by this package. [Install] builds buildkitd and buildctl
// of the pinned BuildKit version into Larder's cache directory, where
// [Start] and Auto look after PATH, so a program that imports Larder needs
// no other setup (go run github.com/larder-build/larder/cmd/larder-install).
//
// [Dial] takes unix and tcp addresses; tcp to a host that is not loopback
// needs mutual TLS ([WithTLS]) or an explicit [AllowInsecure]. BuildKit's
// connection helpers other than docker-container:// and podman-container://
// (kube-pod://, ssh:// and others) are opt-in: import the package
// remote/connhelpers to register them.
// Everything that can be checked without the network (the options, the
// address and its port, the TLS files) is checked first, and each failure
// has its own error type whose message says what to pass instead. With no
// address, no $BUILDKIT_HOST and no socket at [DefaultAddress], Dial fails
// at once with a [*NoBuilderError] that lists the ways to get a builder. A
// password in an address never shows: errors, names and statuses print it
// as "xxxxx". Connections send keepalive pings, so that a solve on a
// builder that vanishes fails with a [*ConnectionError] instead of hanging.
//
// [Start] runs buildkitd (from PATH, else Larder's cache directory) with
// its own state directory, socket and configuration, and stops it on Close;
// as a user other than root it runs it rootless, through rootlesskit. It checks every option before the
// daemon runs, with BuildKit's own parsers, and writes the configuration
// with BuildKit's own types (cmd/buildkitd/config), so that what it writes
// is what buildkitd reads. It is what Larder's demo and tests use when no
// builder is given.
//
// A [Fleet] is a set of builders. It sends each platform to a member that
// runs it natively, else compatibly, else (when allowed) under emulation;
// among equals it picks by consistent hashing on the solve's key, so that a
// project's cache mounts stay warm on one member; it skips members that do
// not answer and checks them again later.
//
//	fleet, err := remote.NewFleet(ctx,
//		remote.Member("unix:///run/buildkit/amd64.sock"),
//		remote.Member("tcp://arm-1:1234", remote.WithTLS(ca, cert, key), remote.Platforms("linux/arm64")),
//	)
//
// Its hash ring is the one of buildx's kubernetes driver in sticky mode and
// of BuildKit's examples/kubernetes/consistenthash (github.com/serialx/hashring
// over the members' names), so that for the same key and pod names all
// three pick the same pod; [ContextKey] is the key buildx uses.
//
// A fleet's members may also come from a [MemberSource], which the fleet
// follows as it changes ([Discover]): the pods of a Kubernetes StatefulSet
// behind a headless Service, through its SRV records ([SRV]) or its A and
// AAAA records ([AddressRecords]), or any source that implements the
// interface. New members are checked before they get work, members that
// leave drain, and only the keys of members that join or leave move. The
// repository's deploy/kubernetes holds manifests for such a fleet.
//
//	fleet, err := remote.NewFleet(ctx, remote.Discover(
//		remote.SRV("_buildkitd._tcp.buildkitd.ci.svc.cluster.local"),
//		remote.WithTLS("/certs/ca.pem", "/certs/cert.pem", "/certs/key.pem"),
//	))
//
// A builder reached through a client the caller already has, such as a
// managed builder service's machine, joins a fleet with [FromClient];
// credentials held in memory (a Kubernetes Secret's data) are given with
// [WithTLSPEM].
package remote
