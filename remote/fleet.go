package remote

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/containerd/platforms"
	"github.com/moby/buildkit/client"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// FleetOption configures [NewFleet]: its members and how it routes.
type FleetOption func(*fleetOptions) error

type fleetOptions struct {
	members    []memberSpec
	emulation  bool
	probe      time.Duration
	minBackoff time.Duration
	maxBackoff time.Duration
	lazy       bool
}

type memberSpec struct {
	addr string
	opts dialOptions
	b    *Builder // given with FromBuilder; nil when the fleet dials
}

// Member adds the builder at addr to the fleet, dialed with opts: [WithName]
// (its name in reports and on the hash ring; the default is addr), [WithTLS]
// and the other dial options, [Platforms] to declare its native platforms,
// and [MaxConcurrency] to bound the solves it runs at once. The address and
// the TLS files are checked by NewFleet before anything is dialed. The fleet
// closes the builders it dials.
func Member(addr string, opts ...DialOption) FleetOption {
	return func(o *fleetOptions) error {
		if addr == "" {
			return errors.New("remote: Member: empty address")
		}
		do, err := makeDialOptions(opts)
		if err != nil {
			return fmt.Errorf("remote: Member(%q): %w", addr, err)
		}
		o.members = append(o.members, memberSpec{addr: addr, opts: do})
		return nil
	}
}

// FromBuilder adds a builder the caller already has, such as one made by
// [Start], to the fleet. Its name, declared platforms and concurrency limit
// are the ones it was dialed with. The fleet does not close it.
func FromBuilder(b *Builder) FleetOption {
	return func(o *fleetOptions) error {
		if b == nil {
			return errors.New("remote: FromBuilder: nil builder")
		}
		o.members = append(o.members, memberSpec{addr: b.addr, opts: b.opts, b: b})
		return nil
	}
}

// AllowEmulation lets the fleet send a platform that no member runs natively
// or compatibly to a member that emulates it. The default is to fail with a
// [*RouteError] instead: emulated builds are often ten times slower.
func AllowEmulation() FleetOption {
	return func(o *fleetOptions) error {
		o.emulation = true
		return nil
	}
}

// ProbeTimeout bounds each check of whether a member answers: the dial of a
// member not yet connected, and the call that checks a member before a solve
// is sent to it. It is the default [WithWait] of members. The default is 5
// seconds.
func ProbeTimeout(d time.Duration) FleetOption {
	return func(o *fleetOptions) error {
		if d <= 0 {
			return fmt.Errorf("remote: ProbeTimeout(%v): must be positive", d)
		}
		o.probe = d
		return nil
	}
}

// RetryBackoff sets how long a member that did not answer is left out
// before the fleet checks it again: min after the first failure, doubling
// with each failure that follows, up to max. The default is 1 second to 1
// minute.
func RetryBackoff(min, max time.Duration) FleetOption {
	return func(o *fleetOptions) error {
		if min <= 0 || max < min {
			return fmt.Errorf("remote: RetryBackoff(%v, %v): want 0 < min <= max", min, max)
		}
		o.minBackoff, o.maxBackoff = min, max
		return nil
	}
}

// Lazy makes NewFleet return without dialing: each member is dialed by the
// first Acquire that could send it a solve. [Fleet.Route] then routes by the
// platforms members declare with [Platforms]. The default dials every member
// in NewFleet.
func Lazy() FleetOption {
	return func(o *fleetOptions) error {
		o.lazy = true
		return nil
	}
}

// Fleet is a set of builders that routes each solve by its platform and a
// key. It is safe for concurrent use, and satisfies build.Builder.
//
// A platform goes to a member that runs it natively (same OS, architecture
// and variant), else to one that runs it compatibly (a linux/arm64 member for
// linux/arm/v7), else, with [AllowEmulation], to one that emulates it. A
// member's native platforms are the ones it declares with [Platforms], else
// the first platform its daemon lists.
//
// Among the members of the best kind, the key picks one by consistent
// hashing over the members' names, so that the same key keeps landing on the
// same member and its cache stays warm there. A member that does not answer
// is left out until its retry time, and only the keys it held move; a member
// at its [MaxConcurrency] limit passes the solve to the next member on the
// ring; when all are busy, Acquire waits.
type Fleet struct {
	opts    fleetOptions
	members []*member
	ring    *ring

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	probes sync.WaitGroup

	// ping checks that a builder answers; tests replace it.
	ping func(context.Context, *Builder) error

	mu      sync.Mutex
	changed chan struct{} // closed and replaced when a slot frees or a member changes state
	closed  bool
}

