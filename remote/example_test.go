package remote_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/larder-build/larder/remote"
)

// A fleet routes each platform to a member that runs it natively, else
// compatibly, else under emulation when allowed; among members of the same
// kind, the key picks one by consistent hashing (serialx/hashring, as
// buildx's sticky mode does). Lazy makes the fleet route by declared
// platforms before any member is dialed.
func ExampleNewFleet() {
	fleet, err := remote.NewFleet(context.Background(),
		remote.Member("unix:///run/buildkit/amd64-1.sock", remote.WithName("amd64-1"), remote.Platforms("linux/amd64")),
		remote.Member("unix:///run/buildkit/amd64-2.sock", remote.WithName("amd64-2"), remote.Platforms("linux/amd64")),
		remote.Member("unix:///run/buildkit/arm64.sock", remote.WithName("arm64"), remote.Platforms("linux/arm64"), remote.MaxConcurrency(4)),
		remote.Lazy(),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer fleet.Close()
	for _, p := range []string{"linux/amd64", "linux/arm64", "linux/arm/v7", "linux/386"} {
		r, err := fleet.Route(p, "team/api")
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("%-12s -> %s (%s)\n", p, r.Member, r.Match)
	}
	// Each key stays on one of the two amd64 members.
	for _, key := range []string{"team/api", "team/cli", "infra/proxy", "ml/train"} {
		r, _ := fleet.Route("linux/amd64", key)
		fmt.Printf("%-12s -> %s\n", key, r.Member)
	}
	_, err = fleet.Route("linux/riscv64", "team/api")
	var re *remote.RouteError
	fmt.Println(errors.As(err, &re), re.Platform)
	// Output:
	// linux/amd64  -> amd64-2 (native)
	// linux/arm64  -> arm64 (native)
	// linux/arm/v7 -> arm64 (compatible)
	// linux/386    -> amd64-2 (compatible)
	// team/api     -> amd64-2
	// team/cli     -> amd64-1
	// infra/proxy  -> amd64-1
	// ml/train     -> amd64-1
	// true linux/riscv64
}

// Dial checks what it can before contacting a builder, and each mistake has
// its own error type.
func ExampleDial() {
	ctx := context.Background()

	_, err := remote.Dial(ctx, "tcp://10.0.0.1:1234")
	var insecure *remote.InsecureError
	fmt.Println("plain tcp to another host refused:", errors.As(err, &insecure))

	_, err = remote.Dial(ctx, "tcp://10.0.0.1:1234", remote.WithTLS("/nonexistent/ca.pem", "client.pem", "client-key.pem"))
	var creds *remote.CredentialsError
	if errors.As(err, &creds) {
		fmt.Println("missing file:", creds.What, creds.File)
	}

	_, err = remote.Dial(ctx, "nerdctl-container://buildkitd")
	fmt.Println(err)
	// Output:
	// plain tcp to another host refused: true
	// missing file: CA certificate /nonexistent/ca.pem
	// remote: address "nerdctl-container://buildkitd": the nerdctl-container connection helper is not registered: add import _ "github.com/larder-build/larder/remote/connhelpers"
}

// pods is a MemberSource of a fixed list of pods: what a source that asks
// the Kubernetes API, or a managed builder service, implements.
type pods []string

func (p pods) List(context.Context) ([]remote.Endpoint, error) {
	var out []remote.Endpoint
	for _, name := range p {
		out = append(out, remote.Endpoint{Name: name, Address: "unix:///run/buildkit/" + name + ".sock", Platforms: []string{"linux/amd64"}})
	}
	return out, nil
}

func (p pods) Wait(ctx context.Context) error {
	<-ctx.Done() // never changes
	return ctx.Err()
}

func (p pods) String() string { return "pods" }

// A fleet follows the members a MemberSource lists. For a key, it picks
// what github.com/serialx/hashring picks over the members' names: the pod
// that buildx's kubernetes driver (sticky) and BuildKit's consistenthash
// pick for the same key.
func ExampleDiscover() {
	fleet, err := remote.NewFleet(context.Background(),
		remote.Discover(pods{"buildkitd-0", "buildkitd-1", "buildkitd-2"}),
		remote.Lazy(),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer fleet.Close()
	for _, dir := range []string{"/home/ci/src/api", "/home/ci/src/web", "/home/ci/src/worker"} {
		r, _ := fleet.Route("linux/amd64", remote.ContextKey(dir))
		fmt.Printf("%-20s -> %s\n", dir, r.Member)
	}
	for _, s := range fleet.Sources() {
		fmt.Println(s.Source, s.Members, s.Err)
	}
	// Output:
	// /home/ci/src/api     -> buildkitd-2
	// /home/ci/src/web     -> buildkitd-1
	// /home/ci/src/worker  -> buildkitd-2
	// pods 3 <nil>
}

// A DNS source says what it asks; its mistakes are reported by NewFleet
// before anything is looked up or dialed.
func ExampleSRV() {
	src := remote.SRV("_buildkitd._tcp.buildkitd.ci.svc.cluster.local", remote.Resolver("10.96.0.10"), remote.Interval(5*time.Second))
	fmt.Println(src)
	_, err := remote.NewFleet(context.Background(), remote.Discover(remote.SRV("buildkitd.ci.svc.cluster.local")))
	fmt.Println(err)
	// Output:
	// DNS SRV _buildkitd._tcp.buildkitd.ci.svc.cluster.local at 10.96.0.10:53
	// remote: SRV("buildkitd.ci.svc.cluster.local"): want _<port name>._tcp.<service>.<namespace>.svc.cluster.local, such as "_buildkitd._tcp.buildkitd.ci.svc.cluster.local" (or remote.AddressRecords("buildkitd.ci.svc.cluster.local", 1234) for A and AAAA records)
}
