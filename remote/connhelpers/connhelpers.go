// Package connhelpers registers BuildKit's connection helpers, so that
// remote.Dial and fleet members accept the addresses they serve:
//
//	docker-container://CONTAINER[?context=CONTEXT]
//	podman-container://CONTAINER
//	nerdctl-container://CONTAINER[?namespace=NAMESPACE]
//	kube-pod://POD[?context=C&namespace=N&container=C]
//	ssh://[USER@]HOST[:PORT][/path/to/buildkitd.sock]
//
// Each helper runs a command (docker, podman, nerdctl, kubectl or ssh) that
// must be in PATH, which runs "buildctl dial-stdio" next to the daemon.
// Import the package for its side effect:
//
//	import _ "github.com/larder-build/larder/remote/connhelpers"
//
// Without it, remote.Dial refuses these schemes with a *remote.AddressError
// that names this import. They are opt-in because they pull in Docker's CLI
// packages.
package connhelpers

import (
	_ "github.com/moby/buildkit/client/connhelper/dockercontainer"  // docker-container://
	_ "github.com/moby/buildkit/client/connhelper/kubepod"          // kube-pod://
	_ "github.com/moby/buildkit/client/connhelper/nerdctlcontainer" // nerdctl-container://
	_ "github.com/moby/buildkit/client/connhelper/podmancontainer"  // podman-container://
	_ "github.com/moby/buildkit/client/connhelper/ssh"              // ssh://
)
