package remote

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/containerd/platforms"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// MemberSource tells a [Fleet] which builders are its members now, and when
// that may have changed: the pods behind a Kubernetes headless Service
// ([SRV], [AddressRecords]), the machines of a managed builder service, or
// anything else that lists builders. The fleet calls List once in
// [NewFleet], then again each time Wait returns, until the fleet is closed;
// it compares each answer with the members it has and changes only what
// changed (see [Discover]). The fleet calls the methods from one goroutine
// at a time.
type MemberSource interface {
	// List returns the builders that are members now. When it returns an
	// error, the fleet keeps the members the source listed before. An
	// empty list with no error means the source has no member now: the
	// fleet drains those it had.
	List(ctx context.Context) ([]Endpoint, error)
	// Wait returns when List may answer differently than it last did: a
	// source that polls returns after its interval, one that is told of
	// changes returns when it is. It must return ctx's error soon after
	// ctx ends. Any other error is recorded in [Fleet.Sources], and the
	// fleet calls Wait again after its retry backoff.
	Wait(ctx context.Context) error
	// String describes the source in errors and statuses, such as
	// "DNS SRV _buildkitd._tcp.buildkitd.ci.svc.cluster.local".
	String() string
}

// Endpoint is one builder a [MemberSource] lists.
type Endpoint struct {
	// Name is the member's name in reports and on the hash ring, such as
	// the pod's name "buildkitd-0". It is what keeps a key on its member:
	// a pod that comes back under the same name at another address keeps
	// its keys. Names must be unique in the fleet.
	Name string
	// Address is where to dial the builder, such as "tcp://10.0.3.7:1234".
	Address string
	// ServerName is the name the builder's TLS certificate holds, when the
	// source's members are dialed with TLS and the address does not name
	// the builder (a pod's IP address). [WithServerName] given to
	// [Discover] takes precedence. The default is the address's host.
	ServerName string
	// Platforms declares the builder's native platforms, as [Platforms]
	// does; the default is the Platforms given to Discover, else what the
	// daemon lists first.
	Platforms []string
}

type sourceSpec struct {
	src  MemberSource
	opts dialOptions
}

// Discover adds the members src lists, now and as they change, each dialed
// with opts: [WithTLS] or [WithTLSPEM] (with the server name each
// [Endpoint] gives), [Platforms] for the platforms of every member of
// src, [MaxConcurrency], [WithWait], [AllowInsecure] and [WithKeepalive].
// [WithName] does not apply: the source names its members.
//
// A member src lists for the first time is checked (dialed, and its
// workers listed) before any solve goes to it; until it answers, it is
// left out of the ring. A member src no longer lists gets no new solves:
// its running solves go on, and the fleet closes it when the last ends
// ([StateDraining]). A member listed under the same name at a new address
// is a new member that takes the old one's keys. Keys move only to a
// member that joined and from a member that left.
func Discover(src MemberSource, opts ...DialOption) FleetOption {
	return func(o *fleetOptions) error {
		if src == nil {
			return errors.New(`Discover(nil): nil source (pass remote.SRV("_buildkitd._tcp.buildkitd.ci.svc.cluster.local"), remote.AddressRecords(…) or your own MemberSource)`)
		}
		var errs []error
		if c, ok := src.(interface{ check() error }); ok {
			if err := c.check(); err != nil {
				errs = append(errs, err)
			}
		}
		prefix := fmt.Sprintf("Discover(%s): ", src)
		do, err := makeDialOptions(prefix, opts)
		if err != nil {
			errs = append(errs, err)
		}
		if do.name != "" {
			errs = append(errs, fmt.Errorf("%sWithName(%q) does not apply: the source names each member (such as the pod's name); drop WithName", prefix, do.name))
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
		o.sources = append(o.sources, sourceSpec{src: src, opts: do})
		return nil
	}
}

// ContextKey returns the key that buildx's kubernetes driver hashes in its
// sticky mode (loadbalance=sticky, its default) for a build of the context
// contextPath: the path made absolute, as is, or contextPath itself when
// it cannot be. Give it to build.Key so that a Larder build and a buildx
// build of the same directory go to the same pod:
//
//	build.Key(remote.ContextKey("./app"))
func ContextKey(contextPath string) string {
	if abs, err := filepath.Abs(contextPath); err == nil {
		return abs
	}
	return contextPath
}

// SourceStatus is a snapshot of one [MemberSource] of a fleet.
type SourceStatus struct {
	// Source is the source's String.
	Source string
	// Members is how many members the source listed last.
	Members int
	// Err is why the source's last List or Wait failed, or why it listed
	// members the fleet could not take (an address that is not valid, a
	// name another member has); nil when all went well.
	Err error
	// ListedAt is when the source last answered List; zero until it has.
	ListedAt time.Time
}

// fleetSource is a source of a fleet, with what the fleet knows of it.
type fleetSource struct {
	src  MemberSource
	opts dialOptions
	name string

	// Guarded by Fleet.mu.
	err      error
	listedAt time.Time
	count    int
}

func (s *fleetSource) statusLocked() SourceStatus {
	return SourceStatus{Source: s.name, Members: s.count, Err: s.err, ListedAt: s.listedAt}
}

// Sources returns the state of each source given with [Discover], in the
// order given.
func (f *Fleet) Sources() []SourceStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]SourceStatus, len(f.sources))
	for i, s := range f.sources {
		out[i] = s.statusLocked()
	}
	return out
}

