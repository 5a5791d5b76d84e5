package remote

import (
	"context"
	"fmt"
	"time"

	"github.com/moby/buildkit/client"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// MemberState is whether a fleet's member answers, or that it is leaving
// the fleet.
type MemberState int

const (
	// StateUnknown: the member has not been dialed yet.
	StateUnknown MemberState = iota
	// StateUp: the member answered its last check.
	StateUp
	// StateDown: the member did not answer, or lost its connection during
	// a solve; it is checked again at its retry time.
	StateDown
	// StateDraining: the member left its [MemberSource]. It gets no new
	// solves; the ones running on it go on, and when the last ends the
	// fleet closes it and it leaves [Fleet.Members].
	StateDraining
)

// String returns "unknown", "up", "down" or "draining".
func (s MemberState) String() string {
	switch s {
	case StateUp:
		return "up"
	case StateDown:
		return "down"
	case StateDraining:
		return "draining"
	}
	return "unknown"
}

// MemberStatus is a snapshot of one member of a fleet.
type MemberStatus struct {
	// Name is the member's name.
	Name string
	// Address is the member's address, with any password in it replaced
	// by "xxxxx"; "" for a member given with [FromClient].
	Address string
	// Source names the [MemberSource] that listed the member (its
	// String); "" for a member given to [NewFleet] itself.
	Source string
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
	client   *client.Client // given with FromClient; the fleet does not close it
	source   *fleetSource   // nil for a member given to NewFleet

	// Guarded by Fleet.mu.
	b        *Builder
	state    MemberState
	err      error
	backoff  time.Duration
	retryAt  time.Time
	probing  chan struct{} // closed when the running check ends
	inflight int
	gone     bool // left its source: drains, then leaves f.members
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

// Members returns the state of each member: those given to [NewFleet] in
// the order they were given, then those its sources listed, in the order
// they joined, draining ones included.
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
	s := MemberStatus{Name: m.name, Address: redact(m.addr), State: m.state, Err: m.err, InFlight: m.inflight}
	if m.source != nil {
		s.Source = m.source.name
	}
	if m.state == StateDown {
		s.RetryAt = m.retryAt
	}
	if m.gone {
		s.State = StateDraining
	}
	if n := m.native(); len(n) > 0 {
		s.Native = formatPlatforms(n)
	}
	if m.b != nil {
		s.Platforms = formatPlatforms(m.b.platforms)
	}
	return s
}

// refresh checks, concurrently, the members that are due for a check (never
// dialed, or down past their retry time) and could build p (any platform
// when p is nil), and waits for those checks and any already running.
func (f *Fleet) refresh(ctx context.Context, p *ocispecs.Platform) error {
	now := time.Now()
	var waits []chan struct{}
	f.mu.Lock()
	for _, m := range f.members {
		if m.gone {
			continue
		}
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
	switch {
	case b == nil && m.client != nil:
		b, err = clientBuilder(f.ctx, m.client, m.spec)
	case b == nil:
		b, err = dial(f.ctx, m.addr, m.spec)
	default:
		ctx, cancel := context.WithTimeout(f.ctx, m.spec.wait)
		err = f.ping(ctx, b)
		cancel()
	}
	f.mu.Lock()
	if err == nil && m.b == nil {
		if f.closed && m.owned {
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
	drop := f.dropIfDrainedLocked(m)
	f.broadcastLocked()
	f.mu.Unlock()
	if drop != nil {
		drop.Close()
	}
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

func (f *Fleet) markDownLocked(m *member, err error) {
	if m.state == StateDown {
		m.backoff = min(2*m.backoff, f.opts.maxBackoff)
	} else {
		m.backoff = f.opts.minBackoff
	}
	m.state, m.err, m.retryAt = StateDown, err, time.Now().Add(m.backoff)
}
