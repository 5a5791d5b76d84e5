package remote

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/containerd/platforms"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
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
// (its name in reports and on the hash ring; the default is addr, with any
// password in it redacted), [WithTLS] and the other dial options,
// [Platforms] to declare its native platforms, and [MaxConcurrency] to
// bound the solves it runs at once. The address and the TLS files are
// checked by NewFleet before anything is dialed. The fleet closes the
// builders it dials.
func Member(addr string, opts ...DialOption) FleetOption {
	return func(o *fleetOptions) error {
		if addr == "" {
			return errors.New(`Member(""): empty address (give the builder's address, such as "tcp://arm-1:1234" or "unix:///run/buildkit/buildkitd.sock")`)
		}
		do, err := makeDialOptions(fmt.Sprintf("Member(%q): ", redact(addr)), opts)
		if err != nil {
			return err
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
			return errors.New("FromBuilder(nil): nil builder (pass a *Builder made by remote.Dial or remote.Start)")
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
			return fmt.Errorf("ProbeTimeout(%v): must be positive (such as remote.ProbeTimeout(5*time.Second), the default)", d)
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
			return fmt.Errorf("RetryBackoff(%v, %v): want 0 < min <= max (such as remote.RetryBackoff(time.Second, time.Minute), the default)", min, max)
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
			errs = append(errs, prefixed("remote: ", []error{err}))
		}
	}
	if len(o.members) == 0 && len(errs) == 0 {
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
			m.name = redact(s.addr)
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
				if m.name == redact(m.addr) {
					// The error names the address, which is its name.
					errs = append(errs, fmt.Errorf("remote: NewFleet: member %w", unprefixed(err)))
				} else {
					errs = append(errs, fmt.Errorf("remote: NewFleet: member %s: %w", m.name, unprefixed(err)))
				}
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

// broadcastLocked wakes the Acquire calls waiting for a free slot or for a
// member to change state.
func (f *Fleet) broadcastLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}