// MemberState is whether a fleet's member answers.
type MemberState int

const (
	// StateUnknown: the member has not been dialed yet.
	StateUnknown MemberState = iota
	// StateUp: the member answered its last check.
	StateUp
	// StateDown: the member did not answer, or lost its connection during
	// a solve; it is checked again at its retry time.
	StateDown
)

// String returns "unknown", "up" or "down".
func (s MemberState) String() string {
	switch s {
	case StateUp:
		return "up"
	case StateDown:
		return "down"
	}
	return "unknown"
}

// MemberStatus is a snapshot of one member of a fleet.
type MemberStatus struct {
	// Name is the member's name.
	Name string
	// Address is the member's address.
	Address string
	// State says whether the member answers.
	State MemberState
	// Native lists the member's native platforms; nil while they are not
	// known (not declared and not dialed yet).
	Native []string
	// Platforms lists every platform the member's daemon lists, nil while
	// it was never dialed.
	Platforms []string
	// Err is why the member is down.
	Err error
	// RetryAt is when a member that is down is checked again.
	RetryAt time.Time
	// InFlight is how many solves the fleet has running on the member.
	InFlight int
}

type member struct {
	name     string
	addr     string
	spec     dialOptions
	owned    bool // the fleet dialed it and closes it
	declared []ocispecs.Platform

	// Guarded by Fleet.mu.
	b        *Builder
	state    MemberState
	err      error
	backoff  time.Duration
	retryAt  time.Time
	probing  chan struct{} // closed when the running check ends
	inflight int
}

// match says how m runs p, from what is known of it.
func (m *member) match(p ocispecs.Platform) Match {
	if m.b != nil {
		return m.b.Match(p)
	}
	if len(m.declared) > 0 {
		return matchPlatform(m.declared, m.declared, p)
	}
	return 0
}

func (m *member) known() bool { return m.b != nil || len(m.declared) > 0 }

func (m *member) native() []ocispecs.Platform {
	if m.b != nil {
		return m.b.Native()
	}
	return m.declared
}

// NewFleet makes a fleet of the members given with [Member] and
// [FromBuilder], routed as the other options say. It checks every member's
// address and TLS files first, then dials the members concurrently, each
// bounded by its [WithWait] (default: [ProbeTimeout]). Members that do not
// answer are down and checked again later; NewFleet fails only when no
// member answers. With [Lazy], it dials nothing.
func NewFleet(ctx context.Context, opts ...FleetOption) (*Fleet, error) {
	o := fleetOptions{probe: 5 * time.Second, minBackoff: time.Second, maxBackoff: time.Minute}
	var errs []error
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&o); err != nil {
			errs = append(errs, err)
		}
	}
	if len(o.members) == 0 {
		errs = append(errs, errors.New("remote: NewFleet: no member (add remote.Member or remote.FromBuilder)"))
	}
	f := &Fleet{opts: o, changed: make(chan struct{}), ping: pingBuilder}
	names := map[string]bool{}
	var ringNames []string
	for _, s := range o.members {
		m := &member{addr: s.addr, spec: s.opts, b: s.b, owned: s.b == nil, declared: s.opts.platforms}
		m.name = s.opts.name
		if s.b != nil {
			m.name = s.b.name
			m.state = StateUp
			m.spec.wait = 0 // the builder's own wait was for its first dial
		}
		if m.name == "" {
			m.name = s.addr
		}
		if m.spec.wait == 0 {
			m.spec.wait = o.probe
		}
		m.spec.name = m.name
		if names[m.name] {
			errs = append(errs, fmt.Errorf("remote: NewFleet: two members are named %q (give each its own WithName)", m.name))
		}
		names[m.name] = true
		if m.owned {
			// Everything that can be checked without dialing.
			if _, err := prepare(m.addr, &m.spec); err != nil {
				errs = append(errs, fmt.Errorf("remote: NewFleet: member %s: %w", m.name, err))
			}
		}
		f.members = append(f.members, m)
		ringNames = append(ringNames, m.name)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	f.ring = newRing(ringNames)
	f.ctx, f.cancel = context.WithCancel(context.Background())
	if o.lazy {
		return f, nil
	}
	if err := f.refresh(ctx, nil); err != nil {
		f.Close()
		return nil, err
	}
	f.mu.Lock()
	var downs []error
	anyUp := false
	for _, m := range f.members {
		if m.state == StateUp {
			anyUp = true
		} else if m.err != nil {
			downs = append(downs, fmt.Errorf("%s: %w", m.name, m.err))
		}
	}
	f.mu.Unlock()
	if !anyUp {
		f.Close()
		return nil, fmt.Errorf("remote: NewFleet: no member answered: %w", errors.Join(downs...))
	}
	return f, nil
}

