package remote

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/platforms"
	"github.com/serialx/hashring"
)

// fakeSource is a MemberSource a test changes: each set or fail makes Wait
// return once.
type fakeSource struct {
	mu      sync.Mutex
	eps     []Endpoint
	err     error
	changed chan struct{}
}

func newFakeSource(eps ...Endpoint) *fakeSource {
	return &fakeSource{eps: eps, changed: make(chan struct{}, 1)}
}

func (s *fakeSource) set(eps ...Endpoint) {
	s.mu.Lock()
	s.eps, s.err = eps, nil
	s.mu.Unlock()
	s.changed <- struct{}{}
}

func (s *fakeSource) fail(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
	s.changed <- struct{}{}
}

func (s *fakeSource) List(context.Context) ([]Endpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.eps), s.err
}

func (s *fakeSource) Wait(ctx context.Context) error {
	select {
	case <-s.changed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *fakeSource) String() string { return "fake" }

// pods returns endpoints named as a StatefulSet's pods, each at a socket
// that does not exist.
func pods(names ...string) []Endpoint {
	var out []Endpoint
	for _, n := range names {
		out = append(out, Endpoint{Name: n, Address: "unix:///nonexistent/" + n + ".sock"})
	}
	return out
}

// upAll makes every member that has no builder up, with a builder that
// runs linux/amd64 and answers every check, without a daemon.
func upAll(t *testing.T, f *Fleet) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.members {
		if m.b == nil && !m.gone {
			m.b = &Builder{name: m.name, platforms: parseAll(t, amdListed...), declared: m.declared}
			m.state = StateUp
		}
	}
}

