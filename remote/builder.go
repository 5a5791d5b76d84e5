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

// Builder is a connection to one BuildKit daemon. It is safe for concurrent
// use. Close releases the connection and, for a builder made by [Start],
// stops the daemon.
type Builder struct {
	name      string
	addr      string
	c         *client.Client
	platforms []ocispecs.Platform // as the daemon lists them
	declared  []ocispecs.Platform // from Platforms; nil when not declared
	opts      dialOptions
	slots     chan struct{} // one token per running solve; nil: no limit
	pid       int           // the daemon's process, for a builder made by Start
	origin    Origin        // where Auto found it; FromDial otherwise

	borrowed bool // c belongs to the caller (FromClient): Close leaves it open

	closeOnce sync.Once
	closeErr  error
	stop      func() error // stops a daemon this package started; nil otherwise
}

// Origin says how [Auto] got b: from $BUILDKIT_HOST, the default socket, a
// builder container of Docker or Podman, or a local buildkitd, as root or
// rootless; [FromDial] ("") for a builder made by [Dial] or [Start].
func (b *Builder) Origin() Origin { return b.origin }

// Client returns the BuildKit client of b, for anything Larder does not wrap.
// It stays owned by b: do not close it.
func (b *Builder) Client() *client.Client { return b.c }

// Address returns the address b was dialed at, such as
// "unix:///run/buildkit/buildkitd.sock", with any password in it replaced
// by "xxxxx".
func (b *Builder) Address() string { return redact(b.addr) }

// Name returns the name b goes by in reports: the one given with [WithName],
// else its address, with any password in it replaced by "xxxxx".
func (b *Builder) Name() string { return b.name }

// Platforms returns every platform b's workers run, in the order the daemon
// lists them: its configured platforms first, then the ones its host can
// emulate. The slice is a copy.
func (b *Builder) Platforms() []ocispecs.Platform {
	return append([]ocispecs.Platform(nil), b.platforms...)
}

// Native returns the platforms b runs without emulation: those declared
// with [Platforms], else the first platform the daemon lists. The slice is
// a copy.
func (b *Builder) Native() []ocispecs.Platform {
	if len(b.declared) > 0 {
		return append([]ocispecs.Platform(nil), b.declared...)
	}
	if len(b.platforms) > 0 {
		return []ocispecs.Platform{platforms.Normalize(b.platforms[0])}
	}
	return nil
}

// Match says how b runs p: natively, compatibly, under emulation, or not at
// all (the zero Match).
func (b *Builder) Match(p ocispecs.Platform) Match {
	return matchPlatform(b.Native(), b.platforms, p)
}

// Runs reports whether one of b's workers runs p, natively or under the
// emulation the daemon advertises.
func (b *Builder) Runs(p ocispecs.Platform) bool {
	return b.Match(p) != 0
}

// Acquire returns b's client for a solve of platform p. It fails with an
// [*UnsupportedPlatformError] when no worker of b runs p, natively or under
// emulation. The key is ignored by a single builder; fleets use it to keep a
// project on one member. With [MaxConcurrency], Acquire waits for a free
// slot until ctx ends. Release must be called when the solve ends, with its
// error; calling it more than once has no further effect.
//
// Acquire makes *Builder satisfy build.Builder.
func (b *Builder) Acquire(ctx context.Context, p ocispecs.Platform, key string) (c *client.Client, name string, release func(error), err error) {
	if !b.Runs(p) {
		return nil, "", nil, &UnsupportedPlatformError{Builder: b.name, Platform: platforms.Format(p), Have: formatPlatforms(b.platforms)}
	}
	if b.slots != nil {
		select {
		case b.slots <- struct{}{}:
		case <-ctx.Done():
			return nil, "", nil, fmt.Errorf("remote: waiting for a free slot on builder %s (MaxConcurrency %d): %w", b.name, cap(b.slots), context.Cause(ctx))
		}
	}
	var once sync.Once
	return b.c, b.name, func(error) { once.Do(b.releaseSlot) }, nil
}

// tryAcquireSlot takes a slot without waiting and reports whether it did.
func (b *Builder) tryAcquireSlot() bool {
	if b.slots == nil {
		return true
	}
	select {
	case b.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

func (b *Builder) releaseSlot() {
	if b.slots != nil {
		<-b.slots
	}
}

// full reports whether every slot is taken.
func (b *Builder) full() bool {
	return b.slots != nil && len(b.slots) == cap(b.slots)
}

// Close closes the connection and, for a builder made by [Start], stops the
// daemon and waits for it to exit. It is safe to call more than once.
func (b *Builder) Close() error {
	b.closeOnce.Do(func() {
		var errs []error
		if b.c != nil && !b.borrowed {
			errs = append(errs, b.c.Close())
		}
		if b.stop != nil {
			errs = append(errs, b.stop())
		}
		b.closeErr = errors.Join(errs...)
	})
	return b.closeErr
}

// clientBuilder makes a Builder of a client the caller connected, polling
// its daemon until it lists its workers, within o.wait. The Builder does
// not close c.
func clientBuilder(ctx context.Context, c *client.Client, o dialOptions) (*Builder, error) {
	ctx, cancel := context.WithTimeout(ctx, o.wait)
	defer cancel()
	var lastErr error
	for {
		ws, err := c.ListWorkers(ctx)
		if err == nil && len(ws) > 0 {
			b, err := newBuilder(o, "", c, ws)
			if err != nil {
				return nil, err
			}
			b.borrowed = true
			return b, nil
		}
		if err == nil {
			err = errors.New("the daemon has no workers")
		}
		if lastErr == nil || ctx.Err() == nil {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			return nil, &UnreachableError{Address: "the client given to FromClient (" + o.name + ")", Err: fmt.Errorf("no answer within %v: %w", o.wait, lastErr)}
		case <-time.After(100 * time.Millisecond):
		}
	}
}
