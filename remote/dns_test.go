package remote_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/larder-build/larder/internal/testenv"
	"github.com/larder-build/larder/remote"
)

// The records of a headless Service named buildkitd in the namespace
// larder, as a cluster's DNS serves them.
const (
	svcHost = "buildkitd.larder.svc.cluster.local"
	svcSRV  = "_buildkitd._tcp." + svcHost
)

// podHost returns the DNS name of a StatefulSet's pod behind the Service.
func podHost(pod string) string { return pod + "." + svcHost }

// startDNS starts dnsmasq for t, or skips t without it.
func startDNS(t *testing.T) *testenv.DNS {
	t.Helper()
	dns, err := testenv.StartDNS(context.Background(), t.TempDir())
	if err != nil {
		testenv.Unavailable(t, err)
	}
	t.Cleanup(func() { dns.Close() })
	return dns
}

func endpoints(eps []remote.Endpoint) string {
	var out []string
	for _, e := range eps {
		out = append(out, fmt.Sprintf("%s=%s(%s)", e.Name, e.Address, e.ServerName))
	}
	return strings.Join(out, " ")
}

// A DNSSource lists the pods of SRV records by their names, and those of
// A/AAAA records by their addresses; a name without records lists none.
func TestDNSSourceListsRecords(t *testing.T) {
	ctx := context.Background()
	dns := startDNS(t)
	for pod, ip := range map[string]string{"buildkitd-0": "127.0.0.11", "buildkitd-1": "127.0.0.12"} {
		if err := dns.SetHost(podHost(pod), ip); err != nil {
			t.Fatal(err)
		}
	}
	if err := dns.SetHost(svcHost, "127.0.0.12", "127.0.0.11", "::1"); err != nil {
		t.Fatal(err)
	}
	if err := dns.SetSRV(ctx, svcSRV, testenv.SRVTarget{Target: podHost("buildkitd-1"), Port: 1234}, testenv.SRVTarget{Target: podHost("buildkitd-0"), Port: 1235}); err != nil {
		t.Fatal(err)
	}
	srv := remote.SRV(svcSRV, remote.Resolver(dns.Addr))
	eps, err := srv.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := "buildkitd-0=tcp://127.0.0.11:1235(buildkitd-0.buildkitd.larder.svc.cluster.local) buildkitd-1=tcp://127.0.0.12:1234(buildkitd-1.buildkitd.larder.svc.cluster.local)"
	if got := endpoints(eps); got != want {
		t.Errorf("%s lists %s\nwant %s", srv, got, want)
	}
	eps, err = remote.AddressRecords(svcHost+".", 1234, remote.Resolver(dns.Addr)).List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want = "127.0.0.11=tcp://127.0.0.11:1234(buildkitd.larder.svc.cluster.local) 127.0.0.12=tcp://127.0.0.12:1234(buildkitd.larder.svc.cluster.local) ::1=tcp://[::1]:1234(buildkitd.larder.svc.cluster.local)"
	if got := endpoints(eps); got != want {
		t.Errorf("A/AAAA lists %s\nwant %s", got, want)
	}

	// No records: no member, no error.
	for _, s := range []*remote.DNSSource{
		remote.SRV("_buildkitd._tcp.nothing.larder.svc.cluster.local", remote.Resolver(dns.Addr)),
		remote.AddressRecords("nothing.larder.svc.cluster.local", 1234, remote.Resolver(dns.Addr)),
	} {
		if eps, err := s.List(ctx); err != nil || len(eps) != 0 {
			t.Errorf("%s: %v, %v; want none", s, eps, err)
		}
	}

	// A target that does not resolve is left out; when none does, List
	// fails and the fleet keeps what it had.
	if err := dns.SetSRV(ctx, svcSRV, testenv.SRVTarget{Target: podHost("buildkitd-0"), Port: 1234}, testenv.SRVTarget{Target: podHost("gone-9"), Port: 1234}); err != nil {
		t.Fatal(err)
	}
	if eps, err := srv.List(ctx); err != nil || endpoints(eps) != "buildkitd-0=tcp://127.0.0.11:1234(buildkitd-0.buildkitd.larder.svc.cluster.local)" {
		t.Errorf("with a target that does not resolve: %s, %v", endpoints(eps), err)
	}
	if err := dns.SetSRV(ctx, svcSRV, testenv.SRVTarget{Target: podHost("gone-9"), Port: 1234}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.List(ctx); err == nil || !strings.Contains(err.Error(), "gone-9") {
		t.Errorf("with no target that resolves: %v, want an error naming it", err)
	}

	// A target whose lookup fails otherwise (dnsmasq refuses names
	// outside cluster.local) fails List, so that the fleet keeps the
	// builder rather than drop it for a passing failure.
	if err := dns.SetSRV(ctx, svcSRV, testenv.SRVTarget{Target: podHost("buildkitd-0"), Port: 1234}, testenv.SRVTarget{Target: "buildkitd-7.elsewhere.test", Port: 1234}); err != nil {
		t.Fatal(err)
	}
	if eps, err := srv.List(ctx); err == nil || !strings.Contains(err.Error(), "buildkitd-7.elsewhere.test") {
		t.Errorf("with a target whose lookup is refused: %s, %v; want an error naming it", endpoints(eps), err)
	}

	// A resolver that does not answer is an error, within the context.
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if _, err := remote.SRV(svcSRV, remote.Resolver("127.0.0.1:9")).List(cctx); err == nil {
		t.Errorf("a resolver that does not answer: no error")
	}
}

// Wait returns after the interval, or when the context ends.
func TestDNSSourceWaitsItsInterval(t *testing.T) {
	s := remote.SRV(svcSRV, remote.Interval(200*time.Millisecond))
	start := time.Now()
	if err := s.Wait(context.Background()); err != nil || time.Since(start) < 200*time.Millisecond {
		t.Errorf("Wait = %v after %v, want nil after 200ms", err, time.Since(start))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := remote.SRV(svcSRV).Wait(ctx); err != context.Canceled {
		t.Errorf("Wait with a canceled context = %v", err)
	}
	if got := remote.SRV(svcSRV, remote.Resolver("10.96.0.10")).String(); got != "DNS SRV "+svcSRV+" at 10.96.0.10:53" {
		t.Errorf("String() = %q", got)
	}
	if got := remote.AddressRecords(svcHost, 1234).String(); got != "DNS A/AAAA "+svcHost+" port 1234" {
		t.Errorf("String() = %q", got)
	}
}