// waitFor polls cond until it holds, or fails t after 5 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 5s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func statusOf(f *Fleet, name string) []MemberStatus {
	var out []MemberStatus
	for _, s := range f.Members() {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// The fleet follows its source: a member that leaves drains (its solve
// goes on, it gets no new one) and then leaves the fleet; a new one joins
// the ring; only the keys of those that left or joined move; a pod that
// comes back at another address is a new member under the same name.
func TestFleetFollowsItsSource(t *testing.T) {
	ctx := context.Background()
	src := newFakeSource(pods("pod-0", "pod-1", "pod-2")...)
	f, err := NewFleet(ctx, Discover(src, Platforms("linux/amd64")), Lazy(), RetryBackoff(time.Hour, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.ping = func(context.Context, *Builder) error { return nil }
	if st := f.Sources(); len(st) != 1 || st[0].Members != 3 || st[0].Err != nil || st[0].Source != "fake" {
		t.Fatalf("Sources() = %+v", st)
	}
	keys := someKeys(500)
	route := func(key string) string {
		t.Helper()
		r, err := f.Route("linux/amd64", key)
		if err != nil {
			t.Fatal(err)
		}
		return r.Member
	}
	// Before any member is dialed, it routes by the declared platform.
	before := map[string]string{}
	hr := hashring.New([]string{"pod-0", "pod-1", "pod-2"})
	for _, k := range keys {
		before[k] = route(k)
		if want, _ := hr.GetNode(k); before[k] != want {
			t.Fatalf("Route(%q) = %s, hashring says %s", k, before[k], want)
		}
	}
	upAll(t, f)
	amd := platforms.MustParse("linux/amd64")
	var k1 string
	for _, k := range keys {
		if before[k] == "pod-1" {
			k1 = k
			break
		}
	}
	_, name, release, err := f.Acquire(ctx, amd, k1)
	if err != nil || name != "pod-1" {
		t.Fatalf("Acquire(%q) = %q, %v", k1, name, err)
	}

	// pod-1 leaves while a solve runs on it; pod-3 joins.
	src.set(pods("pod-0", "pod-2", "pod-3")...)
	waitFor(t, "pod-1 draining and pod-3 listed", func() bool {
		s := statusOf(f, "pod-1")
		return len(s) == 1 && s[0].State == StateDraining && s[0].InFlight == 1 && len(statusOf(f, "pod-3")) == 1
	})
	if s := statusOf(f, "pod-3")[0]; s.Source != "fake" || s.State != StateUnknown {
		t.Errorf("pod-3: %+v, want unknown (the fleet is lazy), from fake", s)
	}
	hr = hashring.New([]string{"pod-0", "pod-2", "pod-3"})
	moved := 0
	for _, k := range keys {
		got := route(k)
		if want, _ := hr.GetNode(k); got != want {
			t.Fatalf("after the change, Route(%q) = %s, hashring says %s", k, got, want)
		}
		if got != before[k] {
			moved++
			if before[k] != "pod-1" && got != "pod-3" {
				t.Fatalf("key %q moved from %s, which stayed, to %s, which did not join", k, before[k], got)
			}
		}
	}
	t.Logf("%d of %d keys moved", moved, len(keys))
	upAll(t, f)
	if _, name, r2, err := f.Acquire(ctx, amd, k1); err != nil || name == "pod-1" {
		t.Fatalf("Acquire(%q) with pod-1 draining = %q, %v", k1, name, err)
	} else {
		r2(nil)
	}
	release(nil)
	if s := statusOf(f, "pod-1"); len(s) != 0 {
		t.Fatalf("pod-1 after its last solve ended: %+v, want it gone", s)
	}

	// pod-0 comes back at another address: a new member, same name.
	moved0 := pods("pod-0")[0]
	moved0.Address = "unix:///nonexistent/elsewhere/pod-0.sock"
	src.set(append([]Endpoint{moved0}, pods("pod-2", "pod-3")...)...)
	waitFor(t, "pod-0 at its new address", func() bool {
		s := statusOf(f, "pod-0")
		return len(s) == 1 && s[0].Address == moved0.Address && s[0].State == StateUnknown
	})

	// A failing source keeps the members it listed.
	src.fail(errors.New("lookup failed"))
	waitFor(t, "the source's error", func() bool { return f.Sources()[0].Err != nil })
	if n := len(f.Members()); n != 3 {
		t.Errorf("after the source failed: %d members, want the 3 it listed", n)
	}

	// Members the fleet cannot take are left out, with why.
	bad := []Endpoint{
		{Name: "", Address: "unix:///nonexistent/x.sock"},
		{Name: "plain", Address: "tcp://10.0.0.1:1234"},
		{Name: "pod-2", Address: "unix:///nonexistent/dup.sock"},
		{Name: "arch", Address: "unix:///nonexistent/a.sock", Platforms: []string{"linux/amd46"}},
	}
	src.set(append(pods("pod-2"), bad...)...)
	waitFor(t, "the bad members reported", func() bool {
		st := f.Sources()[0]
		return st.Err != nil && st.Members == 1
	})
	msg := f.Sources()[0].Err.Error()
	for _, want := range []string{"has no name", `member plain: address "tcp://10.0.0.1:1234": refusing plain tcp`, `two members are named "pod-2"`, `unknown architecture "amd46"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("the source's error %q does not say %q", msg, want)
		}
	}
	if names := memberNames(f); !slices.Equal(names, []string{"pod-2"}) {
		t.Errorf("members %v, want pod-2 alone", names)
	}

	// No member: routing says why.
	src.set()
	waitFor(t, "no member", func() bool { return len(f.Members()) == 0 })
	_, err = f.Route("linux/amd64", "k")
	if err == nil || !strings.Contains(err.Error(), "source fake lists no member") {
		t.Errorf("Route with no member: %v", err)
	}
}

func memberNames(f *Fleet) []string {
	var out []string
	for _, s := range f.Members() {
		out = append(out, s.Name)
	}
	return out
}

// A fleet that dials checks a member its source lists before sending it a
// solve: one that does not answer is down, and its keys go to the next
// member.
func TestFleetChecksNewMembersFirst(t *testing.T) {
	ctx := context.Background()
	src := newFakeSource(pods("pod-0", "pod-1")...)
	f, err := NewFleet(ctx, Discover(src, Platforms("linux/amd64")), Lazy(), RetryBackoff(time.Hour, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.ping = func(context.Context, *Builder) error { return nil }
	upAll(t, f)
	f.mu.Lock()
	f.opts.lazy = false
	f.mu.Unlock()
	src.set(pods("pod-0", "pod-1", "pod-2")...)
	waitFor(t, "pod-2 checked", func() bool {
		s := statusOf(f, "pod-2")
		return len(s) == 1 && s[0].State == StateDown
	})
	if err := statusOf(f, "pod-2")[0].Err; err == nil || !strings.Contains(err.Error(), "/nonexistent") {
		t.Errorf("pod-2's error: %v", err)
	}
	hr := hashring.New([]string{"pod-0", "pod-1", "pod-2"})
	for _, k := range someKeys(200) {
		first, _ := hr.GetNode(k)
		r, err := f.Route("linux/amd64", k)
		if err != nil || r.Member == "pod-2" {
			t.Fatalf("Route(%q) = %+v, %v; pod-2 is down", k, r, err)
		}
		if first != "pod-2" && r.Member != first {
			t.Fatalf("Route(%q) = %s, want %s", k, r.Member, first)
		}
	}
}
