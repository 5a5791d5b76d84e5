package remote

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/containerd/platforms"
	"github.com/moby/buildkit/client"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// FleetOption configures [NewFleet]: its members and how it routes.
type FleetOption func(*fleetOptions) error

type fleetOptions struct {
	members    []memberSpec
	sources    []sourceSpec
	emulation  bool
	probe      time.Duration
	minBackoff time.Duration
	maxBackoff time.Duration
	lazy       bool
	points     int // points per member on the ring; 0: one
}

type memberSpec struct {
	addr   string
	opts   dialOptions
	b      *Builder       // given with FromBuilder; nil when the fleet dials
	client *client.Client // given with FromClient
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

// FromClient adds a builder the caller reaches through a BuildKit client it
// already has, such as the one a managed builder service hands out for a
// machine it started (Depot's machine.Acquire, then Connect). opts must
// name it with [WithName], its name on the hash ring, and may declare its
// platforms with [Platforms] (for a managed machine, the platform it was
// acquired for), bound its solves with [MaxConcurrency] and its checks
// with [WithWait]; options about connecting ([WithTLS], [WithTLSPEM],
// [WithServerName], [AllowInsecure], [WithKeepalive]) do not apply, since
// the client is already connected. The fleet checks it like a member it
// dials, and does not close it: the caller does, after closing the fleet.
func FromClient(c *client.Client, opts ...DialOption) FleetOption {
	return func(o *fleetOptions) error {
		if c == nil {
			return errors.New("FromClient(nil): nil client (pass the *client.Client of a builder you are connected to, with remote.WithName)")
		}
		do, err := makeDialOptions("FromClient: ", opts)
		if err != nil {
			return err
		}
		var errs []error
		if do.name == "" {
			errs = append(errs, errors.New(`FromClient: no name (add remote.WithName("depot-arm64"): a client has no address to name it by)`))
		}
		if do.tls || do.insecure || do.keepalive != 0 || do.serverName != "" {
			errs = append(errs, fmt.Errorf("FromClient(%s): WithTLS, WithTLSPEM, WithServerName, AllowInsecure and WithKeepalive do not apply to a client that is already connected (give them where the client is made)", do.name))
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
		o.members = append(o.members, memberSpec{opts: do, client: c})
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
// is sent to it. It is the default [WithWait] of members, and it bounds each
// time a [MemberSource] is asked for its members. The default is 5 seconds.
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

// RingPoints gives each member n points on the hash ring instead of one.
// More points spread keys more evenly: with 160, five members each hold
// within about an eighth of their fair share, and a third member added to
// two takes about a third of the keys. But a key's member then differs
// from the pod that buildx's kubernetes driver (loadbalance=sticky) and
// BuildKit's examples/kubernetes/consistenthash pick for the same key
// and pod names: they use github.com/serialx/hashring with one point each.
// The default is 1, which agrees with them; with 1, how many keys each
// member holds depends on its name and can be uneven (a five-pod
// StatefulSet's members hold from 6% to 34%).
func RingPoints(n int) FleetOption {
	return func(o *fleetOptions) error {
		if n < 1 || n > 1000 {
			return fmt.Errorf("RingPoints(%d): want 1 to 1000 (1, the default, picks what buildx and BuildKit's consistenthash pick; such as 160 for an even spread)", n)
		}
		o.points = n
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
// same member and its cache stays warm there. The ring is the one of
// buildx's kubernetes driver in sticky mode and of BuildKit's
// examples/kubernetes/consistenthash (github.com/serialx/hashring): for the
// same key and member names, the fleet picks the pod they pick (see
// [ContextKey] and [RingPoints]). A member that does not answer is left
// out until its retry time, and only the keys it held move; a member at its
// [MaxConcurrency] limit passes the solve to the next member on the ring;
// when all are busy, Acquire waits.
//
// Members given with [Discover] come and go with their [MemberSource]: a
// new one is checked before it gets a solve, one that leaves gets no new
// solves and is closed when its running ones end ([StateDraining]), and
// only the keys of the members that left or joined move.
type Fleet struct {
	opts    fleetOptions
	sources []*fleetSource

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	probes sync.WaitGroup

	// ping checks that a builder answers; tests replace it.
	ping func(context.Context, *Builder) error

	mu      sync.Mutex
	members []*member          // in the order given, then discovered; draining ones too
	active  map[string]*member // the members on the ring, by name: not draining
	ring    *ring              // over active
	changed chan struct{}      // closed and replaced when a slot frees or a member changes state
	closed  bool
}

// NewFleet makes a fleet of the members given with [Member], [FromBuilder]
// and [FromClient] and of those its [Discover] sources list, routed as the
// other options say. It checks every option, every member's address and
// TLS files and every source's query first, then asks each source for its
// members (each answer bounded by [ProbeTimeout]) and dials the members
// concurrently, each bounded by its [WithWait] (default: ProbeTimeout).
// Members that do not answer are down and checked again later; NewFleet
// fails only when no member answers, with why, including sources that
// failed or listed none. With [Lazy], it dials nothing.
//
// The fleet then asks each source again whenever the source's Wait
// returns (for a [DNSSource], every [Interval]), until Close.
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
	if len(o.members) == 0 && len(o.sources) == 0 && len(errs) == 0 {
		errs = append(errs, errors.New("remote: NewFleet: no member (add remote.Member, remote.FromBuilder, remote.FromClient or remote.Discover)"))
	}
	f := &Fleet{opts: o, changed: make(chan struct{}), ping: pingBuilder, active: map[string]*member{}}
	for _, s := range o.members {
		m := &member{addr: s.addr, spec: s.opts, b: s.b, client: s.client, owned: s.b == nil && s.client == nil, declared: s.opts.platforms}
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
		if f.active[m.name] != nil {
			errs = append(errs, fmt.Errorf("remote: NewFleet: two members are named %q (give each its own WithName)", m.name))
		}
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
		f.active[m.name] = m
	}
	for _, s := range o.sources {
		if s.opts.tls {
			// The TLS files, once for all the source's members.
			if _, err := loadTLS(&s.opts); err != nil {
				errs = append(errs, fmt.Errorf("remote: NewFleet: source %s: %w", s.src, unprefixed(err)))
			}
		}
		f.sources = append(f.sources, &fleetSource{src: s.src, opts: s.opts, name: s.src.String()})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	f.rebuildRingLocked()
	f.ctx, f.cancel = context.WithCancel(context.Background())
	// The sources' first answers, concurrently.
	var wg sync.WaitGroup
	for _, s := range f.sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.list(ctx, s)
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		f.Close()
		return nil, fmt.Errorf("remote: NewFleet: asking the sources for members: %w", context.Cause(ctx))
	}
	for _, s := range f.sources {
		f.probes.Add(1)
		go f.watch(s)
	}
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
	downs = append(downs, f.sourceProblemsLocked()...)
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
		if m.gone {
			continue
		}
		for _, p := range m.native() {
			add(p)
		}
	}
	if f.opts.emulation {
		for _, m := range f.members {
			if m.b != nil && !m.gone {
				for _, p := range m.b.platforms {
					add(p)
				}
			}
		}
	}
	return out
}

// Close stops asking the sources for members, closes the builders the
// fleet dialed, not those given with [FromBuilder] or [FromClient], and
// waits for running checks to end. Solves running on the fleet's builders
// fail. It is safe to call more than once.
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