// sourceProblemsLocked says which sources failed or listed no member.
func (f *Fleet) sourceProblemsLocked() []error {
	var out []error
	for _, s := range f.sources {
		switch {
		case s.err != nil:
			out = append(out, fmt.Errorf("source %s: %w", s.name, s.err))
		case s.count == 0:
			out = append(out, fmt.Errorf("source %s listed no member", s.name))
		}
	}
	return out
}

// watch asks s for its members each time its Wait returns, until the
// fleet is closed.
func (f *Fleet) watch(s *fleetSource) {
	defer f.probes.Done()
	for {
		if err := s.src.Wait(f.ctx); err != nil {
			if f.ctx.Err() != nil {
				return
			}
			f.mu.Lock()
			s.err = fmt.Errorf("waiting for changes: %w", err)
			f.mu.Unlock()
			select {
			case <-f.ctx.Done():
				return
			case <-time.After(f.opts.minBackoff):
			}
			continue
		}
		if f.ctx.Err() != nil {
			return
		}
		f.list(f.ctx, s)
	}
}

// list asks s for its members, within the fleet's probe timeout, and
// reconciles the fleet with the answer.
func (f *Fleet) list(ctx context.Context, s *fleetSource) {
	lctx, cancel := context.WithTimeout(ctx, f.opts.probe)
	eps, err := s.src.List(lctx)
	cancel()
	f.reconcile(s, eps, err)
}

