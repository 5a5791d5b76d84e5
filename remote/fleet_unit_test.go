package remote

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containerd/platforms"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// fake describes a member that is up without a daemon behind it.
type fake struct {
	name   string
	native string
	listed []string
	max    int
}

// fakeFleet makes a fleet whose members are up and answer every check
// without a daemon, unless down names them.
func fakeFleet(t *testing.T, emulation bool, fakes ...fake) (*Fleet, map[string]*atomic.Bool) {
	t.Helper()
	var opts []FleetOption
	for _, fk := range fakes {
		opts = append(opts, Member("unix:///nonexistent/"+fk.name+".sock", WithName(fk.name), Platforms(fk.native)))
	}
	opts = append(opts, Lazy(), RetryBackoff(time.Hour, time.Hour))
	if emulation {
		opts = append(opts, AllowEmulation())
	}
	f, err := NewFleet(context.Background(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	down := map[string]*atomic.Bool{}
	for i, fk := range fakes {
		m := f.members[i]
		b := &Builder{name: fk.name, platforms: parseAll(t, fk.listed...), declared: m.declared}
		if fk.max > 0 {
			b.slots = make(chan struct{}, fk.max)
		}
		m.b, m.state = b, StateUp
		down[fk.name] = new(atomic.Bool)
	}
	f.ping = func(_ context.Context, b *Builder) error {
		if down[b.name].Load() {
			return status.Error(codes.Unavailable, "connection refused")
		}
		return nil
	}
	return f, down
}

var (
	amdListed = []string{"linux/amd64", "linux/amd64/v2", "linux/arm64"}
	armListed = []string{"linux/arm64", "linux/amd64", "linux/386"}
)

// keyFor returns a key whose first choice on f's ring, among the members
// named, is want.
func keyFor(t *testing.T, f *Fleet, want string, among ...string) string {
	t.Helper()
	for i := range 1000 {
		k := fmt.Sprintf("key-%d", i)
		for _, name := range f.ring.order(k) {
			if !contains(among, name) {
				continue
			}
			if name == want {
				return k
			}
			break
		}
	}
	t.Fatalf("no key lands on %s", want)
	return ""
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func TestFleetRoutesNativeThenCompatibleThenEmulated(t *testing.T) {
	ctx := context.Background()
	f, down := fakeFleet(t, true,
		fake{name: "amd", native: "linux/amd64", listed: amdListed},
		fake{name: "arm", native: "linux/arm64", listed: armListed},
	)
	for _, tc := range []struct {
		p      string
		member string
		match  Match
	}{
		{"linux/amd64", "amd", Native},
		{"linux/arm64", "arm", Native},
		{"linux/arm/v7", "arm", Compatible},
		{"linux/386", "amd", Compatible},
	} {
		r, err := f.Route(tc.p, "k")
		if err != nil || r.Member != tc.member || r.Match != tc.match {
			t.Errorf("Route(%s) = %+v, %v; want %s %v", tc.p, r, err, tc.member, tc.match)
		}
		_, name, release, err := f.Acquire(ctx, platforms.MustParse(tc.p), "k")
		if err != nil || name != tc.member {
			t.Errorf("Acquire(%s) = %q, %v; want %s", tc.p, name, err, tc.member)
			continue
		}
		release(nil)
	}
	// With arm down, arm64 goes to amd under emulation.
	down["arm"].Store(true)
	_, name, release, err := f.Acquire(ctx, platforms.MustParse("linux/arm64"), "k")
	if err != nil || name != "amd" {
		t.Fatalf("arm64 with arm down and emulation allowed: Acquire = %q, %v; want amd", name, err)
	}
	release(nil)
	if st := f.Members()[1]; st.State != StateDown || st.Err == nil || st.RetryAt.IsZero() {
		t.Errorf("arm after a failed check: %+v, want down with its error and a retry time", st)
	}
}

func TestFleetWithoutEmulationSaysWhatWouldHelp(t *testing.T) {
	ctx := context.Background()
	f, down := fakeFleet(t, false,
		fake{name: "amd", native: "linux/amd64", listed: amdListed},
		fake{name: "arm", native: "linux/arm64", listed: armListed},
	)
	down["arm"].Store(true)
	_, _, _, err := f.Acquire(ctx, platforms.MustParse("linux/arm64"), "k")
	var re *RouteError
	if !errors.As(err, &re) {
		t.Fatalf("Acquire = %v, want a *RouteError", err)
	}
	if len(re.Down) != 1 || re.Down[0].Name != "arm" || len(re.Emulators) != 1 || re.Emulators[0] != "amd" {
		t.Errorf("RouteError = %+v, want arm down and amd as an emulator", re)
	}
	for _, want := range []string{"linux/arm64", "arm runs it but is down", "connection refused", "amd could emulate it", "AllowEmulation"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	// No member lists riscv64 at all.
	_, err = f.Route("linux/riscv64", "k")
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "amd (linux/amd64)") {
		t.Errorf("Route(riscv64) = %v, want a *RouteError listing the members", err)
	}
}

// A member at its concurrency limit passes the solve to the next member on
// the ring; when all are full, Acquire waits for a release.
func TestFleetSpillsAtConcurrencyLimit(t *testing.T) {
	ctx := context.Background()
	f, _ := fakeFleet(t, false,
		fake{name: "a", native: "linux/amd64", listed: amdListed, max: 1},
		fake{name: "b", native: "linux/amd64", listed: amdListed, max: 1},
		fake{name: "c", native: "linux/amd64", listed: amdListed, max: 1},
	)
	key := keyFor(t, f, "b", "a", "b", "c")
	amd := platforms.MustParse("linux/amd64")
	var order []string
	order = append(order, f.ring.order(key)...)
	var releases []func(error)
	for i := range 3 {
		_, name, release, err := f.Acquire(ctx, amd, key)
		if err != nil {
			t.Fatal(err)
		}
		if name != order[i] {
			t.Fatalf("solve %d went to %s, want %s (ring order %v)", i, name, order[i], order)
		}
		releases = append(releases, release)
	}
	if st := f.Members(); st[0].InFlight+st[1].InFlight+st[2].InFlight != 3 {
		t.Errorf("in flight: %+v, want one on each", st)
	}
	// All full: the next Acquire waits, then gets the first member freed.
	got := make(chan string, 1)
	go func() {
		_, name, release, err := f.Acquire(ctx, amd, key)
		if err != nil {
			got <- err.Error()
			return
		}
		release(nil)
		got <- name
	}()
	select {
	case name := <-got:
		t.Fatalf("Acquire with every member full returned %q at once, want it to wait", name)
	case <-time.After(100 * time.Millisecond):
	}
	releases[1](nil) // frees the second member on the ring
	select {
	case name := <-got:
		if name != order[1] {
			t.Errorf("after a release, the waiting Acquire got %s, want %s", name, order[1])
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Acquire still waiting after a release")
	}
	// Releasing twice has no effect on the count.
	releases[1](nil)
	releases[0](nil)
	releases[2](nil)
	for _, st := range f.Members() {
		if st.InFlight != 0 {
			t.Errorf("%s: %d in flight after every release", st.Name, st.InFlight)
		}
	}
	// With a free slot on the first choice, the key is back on it.
	_, name, release, err := f.Acquire(ctx, amd, key)
	if err != nil || name != order[0] {
		t.Errorf("Acquire = %q, %v; want %s", name, err, order[0])
	}
	release(nil)

	// A context that ends while waiting.
	var rs []func(error)
	for range 3 {
		_, _, r, err := f.Acquire(ctx, amd, key)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, _, _, err := f.Acquire(cctx, amd, key); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Acquire with every member full and a short context = %v, want the deadline", err)
	}
	for _, r := range rs {
		r(nil)
	}
}

// A release with a lost connection marks the member down: the key's next
// solve goes to the next member, and only that key's member changes.
func TestFleetReleaseWithConnectionErrorMarksDown(t *testing.T) {
	ctx := context.Background()
	f, _ := fakeFleet(t, false,
		fake{name: "a", native: "linux/amd64", listed: amdListed},
		fake{name: "b", native: "linux/amd64", listed: amdListed},
	)
	amd := platforms.MustParse("linux/amd64")
	ka, kb := keyFor(t, f, "a", "a", "b"), keyFor(t, f, "b", "a", "b")
	_, name, release, err := f.Acquire(ctx, amd, ka)
	if err != nil || name != "a" {
		t.Fatalf("Acquire(ka) = %q, %v", name, err)
	}
	release(fmt.Errorf("build: solve: %w", &ConnectionError{Builder: "a", Err: status.Error(codes.Unavailable, "EOF")}))
	if st := f.Members()[0]; st.State != StateDown {
		t.Fatalf("a after a lost connection: %v, want down", st.State)
	}
	if _, name, release, err = f.Acquire(ctx, amd, ka); err != nil || name != "b" {
		t.Fatalf("retry of ka = %q, %v; want b", name, err)
	}
	release(errors.New("a step failed")) // not a connection error
	if st := f.Members()[1]; st.State != StateUp {
		t.Fatalf("b after a failed step: %v, want up", st.State)
	}
	if _, name, release, err = f.Acquire(ctx, amd, kb); err != nil || name != "b" {
		t.Fatalf("kb = %q, %v; want b, where it was", name, err)
	}
	release(nil)
}

func TestFleetBackoffDoublesAndRetries(t *testing.T) {
	f, _ := fakeFleet(t, false, fake{name: "a", native: "linux/amd64", listed: amdListed})
	f.opts.minBackoff, f.opts.maxBackoff = time.Second, 3*time.Second
	m := f.members[0]
	var got []time.Duration
	for range 4 {
		f.mu.Lock()
		f.markDownLocked(m, errors.New("no"))
		f.mu.Unlock()
		got = append(got, m.backoff)
	}
	if want := []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("backoffs %v, want %v", got, want)
	}
	// Past its retry time, the member is checked again and comes back.
	f.mu.Lock()
	m.retryAt = time.Now().Add(-time.Millisecond)
	f.mu.Unlock()
	_, name, release, err := f.Acquire(context.Background(), platforms.MustParse("linux/amd64"), "k")
	if err != nil || name != "a" {
		t.Fatalf("Acquire after the retry time = %q, %v; want a", name, err)
	}
	release(nil)
	if st := f.Members()[0]; st.State != StateUp || st.Err != nil {
		t.Errorf("a after a good check: %+v, want up", st)
	}
}

func TestFleetOptionsAreChecked(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		opts []FleetOption
		want string
	}{
		{nil, "no member"},
		{[]FleetOption{Member("")}, "empty address"},
		{[]FleetOption{Member("unix:///a.sock", WithName("x")), Member("unix:///b.sock", WithName("x"))}, `two members are named "x"`},
		{[]FleetOption{Member("tcp://10.0.0.1:1234")}, "refusing plain tcp"},
		{[]FleetOption{Member("unix:///a.sock", Platforms("linux/nope/x/y"))}, "Platforms"},
		{[]FleetOption{Member("unix:///a.sock"), ProbeTimeout(0)}, "ProbeTimeout"},
		{[]FleetOption{Member("unix:///a.sock"), RetryBackoff(2, 1)}, "RetryBackoff"},
		{[]FleetOption{FromBuilder(nil)}, "nil builder"},
	} {
		_, err := NewFleet(ctx, append(tc.opts, Lazy())...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewFleet(%d options) = %v, want an error saying %q", len(tc.opts), err, tc.want)
		}
	}
}
