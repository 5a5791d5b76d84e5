package remote

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/larder-build/larder/internal/platform"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// DialOption configures [Dial], [Start] (through [StartDialOptions]) and a
// fleet's [Member]. Each option checks its own input.
type DialOption func(*dialOptions) error

type dialOptions struct {
	name string
	wait time.Duration // 0: the caller's default

	tls                       bool
	caFile, certFile, keyFile string
	pem                       bool // WithTLSPEM: the three below, not the files
	caPEM, certPEM, keyPEM    []byte
	serverName                string
	insecure                  bool

	keepalive        time.Duration // 0: default; <0: off
	keepaliveTimeout time.Duration

	platforms      []ocispecs.Platform // declared native platforms
	maxConcurrency int                 // 0: unlimited
}

// The errors of the options below name the option and its value but not
// the package: the function they are given to adds "remote: " and, for a
// fleet's member, which member.

// WithName sets the name a builder goes by in reports, errors and a fleet's
// routing. The default is its address, with any password in it redacted.
func WithName(name string) DialOption {
	return func(o *dialOptions) error {
		if strings.TrimSpace(name) == "" {
			return fmt.Errorf("WithName(%q): empty name (give the builder a name for reports, such as \"arm-1\"; leave the option out to name it by its address)", name)
		}
		o.name = name
		return nil
	}
}

// WithWait bounds how long Dial waits for the builder to answer when the
// context has no earlier deadline. The default is 30 seconds for Dial, and
// the fleet's [ProbeTimeout] for a fleet's member.
func WithWait(d time.Duration) DialOption {
	return func(o *dialOptions) error {
		if d <= 0 {
			return fmt.Errorf("WithWait(%v): must be positive (such as remote.WithWait(time.Minute); leave the option out for the default)", d)
		}
		o.wait = d
		return nil
	}
}

// WithTLS dials a tcp address with mutual TLS: caFile is the CA certificate
// that signed the builder's certificate ("" for the system's roots), certFile
// and keyFile the client's certificate and key in PEM (both "" to present
// none). Dial reads and checks the files before contacting the builder and
// reports a [*CredentialsError] when one is missing or wrong. The server
// name checked against the builder's certificate is the address's host,
// unless [WithServerName] says otherwise. The default is no TLS.
func WithTLS(caFile, certFile, keyFile string) DialOption {
	return func(o *dialOptions) error {
		if (certFile == "") != (keyFile == "") {
			return fmt.Errorf("WithTLS(%q, %q, %q): give both the client certificate and its key, or neither (such as remote.WithTLS(\"ca.pem\", \"client.pem\", \"client-key.pem\"))", caFile, certFile, keyFile)
		}
		if o.pem {
			return fmt.Errorf("WithTLS(%q, %q, %q): WithTLSPEM was given too (give the credentials once, as files or as PEM bytes)", caFile, certFile, keyFile)
		}
		o.tls = true
		o.caFile, o.certFile, o.keyFile = caFile, certFile, keyFile
		return nil
	}
}

// WithTLSPEM is [WithTLS] with the credentials themselves instead of
// files: ca is the PEM of the CA certificate that signed the builder's
// certificate (nil for the system's roots), cert and key the client's
// certificate and key in PEM (both nil to present none), such as the data
// of a Kubernetes Secret or what a secret manager returns. They are checked
// before the builder is contacted; a [*CredentialsError] (with an empty
// File) says what is wrong. The slices are copied. The default is no TLS.
func WithTLSPEM(ca, cert, key []byte) DialOption {
	return func(o *dialOptions) error {
		if (len(cert) == 0) != (len(key) == 0) {
			return fmt.Errorf("WithTLSPEM(ca, cert (%d bytes), key (%d bytes)): give both the client certificate and its key, or neither", len(cert), len(key))
		}
		if o.tls {
			return errors.New("WithTLSPEM: WithTLS was given too (give the credentials once, as files or as PEM bytes)")
		}
		o.tls, o.pem = true, true
		o.caPEM, o.certPEM, o.keyPEM = bytes.Clone(ca), bytes.Clone(cert), bytes.Clone(key)
		return nil
	}
}

// WithServerName sets the name the builder's TLS certificate must hold, for
// a builder dialed by an address its certificate does not name. It needs
// [WithTLS]. The default is the host of the address.
func WithServerName(name string) DialOption {
	return func(o *dialOptions) error {
		if strings.TrimSpace(name) == "" {
			return fmt.Errorf("WithServerName(%q): empty name (give the name the builder's certificate holds, such as \"buildkitd.internal\"; leave the option out to check the address's host)", name)
		}
		o.serverName = name
		return nil
	}
}