// reconcile makes the members of s those it listed: it adds and checks new
// ones, drains those it no longer lists, and rebuilds the ring.
func (f *Fleet) reconcile(s *fleetSource, eps []Endpoint, err error) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	if err != nil {
		s.err = err
		f.broadcastLocked()
		f.mu.Unlock()
		return
	}
	s.listedAt = time.Now()
	var problems []error
	keep := map[*member]bool{}
	var added []*member
	taken := map[string]bool{} // names of members not from s
	for _, m := range f.members {
		if m.source != s && !m.gone {
			taken[m.name] = true
		}
	}
	seen := map[string]bool{}
	for _, ep := range eps {
		spec, perr := s.endpointSpec(ep, f.opts.probe)
		switch {
		case perr != nil:
			problems = append(problems, perr)
			continue
		case seen[ep.Name]:
			problems = append(problems, fmt.Errorf("two members are named %q (%s and another)", ep.Name, redact(ep.Address)))
			continue
		case taken[ep.Name]:
			problems = append(problems, fmt.Errorf("member %q (%s): another member of the fleet has that name", ep.Name, redact(ep.Address)))
			continue
		}
		seen[ep.Name] = true
		if m := f.sameLocked(s, ep, spec); m != nil {
			m.gone = false
			keep[m] = true
			continue
		}
		// Everything that can be checked without dialing.
		if _, err := prepare(ep.Address, &spec); err != nil {
			problems = append(problems, fmt.Errorf("member %s: %w", ep.Name, unprefixed(err)))
			continue
		}
		m := &member{name: ep.Name, addr: ep.Address, spec: spec, owned: true, declared: spec.platforms, source: s}
		keep[m] = true
		added = append(added, m)
	}
	s.count = len(keep)
	s.err = errors.Join(problems...)
	var drops []*Builder
	for _, m := range f.members {
		if m.source == s && !keep[m] && !m.gone {
			m.gone = true
		}
	}
	f.members = append(f.members, added...)
	for _, m := range slices.Clone(f.members) {
		if b := f.dropIfDrainedLocked(m); b != nil {
			drops = append(drops, b)
		}
	}
	f.rebuildRingLocked()
	if !f.opts.lazy {
		for _, m := range added {
			ch := make(chan struct{})
			m.probing = ch
			f.probes.Add(1)
			go f.probe(m, ch)
		}
	}
	f.broadcastLocked()
	f.mu.Unlock()
	for _, b := range drops {
		b.Close()
	}
}

// endpointSpec returns the dial options of ep, a member of s, without
// contacting anything or reading files.
func (s *fleetSource) endpointSpec(ep Endpoint, probe time.Duration) (dialOptions, error) {
	spec := s.opts
	if strings.TrimSpace(ep.Name) == "" {
		return spec, fmt.Errorf("a member at %s has no name", redact(ep.Address))
	}
	spec.name = ep.Name
	if spec.wait == 0 {
		spec.wait = probe
	}
	if ep.ServerName != "" && spec.tls && spec.serverName == "" {
		spec.serverName = ep.ServerName
	}
	if len(ep.Platforms) > 0 {
		spec.platforms = nil
		for _, p := range ep.Platforms {
			pp, err := parsePlatform("Platforms", p)
			if err != nil {
				return spec, fmt.Errorf("member %s: %w", ep.Name, err)
			}
			spec.platforms = append(spec.platforms, pp)
		}
	}
	return spec, nil
}

// sameLocked returns the member of s, draining or not, that ep with spec
// describes: same name, address, server name and platforms.
func (f *Fleet) sameLocked(s *fleetSource, ep Endpoint, spec dialOptions) *member {
	for _, m := range f.members {
		if m.source == s && m.name == ep.Name && m.addr == ep.Address && m.spec.serverName == spec.serverName &&
			samePlatforms(m.declared, spec.platforms) {
			return m
		}
	}
	return nil
}

func samePlatforms(a, b []ocispecs.Platform) bool {
	return slices.EqualFunc(a, b, func(x, y ocispecs.Platform) bool { return platforms.Format(x) == platforms.Format(y) })
}

// dropIfDrainedLocked removes m from the fleet when it left its source and
// nothing runs on it any more, and returns its builder for the caller to
// close, after unlocking, when the fleet owns it.
func (f *Fleet) dropIfDrainedLocked(m *member) *Builder {
	if !m.gone || m.inflight > 0 || m.probing != nil {
		return nil
	}
	i := slices.Index(f.members, m)
	if i < 0 {
		return nil
	}
	f.members = slices.Delete(f.members, i, i+1)
	if m.owned {
		return m.b
	}
	return nil
}

// rebuildRingLocked puts the members that are not draining on the ring.
func (f *Fleet) rebuildRingLocked() {
	f.active = map[string]*member{}
	var names []string
	for _, m := range f.members {
		if !m.gone {
			f.active[m.name] = m
			names = append(names, m.name)
		}
	}
	f.ring = newRing(names, f.opts.points)
}