// Platforms returns the native platforms of the fleet's members, in the
// order the members were given and without repeats, then, with
// [AllowEmulation], the platforms they emulate. Members whose platforms are
// not known yet (not declared, not dialed) add none. The first is the
// platform a solve without a target platform builds for.
func (f *Fleet) Platforms() []ocispecs.Platform {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []ocispecs.Platform
	seen := map[string]bool{}
	add := func(p ocispecs.Platform) {
		p = platforms.Normalize(p)
		if k := platforms.Format(p); !seen[k] {
			seen[k] = true
			out = append(out, p)
		}
	}
	for _, m := range f.members {
		for _, p := range m.native() {
			add(p)
		}
	}
	if f.opts.emulation {
		for _, m := range f.members {
			if m.b != nil {
				for _, p := range m.b.platforms {
					add(p)
				}
			}
		}
	}
	return out
}

// Members returns the state of each member, in the order they were given.
func (f *Fleet) Members() []MemberStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]MemberStatus, len(f.members))
	for i, m := range f.members {
		out[i] = f.statusLocked(m)
	}
	return out
}

func (f *Fleet) statusLocked(m *member) MemberStatus {
	s := MemberStatus{Name: m.name, Address: m.addr, State: m.state, Err: m.err, InFlight: m.inflight}
	if m.state == StateDown {
		s.RetryAt = m.retryAt
	}
	if n := m.native(); len(n) > 0 {
		s.Native = formatPlatforms(n)
	}
	if m.b != nil {
		s.Platforms = formatPlatforms(m.b.platforms)
	}
	return s
}

// Route is where a fleet sends a solve, as [Fleet.Route] reports it.
type Route struct {
	// Member is the name of the member.
	Member string
	// Match is how the member runs the platform.
	Match Match
}

// Route says where a solve of platform p (such as "linux/arm64") with key
// would go now, from what the fleet knows, without contacting any member or
// taking a slot: members not dialed yet count by the platforms they declare.
// It returns a [*RouteError] when no member can build p.
func (f *Fleet) Route(p string, key string) (Route, error) {
	pp, err := platforms.Parse(p)
	if err != nil {
		return Route{}, fmt.Errorf("remote: Route(%q): %v", p, err)
	}
	pp = platforms.Normalize(pp)
	order := f.ring.order(key)
	f.mu.Lock()
	defer f.mu.Unlock()
	m, match, _, rerr := f.chooseLocked(pp, order, false)
	if m == nil {
		if rerr != nil {
			return Route{}, rerr
		}
		return Route{}, f.routeErrorLocked(pp)
	}
	return Route{Member: m.name, Match: match}, nil
}

