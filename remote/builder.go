package remote

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/containerd/platforms"
	"github.com/moby/buildkit/client"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// DefaultAddress is the socket [Dial] uses when neither its address argument
// nor $BUILDKIT_HOST names a builder. It is BuildKit's own default.
const DefaultAddress = "unix:///run/buildkit/buildkitd.sock"

// Builder is a connection to one BuildKit daemon. It is safe for concurrent
// use. Close releases the connection and, for a builder made by [Start],
// stops the daemon.
type Builder struct {
	name      string
	addr      string
	c         *client.Client
	platforms []ocispecs.Platform

	closeOnce sync.Once
	closeErr  error
	stop      func() error // stops a daemon this package started; nil otherwise
}

// Client returns the BuildKit client of b, for anything Larder does not wrap.
// It stays owned by b: do not close it.
func (b *Builder) Client() *client.Client { return b.c }

// Address returns the address b was dialed at, such as
// "unix:///run/buildkit/buildkitd.sock".
func (b *Builder) Address() string { return b.addr }

// Name returns the name b goes by in reports: the one given with [WithName],
// else its address.
func (b *Builder) Name() string { return b.name }

// Platforms returns the platforms b's workers run, the native one first as
// the daemon reports them. The slice is a copy.
func (b *Builder) Platforms() []ocispecs.Platform {
	return append([]ocispecs.Platform(nil), b.platforms...)
}

// Acquire returns b's client for a solve of platform p. It fails with an
// [*UnsupportedPlatformError] when no worker of b runs p. The key is ignored
// by a single builder; fleets use it to keep a project on one member.
// Release must be called when the solve ends, with its error.
//
// Acquire makes *Builder satisfy build.Builder.
func (b *Builder) Acquire(ctx context.Context, p ocispecs.Platform, key string) (c *client.Client, name string, release func(error), err error) {
	if !b.Runs(p) {
		return nil, "", nil, &UnsupportedPlatformError{Builder: b.name, Platform: platforms.Format(p), Have: formatPlatforms(b.platforms)}
	}
	return b.c, b.name, func(error) {}, nil
}

// Runs reports whether one of b's workers runs p, natively or under the
// emulation the daemon advertises.
func (b *Builder) Runs(p ocispecs.Platform) bool {
	m := platforms.Only(p)
	for _, have := range b.platforms {
		if m.Match(have) {
			return true
		}
	}
	return false
}

// Close closes the connection and, for a builder made by [Start], stops the
// daemon and waits for it to exit. It is safe to call more than once.
func (b *Builder) Close() error {
	b.closeOnce.Do(func() {
		var errs []error
		if b.c != nil {
			errs = append(errs, b.c.Close())
		}
		if b.stop != nil {
			errs = append(errs, b.stop())
		}
		b.closeErr = errors.Join(errs...)
	})
	return b.closeErr
}

// DialOption configures [Dial] and [Start].
type DialOption func(*dialOptions) error

type dialOptions struct {
	name string
	wait time.Duration
}

// WithName sets the name a builder goes by in reports and errors. The default
// is its address.
func WithName(name string) DialOption {
	return func(o *dialOptions) error {
		if strings.TrimSpace(name) == "" {
			return fmt.Errorf("remote: WithName: empty name")
		}
		o.name = name
		return nil
	}
}

// WithWait bounds how long Dial waits for the builder to answer when the
// context has no earlier deadline. The default is 30 seconds.
func WithWait(d time.Duration) DialOption {
	return func(o *dialOptions) error {
		if d <= 0 {
			return fmt.Errorf("remote: WithWait(%v): must be positive", d)
		}
		o.wait = d
		return nil
	}
}

// Dial connects to the BuildKit daemon at addr and waits until it answers
// with its workers. An empty addr means $BUILDKIT_HOST, else [DefaultAddress].
// Dial gives up at the context's deadline or after the [WithWait] bound,
// whichever comes first, with an [*UnreachableError].
func Dial(ctx context.Context, addr string, opts ...DialOption) (*Builder, error) {
	o := dialOptions{wait: 30 * time.Second}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if addr == "" {
		addr = os.Getenv("BUILDKIT_HOST")
	}
	if addr == "" {
		addr = DefaultAddress
	}
	if err := checkAddress(addr); err != nil {
		return nil, err
	}
	if o.name == "" {
		o.name = addr
	}
	return connect(ctx, addr, o)
}

func checkAddress(addr string) error {
	u, err := url.Parse(addr)
	if err != nil || u.Scheme == "" {
		return &AddressError{Address: addr, Reason: "not a URL with a scheme (use unix:///path/to/buildkitd.sock or tcp://host:port)"}
	}
	switch u.Scheme {
	case "unix":
		if u.Path == "" {
			return &AddressError{Address: addr, Reason: "unix address has no socket path (use unix:///path/to/buildkitd.sock)"}
		}
	case "tcp":
		if u.Host == "" {
			return &AddressError{Address: addr, Reason: "tcp address has no host:port"}
		}
	default:
		return &AddressError{Address: addr, Reason: fmt.Sprintf("unknown scheme %q (use unix or tcp)", u.Scheme)}
	}
	return nil
}

// connect dials addr and polls the daemon until it lists its workers.
func connect(ctx context.Context, addr string, o dialOptions) (*Builder, error) {
	ctx, cancel := context.WithTimeout(ctx, o.wait)
	defer cancel()
	c, err := client.New(ctx, addr)
	if err != nil {
		return nil, &UnreachableError{Address: addr, Err: err}
	}
	var lastErr error
	for {
		ws, err := c.ListWorkers(ctx)
		if err == nil && len(ws) > 0 {
			var ps []ocispecs.Platform
			for _, w := range ws {
				ps = append(ps, w.Platforms...)
			}
			return &Builder{name: o.name, addr: addr, c: c, platforms: ps}, nil
		}
		if err == nil {
			err = errors.New("the daemon has no workers")
		}
		lastErr = err
		select {
		case <-ctx.Done():
			c.Close()
			return nil, &UnreachableError{Address: addr, Err: lastErr}
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func formatPlatforms(ps []ocispecs.Platform) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = platforms.Format(p)
	}
	return out
}
