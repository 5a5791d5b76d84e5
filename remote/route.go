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
	pp, err := parsePlatform("Route", p)
	if err != nil {
		return Route{}, fmt.Errorf("remote: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	m, match, _, rerr := f.chooseLocked(pp, key, false)
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
	for {
		if err := f.refresh(ctx, &p); err != nil {
			return nil, "", nil, err
		}
		f.mu.Lock()
		if f.closed {
			f.mu.Unlock()
			return nil, "", nil, errors.New("remote: the fleet is closed")
		}
		m, _, full, rerr := f.chooseLocked(p, key, true)
		var b *Builder
		if m != nil {
			b = m.b
		}
		wait := f.changed
		f.mu.Unlock()
		if m != nil {
			if err := f.check(ctx, m); err != nil {
				b.releaseSlot()
				f.mu.Lock()
				m.inflight--
				if ctx.Err() == nil {
					f.markDownLocked(m, err)
				}
				drop := f.dropIfDrainedLocked(m)
				f.broadcastLocked()
				f.mu.Unlock()
				if drop != nil {
					drop.Close()
				}
				if ctx.Err() != nil {
					return nil, "", nil, fmt.Errorf("remote: checking member %s: %w", m.name, context.Cause(ctx))
				}
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
// ring's order for key. With take, only members that answered count and
// the member's slot is taken; full reports that members match but all are
// at their limit. Without take, members not dialed count by what they
// declare. Draining members never count.
func (f *Fleet) chooseLocked(p ocispecs.Platform, key string, take bool) (m *member, match Match, full bool, rerr *RouteError) {
	eligible := func(m *member) bool {
		if m.gone {
			return false
		}
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
	for _, name := range f.ring.order(key) {
		m := f.active[name]
		if m == nil || !eligible(m) || m.match(p) != best {
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
	for _, s := range f.sources {
		if st := s.statusLocked(); st.Err != nil || st.Members == 0 {
			e.Sources = append(e.Sources, st)
		}
	}
	for _, m := range f.members {
		if m.gone {
			continue
		}
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

// releaser returns the release function of a solve on m.
func (f *Fleet) releaser(m *member, b *Builder) func(error) {
	var once sync.Once
	return func(err error) {
		once.Do(func() {
			b.releaseSlot()
			f.mu.Lock()
			m.inflight--
			if lostConnection(err) {
				f.markDownLocked(m, err)
			}
			drop := f.dropIfDrainedLocked(m)
			f.broadcastLocked()
			f.mu.Unlock()
			if drop != nil {
				drop.Close()
			}
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