// Acquire picks the member that builds platform p for key, checks that it
// answers, and returns its client and name. Members that do not answer are
// marked down and skipped; when every member of the best kind is at its
// concurrency limit, Acquire waits for a slot until ctx ends. It returns a
// [*RouteError] when no member can build p now. Release must be called
// when the solve ends, with its error: a [*ConnectionError] (or any gRPC
// Unavailable error) marks the member down, so that a retry goes to another
// member.
//
// Acquire makes *Fleet satisfy build.Builder.
func (f *Fleet) Acquire(ctx context.Context, p ocispecs.Platform, key string) (c *client.Client, name string, release func(error), err error) {
	p = platforms.Normalize(p)
	order := f.ring.order(key)
	for {
		if err := f.refresh(ctx, &p); err != nil {
			return nil, "", nil, err
		}
		f.mu.Lock()
		if f.closed {
			f.mu.Unlock()
			return nil, "", nil, errors.New("remote: the fleet is closed")
		}
		m, _, full, rerr := f.chooseLocked(p, order, true)
		var b *Builder
		if m != nil {
			b = m.b
		}
		wait := f.changed
		f.mu.Unlock()
		if m != nil {
			if err := f.check(ctx, m); err != nil {
				f.mu.Lock()
				m.inflight--
				f.mu.Unlock()
				b.releaseSlot()
				if ctx.Err() != nil {
					return nil, "", nil, fmt.Errorf("remote: checking member %s: %w", m.name, context.Cause(ctx))
				}
				f.markDown(m, err)
				continue
			}
			return b.c, m.name, f.releaser(m, b), nil
		}
		if !full {
			if rerr == nil {
				f.mu.Lock()
				rerr = f.routeErrorLocked(p)
				f.mu.Unlock()
			}
			return nil, "", nil, rerr
		}
		select {
		case <-ctx.Done():
			return nil, "", nil, fmt.Errorf("remote: waiting for a member with a free slot for %s: %w", platforms.Format(p), context.Cause(ctx))
		case <-wait:
		case <-time.After(time.Second):
			// A slot may also free outside the fleet, when a member is a
			// Builder used directly too.
		}
	}
}

// chooseLocked picks the member for p among the best kind of match, in the
// ring's order for the key. With take, only members that answered count and
// the member's slot is taken; full reports that members match but all are
// at their limit. Without take, members not dialed count by what they
// declare.
func (f *Fleet) chooseLocked(p ocispecs.Platform, order []int, take bool) (m *member, match Match, full bool, rerr *RouteError) {
	eligible := func(m *member) bool {
		if m.state == StateUp {
			return m.b != nil
		}
		return !take && m.state == StateUnknown && m.known()
	}
	best := Match(0)
	for _, m := range f.members {
		if !eligible(m) {
			continue
		}
		mt := m.match(p)
		if mt == 0 || (mt == Emulated && !f.opts.emulation) {
			continue
		}
		if best == 0 || mt < best {
			best = mt
		}
	}
	if best == 0 {
		return nil, 0, false, f.routeErrorLocked(p)
	}
	var first *member
	for _, i := range order {
		m := f.members[i]
		if !eligible(m) || m.match(p) != best {
			continue
		}
		if first == nil {
			first = m
		}
		if take {
			if m.b.tryAcquireSlot() {
				m.inflight++
				return m, best, false, nil
			}
			full = true
			continue
		}
		if m.b != nil && m.b.full() {
			continue
		}
		return m, best, false, nil
	}
	if !take {
		return first, best, false, nil
	}
	return nil, best, full, nil
}

func (f *Fleet) routeErrorLocked(p ocispecs.Platform) *RouteError {
	e := &RouteError{Platform: platforms.Format(p)}
	for _, m := range f.members {
		desc := m.name + " (platforms unknown until dialed)"
		if n := m.native(); len(n) > 0 {
			desc = fmt.Sprintf("%s (%s)", m.name, strings.Join(formatPlatforms(n), ", "))
		}
		if m.state != StateUp {
			desc += " " + m.state.String()
		}
		e.Members = append(e.Members, desc)
		mt := m.match(p)
		switch {
		case mt == 0:
		case m.state == StateDown && (mt != Emulated || f.opts.emulation):
			e.Down = append(e.Down, f.statusLocked(m))
		case mt == Emulated && !f.opts.emulation:
			e.Emulators = append(e.Emulators, m.name)
		}
	}
	return e
}