// AllowInsecure lets Dial use plain tcp to a host that is not a loopback
// address. Without it, such an address without [WithTLS] is refused with an
// [*InsecureError] before anything is sent: whoever can reach a daemon's
// port can run anything as the daemon. Loopback addresses and unix sockets
// never need it.
func AllowInsecure() DialOption {
	return func(o *dialOptions) error {
		o.insecure = true
		return nil
	}
}

// WithKeepalive sets how long the connection may stay silent during a call
// before the client pings the builder (at least 10 seconds, gRPC's floor),
// and how long it then waits for an answer before it gives up on the
// connection and fails the calls on it with a [*ConnectionError]. An interval
// of 0 turns keepalive off, so that a builder that vanishes without closing
// its connection (a host that dies, a network that drops packets) hangs a
// solve until its context ends. The default is 30 seconds and 20 seconds.
//
// A daemon closes connections that ping it more often than every five
// minutes while it sends nothing (gRPC's default enforcement); during a
// solve the daemon checks the client's session every few seconds, so this
// does not happen with the default.
func WithKeepalive(interval, timeout time.Duration) DialOption {
	return func(o *dialOptions) error {
		const example = "such as remote.WithKeepalive(30*time.Second, 20*time.Second), the default"
		switch {
		case interval == 0:
			o.keepalive = -1
			return nil
		case interval < 10*time.Second:
			return fmt.Errorf("WithKeepalive(%v, %v): the interval must be 0 (off) or at least 10s (%s)", interval, timeout, example)
		case timeout <= 0:
			return fmt.Errorf("WithKeepalive(%v, %v): the timeout must be positive (%s)", interval, timeout, example)
		}
		o.keepalive, o.keepaliveTimeout = interval, timeout
		return nil
	}
}

// Platforms declares the platforms a builder runs natively, such as
// "linux/arm64" for a daemon on an arm64 host, or one started with
// --oci-worker-platform linux/arm64. Dial checks that the daemon lists each
// of them. Every other platform the daemon lists counts as emulated. The
// default is the first platform the daemon lists: a daemon lists its
// configured platforms first, then every one its host can emulate.
func Platforms(ps ...string) DialOption {
	return func(o *dialOptions) error {
		if len(ps) == 0 {
			return errors.New(`Platforms(): no platform given (pass the builder's native platforms, such as remote.Platforms("linux/arm64"); leave the option out to take the first one the daemon lists)`)
		}
		var errs []error
		for _, s := range ps {
			p, err := parsePlatform("Platforms", s)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			o.platforms = append(o.platforms, p)
		}
		return errors.Join(errs...)
	}
}

// MaxConcurrency limits how many solves a builder runs at once: its Acquire
// waits for a free slot, and a fleet sends the solve to the next member that
// runs the platform instead. The default is no limit.
func MaxConcurrency(n int) DialOption {
	return func(o *dialOptions) error {
		if n < 1 {
			return fmt.Errorf("MaxConcurrency(%d): must be at least 1 (the number of solves the builder runs at once, such as 4; leave the option out for no limit)", n)
		}
		o.maxConcurrency = n
		return nil
	}
}

// makeDialOptions applies opts; each error it returns starts with prefix.
func makeDialOptions(prefix string, opts []DialOption) (dialOptions, error) {
	var o dialOptions
	var errs []error
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&o); err != nil {
			errs = append(errs, err)
		}
	}
	if o.serverName != "" && !o.tls {
		errs = append(errs, fmt.Errorf("WithServerName(%q) needs WithTLS (add remote.WithTLS(ca, cert, key), or drop WithServerName)", o.serverName))
	}
	return o, prefixed(prefix, errs)
}

// prefixed joins errs, each with prefix before its message.
func prefixed(prefix string, errs []error) error {
	var out []error
	for _, err := range errs {
		if err == nil {
			continue
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			if e := prefixed(prefix, j.Unwrap()); e != nil {
				out = append(out, e)
			}
			continue
		}
		out = append(out, fmt.Errorf("%s%w", prefix, err))
	}
	return errors.Join(out...)
}

// unprefixed wraps an error of this package so that its message, placed
// after another that already says "remote: ", does not say it twice.
func unprefixed(err error) error {
	if err == nil || !strings.HasPrefix(err.Error(), "remote: ") {
		return err
	}
	return &trimmedError{err}
}

type trimmedError struct{ err error }

func (e *trimmedError) Error() string { return strings.TrimPrefix(e.err.Error(), "remote: ") }
func (e *trimmedError) Unwrap() error { return e.err }

// parsePlatform parses s, given to the option or method named by what.
func parsePlatform(what, s string) (ocispecs.Platform, error) { return platform.Parse(what, s) }
