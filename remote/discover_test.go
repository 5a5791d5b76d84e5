package remote_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/serialx/hashring"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/cache"
	"github.com/larder-build/larder/internal/testenv"
	"github.com/larder-build/larder/mounts"
	"github.com/larder-build/larder/remote"
)

// pod is a daemon that plays a StatefulSet's pod: it listens with mutual
// TLS on a loopback address of its own, as a pod does on its IP, and is
// published in DNS under the pod's name.
type pod struct {
	name, ip string
	port     int
	b        *remote.Builder // the daemon, dialed at its unix socket
}

func (p *pod) target() testenv.SRVTarget {
	return testenv.SRVTarget{Target: podHost(p.name), Port: p.port}
}

// startPod starts a daemon for platform listening on ip with certs, and
// publishes its A record. It is stopped when t ends.
func startPod(ctx context.Context, t *testing.T, env *testenv.Env, dns *testenv.DNS, certs *testenv.TLSFiles, name, ip, platform string) *pod {
	t.Helper()
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	b, err := env.NewBuilder(ctx, remote.WorkerPlatforms(platform),
		remote.ListenTCP(net.JoinHostPort(ip, strconv.Itoa(port)), certs.CA, certs.ServerCert, certs.ServerKey),
		remote.StartDialOptions(remote.WithName(name+" (socket)")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if err := dns.SetHost(podHost(name), ip); err != nil {
		t.Fatal(err)
	}
	return &pod{name: name, ip: ip, port: port, b: b}
}

func targets(ps ...*pod) []testenv.SRVTarget {
	var out []testenv.SRVTarget
	for _, p := range ps {
		out = append(out, p.target())
	}
	return out
}

// podCerts makes a CA, a client certificate and a server certificate for
// every pod of the Service, as BuildKit's examples/kubernetes/create-certs.sh
// does with a wildcard SAN.
func podCerts(t *testing.T) *testenv.TLSFiles {
	t.Helper()
	certs, err := testenv.NewTLSFiles(t.TempDir(), "larder test CA", "*."+svcHost)
	if err != nil {
		t.Fatal(err)
	}
	return certs
}

// deployCerts makes the certificates of deploy/kubernetes, for the
// namespace larder, with its create-certs.sh.
func deployCerts(t *testing.T) *testenv.TLSFiles {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("../deploy/kubernetes/create-certs.sh", "larder")
	cmd.Env = append(os.Environ(), "CERTS_DIR="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		testenv.Unavailable(t, fmt.Errorf("deploy/kubernetes/create-certs.sh (needs bash and openssl): %v\n%s", err, out))
	}
	return &testenv.TLSFiles{
		CA:         filepath.Join(dir, "daemon", "ca.pem"),
		ServerCert: filepath.Join(dir, "daemon", "cert.pem"),
		ServerKey:  filepath.Join(dir, "daemon", "key.pem"),
		ClientCert: filepath.Join(dir, "client", "cert.pem"),
		ClientKey:  filepath.Join(dir, "client", "key.pem"),
	}
}

// waitMember polls the fleet until cond holds for the member named name,
// and returns how long that took.
func waitMember(t *testing.T, f *remote.Fleet, name string, within time.Duration, cond func(remote.MemberStatus, bool) bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		var st remote.MemberStatus
		found := false
		for _, s := range f.Members() {
			if s.Name == name {
				st, found = s, true
			}
		}
		if cond(st, found) {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("member %s after %v: %+v (found %v); members %+v; sources %+v", name, within, st, found, f.Members(), f.Sources())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A fleet on the SRV records of a headless Service follows its pods: it
// routes builds as hashring does over the pods' names; a third pod added
// to the records gets new keys within the re-resolve interval, and only
// the keys it takes move; a pod removed from the records gets no new work
// while the solve running on it completes.
func TestFleetFollowsSRVRecords(t *testing.T) {
	env := testenv.Get(t)
	dns := startDNS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	certs := podCerts(t)
	p0 := startPod(ctx, t, env, dns, certs, "buildkitd-0", "127.0.0.10", "linux/amd64")
	p1 := startPod(ctx, t, env, dns, certs, "buildkitd-1", "127.0.0.11", "linux/amd64")
	if err := dns.SetSRV(ctx, svcSRV, targets(p0, p1)...); err != nil {
		t.Fatal(err)
	}
	const interval = time.Second
	srv := remote.SRV(svcSRV, remote.Resolver(dns.Addr), remote.Interval(interval))
	tlsOpt := remote.WithTLS(certs.CA, certs.ClientCert, certs.ClientKey)
	fleet, err := remote.NewFleet(ctx, remote.Discover(srv, tlsOpt))
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Close()
	// A second fleet on the same records, with 160 points a member.
	even, err := remote.NewFleet(ctx, remote.Discover(srv, tlsOpt), remote.RingPoints(160))
	if err != nil {
		t.Fatal(err)
	}
	defer even.Close()
	for _, st := range fleet.Members() {
		if st.State != remote.StateUp || st.Source != srv.String() {
			t.Errorf("member %+v, want up, from %s", st, srv)
		}
	}
	t.Logf("members: %+v", fleet.Members())

	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("/home/ci/src/project-%d", i)
	}
	routes := func(f *remote.Fleet) []string {
		out := make([]string, len(keys))
		for i, k := range keys {
			r, err := f.Route("linux/amd64", k)
			if err != nil {
				t.Fatal(err)
			}
			out[i] = r.Member
		}
		return out
	}
	two := hashring.New([]string{"buildkitd-0", "buildkitd-1"})
	before, beforeEven := routes(fleet), routes(even)
	for i, k := range keys {
		if want, _ := two.GetNode(k); before[i] != want {
			t.Fatalf("Route(%q) = %s, hashring says %s", k, before[i], want)
		}
	}

	// Builds land where hashring says, on both pods.
	img := build.Image(busybox(t, env))
	n := time.Now().UnixNano()
	keyOn := func(h *hashring.HashRing, name string) string {
		for _, k := range keys {
			if got, _ := h.GetNode(k); got == name {
				return k
			}
		}
		t.Fatalf("no key lands on %s", name)
		return ""
	}
	for _, name := range []string{"buildkitd-0", "buildkitd-1"} {
		k := keyOn(two, name)
		dir, res, err := solveTo(ctx, t, fleet, img.Run(fmt.Sprintf("echo %s > /key # %d", k, n)), build.Key(k))
		if err != nil {
			t.Fatal(err)
		}
		if builderOf(res) != name || testenv.ReadFile(t, dir, "key") != k+"\n" {
			t.Errorf("key %s built on %s, want %s", k, builderOf(res), name)
		}
	}

	// A third pod joins the records.
	p2 := startPod(ctx, t, env, dns, certs, "buildkitd-2", "127.0.0.12", "linux/amd64")
	if err := dns.SetSRV(ctx, svcSRV, targets(p0, p1, p2)...); err != nil {
		t.Fatal(err)
	}
	took := waitMember(t, fleet, "buildkitd-2", interval+10*time.Second, func(s remote.MemberStatus, ok bool) bool { return ok && s.State == remote.StateUp })
	t.Logf("buildkitd-2 was up in the fleet %v after it joined the records (interval %v)", took, interval)
	if took > interval+5*time.Second {
		t.Errorf("buildkitd-2 joined the fleet %v after the records changed, want within the interval (%v) and a check", took, interval)
	}
	waitMember(t, even, "buildkitd-2", interval+10*time.Second, func(s remote.MemberStatus, ok bool) bool { return ok && s.State == remote.StateUp })
	three := hashring.New([]string{"buildkitd-0", "buildkitd-1", "buildkitd-2"})
	for _, f := range []struct {
		name   string
		fleet  *remote.Fleet
		before []string
	}{{"one point (buildx's ring)", fleet, before}, {"160 points", even, beforeEven}} {
		after := routes(f.fleet)
		moved := 0
		for i, k := range keys {
			if after[i] == f.before[i] {
				continue
			}
			moved++
			if after[i] != "buildkitd-2" {
				t.Errorf("%s: key %s moved from %s to %s, not to the new pod", f.name, k, f.before[i], after[i])
			}
		}
		share := float64(moved) / float64(len(keys))
		t.Logf("%s: %d of %d keys moved to buildkitd-2 (%.2f)", f.name, moved, len(keys), share)
		if f.fleet == fleet {
			for i, k := range keys {
				if want, _ := three.GetNode(k); after[i] != want {
					t.Fatalf("after the change, Route(%q) = %s, hashring says %s", k, after[i], want)
				}
			}
		} else if share < 0.2 || share > 0.45 {
			t.Errorf("%s: %.2f of the keys moved, want about a third", f.name, share)
		}
	}
	k2 := keyOn(three, "buildkitd-2")
	if _, res, err := solveTo(ctx, t, fleet, img.Run(fmt.Sprintf("echo %s > /key # %d", k2, n)), build.Key(k2)); err != nil || builderOf(res) != "buildkitd-2" {
		t.Errorf("a key of the new pod: %v, built on %q", err, builderOf(res))
	}

	// buildkitd-1 leaves the records while a solve runs on it.
	k1 := keyOn(three, "buildkitd-1")
	g := newGate(t)
	blockedDir := t.TempDir()
	type outcome struct {
		res *build.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := build.Solve(ctx, fleet, img.Run(fmt.Sprintf("wget -q -O /got %s/block # %d", g.URL, n)), build.Key(k1), build.LocalDir(blockedDir))
		done <- outcome{res, err}
	}()
	g.waitHit(t, "/block", time.Minute)
	if err := dns.SetSRV(ctx, svcSRV, targets(p0, p2)...); err != nil {
		t.Fatal(err)
	}
	took = waitMember(t, fleet, "buildkitd-1", interval+10*time.Second, func(s remote.MemberStatus, ok bool) bool {
		return ok && s.State == remote.StateDraining && s.InFlight == 1
	})
	t.Logf("buildkitd-1 was draining %v after it left the records, its solve still running", took)
	left := hashring.New([]string{"buildkitd-0", "buildkitd-2"})
	want1, _ := left.GetNode(k1)
	if r, err := fleet.Route("linux/amd64", k1); err != nil || r.Member != want1 {
		t.Errorf("Route(%q) with buildkitd-1 draining = %+v, %v; want %s", k1, r, err, want1)
	}
	if _, res, err := solveTo(ctx, t, fleet, img.Run(fmt.Sprintf("echo again > /key # %d", n)), build.Key(k1)); err != nil || builderOf(res) != want1 {
		t.Errorf("a new solve of buildkitd-1's key: %v, built on %q, want %s", err, builderOf(res), want1)
	}
	select {
	case o := <-done:
		t.Fatalf("the blocked solve ended before the gate opened: %v", o.err)
	default:
	}
	g.Open()
	o := <-done
	if o.err != nil {
		t.Fatalf("the solve that ran on buildkitd-1 when it left: %v", o.err)
	}
	if builderOf(o.res) != "buildkitd-1" || testenv.ReadFile(t, blockedDir, "got") != "ok\n" {
		t.Errorf("the solve that ran on buildkitd-1 built on %q", builderOf(o.res))
	}
	waitMember(t, fleet, "buildkitd-1", 5*time.Second, func(_ remote.MemberStatus, ok bool) bool { return !ok })
	// The daemon still runs: the fleet only let it go.
	if _, err := p1.b.Client().ListWorkers(ctx); err != nil {
		t.Errorf("buildkitd-1's daemon: %v", err)
	}
}

// A two-platform build over a fleet whose members come from DNS, with the
// certificates deploy/kubernetes/create-certs.sh makes and the client's as
// PEM bytes (as a Kubernetes Secret holds them): one index, each platform
// built on a pod of its own platform.
func TestDiscoveredFleetBuildsTwoPlatforms(t *testing.T) {
	env := testenv.Get(t)
	if _, err := os.Stat("/proc/sys/fs/binfmt_misc/qemu-aarch64"); err != nil {
		testenv.Unavailable(t, fmt.Errorf("no binfmt handler for linux/arm64 (run scripts/setup): %w", err))
	}
	dns := startDNS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	certs := deployCerts(t)
	amd := startPod(ctx, t, env, dns, certs, "buildkitd-amd64-0", "127.0.0.20", "linux/amd64")
	arm := startPod(ctx, t, env, dns, certs, "buildkitd-arm64-0", "127.0.0.21", "linux/arm64")
	if err := dns.SetSRV(ctx, svcSRV, targets(amd, arm)...); err != nil {
		t.Fatal(err)
	}
	var pems [3][]byte
	for i, f := range []string{filepath.Join(filepath.Dir(certs.ClientCert), "ca.pem"), certs.ClientCert, certs.ClientKey} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pems[i] = b
	}
	fleet, err := remote.NewFleet(ctx, remote.Discover(remote.SRV(svcSRV, remote.Resolver(dns.Addr)), remote.WithTLSPEM(pems[0], pems[1], pems[2])))
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Close()
	for _, st := range fleet.Members() {
		t.Logf("member %s at %s: %s, native %v", st.Name, st.Address, st.State, st.Native)
	}
	n := time.Now().UnixNano()
	ref := fmt.Sprintf("%s/test/discovered:%d", env.Registry, n)
	st := build.Image(busybox(t, env)).Run(fmt.Sprintf("uname -m > /arch # %d", n))
	res, err := build.Solve(ctx, fleet, st, build.Platforms("linux/amd64", "linux/arm64"), build.Push(ref), build.Key("/home/ci/src/app"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"linux/amd64": "buildkitd-amd64-0", "linux/arm64": "buildkitd-arm64-0"}
	for _, pr := range res.Platforms {
		if pr.Builder != want[pr.Platform] {
			t.Errorf("%s built on %s, want %s", pr.Platform, pr.Builder, want[pr.Platform])
		}
	}
	arches := indexArches(t, ref, "arch")
	if arches["amd64"] != "x86_64\n" || arches["arm64"] != "aarch64\n" || len(arches) != 2 {
		t.Errorf("the index at %s holds %q, want amd64 with x86_64 and arm64 with aarch64", ref, arches)
	}
	t.Logf("pushed %s: %q", ref, arches)
}

// indexArches reads the index at ref and returns, for each manifest's
// architecture, the content of file in its image.
func indexArches(t *testing.T, ref, file string) map[string]string {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := ggcrremote.Index(r)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		out[d.Platform.Architecture] = testenv.ImageFiles(t, img)[file]
	}
	return out
}

// A pod that comes back under its name without its volume (rescheduled
// onto a new claim) keeps its keys, and the cache mounts its solves need
// are warmed from the store PersistCacheMounts keeps.
func TestDiscoveredPodThatLostItsVolumeIsWarmed(t *testing.T) {
	env := testenv.Get(t)
	dns := startDNS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	certs := podCerts(t)
	old := startPod(ctx, t, env, dns, certs, "buildkitd-0", "127.0.0.30", "linux/amd64")
	if err := dns.SetSRV(ctx, svcSRV, old.target()); err != nil {
		t.Fatal(err)
	}
	fleet, err := remote.NewFleet(ctx, remote.Discover(remote.SRV(svcSRV, remote.Resolver(dns.Addr), remote.Interval(500*time.Millisecond)),
		remote.WithTLS(certs.CA, certs.ClientCert, certs.ClientKey)))
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Close()
	n := time.Now().UnixNano()
	store := cache.DirStore(t.TempDir())
	id := mounts.ID(fmt.Sprint("lost-volume-", n))
	key := build.Key("/home/ci/src/app")
	persist := build.PersistCacheMounts(store, build.Namespace("team-app"))
	img := build.Image(busybox(t, env))
	res, err := build.Solve(ctx, fleet, img.Run(fmt.Sprintf("echo warm-%d >> /c/log", n), mounts.Cache("/c", id)), key, persist)
	if err != nil {
		t.Fatal(err)
	}
	if builderOf(res) != "buildkitd-0" || len(res.Report.CacheMounts) != 1 || !res.Report.CacheMounts[0].Exported {
		t.Fatalf("the first build on %s saved %+v", builderOf(res), res.Report.CacheMounts)
	}

	// The pod is rescheduled: same name, a new address, an empty state.
	if err := old.b.Close(); err != nil {
		t.Fatal(err)
	}
	fresh := startPod(ctx, t, env, dns, certs, "buildkitd-0", "127.0.0.31", "linux/amd64")
	if err := dns.SetSRV(ctx, svcSRV, fresh.target()); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("tcp://127.0.0.31:%d", fresh.port)
	took := waitMember(t, fleet, "buildkitd-0", 15*time.Second, func(s remote.MemberStatus, ok bool) bool {
		return ok && s.Address == addr && s.State == remote.StateUp && len(fleet.Members()) == 1
	})
	t.Logf("buildkitd-0 at its new address was up %v after the records changed", took)

	dir, res, err := solveTo(ctx, t, fleet, img.Run(fmt.Sprintf("cat /c/log > /seen # %d", n), mounts.Cache("/c", id)), key, persist)
	if err != nil {
		t.Fatal(err)
	}
	m := res.Report.CacheMounts
	if builderOf(res) != "buildkitd-0" || len(m) != 1 || !m[0].Restored {
		t.Fatalf("the build on the fresh pod %s: cache mounts %+v, want restored", builderOf(res), m)
	}
	if got := testenv.ReadFile(t, dir, "seen"); got != fmt.Sprintf("warm-%d\n", n) {
		t.Errorf("the fresh pod's cache held %q", got)
	}
	t.Logf("restored %d bytes onto the fresh buildkitd-0", m[0].RestoredBytes)
}