// refresh checks, concurrently, the members that are due for a check (never
// dialed, or down past their retry time) and could build p (any platform
// when p is nil), and waits for those checks and any already running.
func (f *Fleet) refresh(ctx context.Context, p *ocispecs.Platform) error {
	now := time.Now()
	var waits []chan struct{}
	f.mu.Lock()
	for _, m := range f.members {
		if p != nil && m.known() {
			mt := m.match(*p)
			if mt == 0 || (mt == Emulated && !f.opts.emulation) {
				continue
			}
		}
		if m.probing != nil {
			waits = append(waits, m.probing)
			continue
		}
		due := m.state == StateUnknown || (m.state == StateDown && !now.Before(m.retryAt))
		if !due || f.closed {
			continue
		}
		ch := make(chan struct{})
		m.probing = ch
		waits = append(waits, ch)
		f.probes.Add(1)
		go f.probe(m, ch)
	}
	f.mu.Unlock()
	for _, ch := range waits {
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("remote: checking the fleet's members: %w", context.Cause(ctx))
		}
	}
	return nil
}

// probe dials m, or checks that its connection answers, and records the
// outcome.
func (f *Fleet) probe(m *member, done chan struct{}) {
	defer f.probes.Done()
	f.mu.Lock()
	b := m.b
	f.mu.Unlock()
	var err error
	if b == nil {
		b, err = dial(f.ctx, m.addr, m.spec)
	} else {
		ctx, cancel := context.WithTimeout(f.ctx, m.spec.wait)
		err = f.ping(ctx, b)
		cancel()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil && m.b == nil {
		if f.closed {
			b.Close()
		} else {
			m.b = b
		}
	}
	if err == nil {
		f.markUpLocked(m)
	} else {
		f.markDownLocked(m, err)
	}
	m.probing = nil
	close(done)
	f.broadcastLocked()
}

// check makes sure m answers before a solve goes to it.
func (f *Fleet) check(ctx context.Context, m *member) error {
	f.mu.Lock()
	b := m.b
	f.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, m.spec.wait)
	defer cancel()
	if err := f.ping(cctx, b); err != nil {
		return err
	}
	f.mu.Lock()
	f.markUpLocked(m)
	f.mu.Unlock()
	return nil
}

func pingBuilder(ctx context.Context, b *Builder) error {
	_, err := b.c.ListWorkers(ctx)
	return err
}

func (f *Fleet) markUpLocked(m *member) {
	m.state, m.err, m.backoff = StateUp, nil, 0
}

func (f *Fleet) markDown(m *member, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.markDownLocked(m, err)
	f.broadcastLocked()
}

func (f *Fleet) markDownLocked(m *member, err error) {
	if m.state == StateDown {
		m.backoff = min(2*m.backoff, f.opts.maxBackoff)
	} else {
		m.backoff = f.opts.minBackoff
	}
	m.state, m.err, m.retryAt = StateDown, err, time.Now().Add(m.backoff)
}

func (f *Fleet) broadcastLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// releaser returns the release function of a solve on m.
func (f *Fleet) releaser(m *member, b *Builder) func(error) {
	var once sync.Once
	return func(err error) {
		once.Do(func() {
			b.releaseSlot()
			f.mu.Lock()
			defer f.mu.Unlock()
			m.inflight--
			if lostConnection(err) {
				f.markDownLocked(m, err)
			}
			f.broadcastLocked()
		})
	}
}

// lostConnection reports whether err says the connection to a builder is
// down.
func lostConnection(err error) bool {
	if err == nil {
		return false
	}
	var ce *ConnectionError
	return errors.As(err, &ce) || status.Code(err) == codes.Unavailable
}

// Close closes the builders the fleet dialed, not those given with
// [FromBuilder], and waits for running checks to end. Solves running on
// the fleet's builders fail. It is safe to call more than once.
func (f *Fleet) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	if f.cancel != nil {
		f.cancel()
	}
	f.broadcastLocked()
	f.mu.Unlock()
	f.probes.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	var errs []error
	for _, m := range f.members {
		if m.owned && m.b != nil {
			errs = append(errs, m.b.Close())
		}
	}
	return errors.Join(errs...)
}
