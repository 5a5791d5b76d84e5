package remote

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/containerd/platforms"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/connhelper"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
)

// DefaultAddress is the socket [Dial] uses when neither its address argument
// nor $BUILDKIT_HOST names a builder. It is BuildKit's own default.
const DefaultAddress = "unix:///run/buildkit/buildkitd.sock"

// helperSchemes are the schemes of BuildKit's connection helpers, which the
// package remote/connhelpers registers.
var helperSchemes = map[string]bool{
	"docker-container":  true,
	"podman-container":  true,
	"nerdctl-container": true,
	"kube-pod":          true,
	"ssh":               true,
}

// The keepalive that Dial sets unless told otherwise. While a solve runs,
// the daemon checks the client's session every few seconds, so a live
// daemon is never silent for this long and the client sends no ping.
const (
	defaultKeepaliveInterval = 30 * time.Second
	defaultKeepaliveTimeout  = 20 * time.Second
	defaultDialWait          = 30 * time.Second
)

// DialOption configures [Dial], [Start] (through [StartDialOptions]) and a
// fleet's [Member]. Each option checks its own input.
type DialOption func(*dialOptions) error

type dialOptions struct {
	name string
	wait time.Duration // 0: the caller's default

	tls                       bool
	caFile, certFile, keyFile string
	serverName                string
	insecure                  bool

	keepalive        time.Duration // 0: default; <0: off
	keepaliveTimeout time.Duration

	platforms      []ocispecs.Platform // declared native platforms
	maxConcurrency int                 // 0: unlimited
}

// WithName sets the name a builder goes by in reports, errors and a fleet's
// routing. The default is its address.
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
// context has no earlier deadline. The default is 30 seconds for Dial, and
// the fleet's [ProbeTimeout] for a fleet's member.
func WithWait(d time.Duration) DialOption {
	return func(o *dialOptions) error {
		if d <= 0 {
			return fmt.Errorf("remote: WithWait(%v): must be positive", d)
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
			return fmt.Errorf("remote: WithTLS(%q, %q, %q): give both the client certificate and its key, or neither", caFile, certFile, keyFile)
		}
		o.tls = true
		o.caFile, o.certFile, o.keyFile = caFile, certFile, keyFile
		return nil
	}
}

// WithServerName sets the name the builder's TLS certificate must hold, for
// a builder dialed by an address its certificate does not name. It needs
// [WithTLS]. The default is the host of the address.
func WithServerName(name string) DialOption {
	return func(o *dialOptions) error {
		if name == "" {
			return errors.New("remote: WithServerName: empty name")
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
		switch {
		case interval == 0:
			o.keepalive = -1
			return nil
		case interval < 10*time.Second:
			return fmt.Errorf("remote: WithKeepalive(%v, %v): the interval must be 0 (off) or at least 10s", interval, timeout)
		case timeout <= 0:
			return fmt.Errorf("remote: WithKeepalive(%v, %v): the timeout must be positive", interval, timeout)
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
			return errors.New("remote: Platforms: no platform given")
		}
		for _, s := range ps {
			p, err := platforms.Parse(s)
			if err != nil {
				return fmt.Errorf("remote: Platforms(%q): %v", s, err)
			}
			o.platforms = append(o.platforms, platforms.Normalize(p))
		}
		return nil
	}
}

// MaxConcurrency limits how many solves a builder runs at once: its Acquire
// waits for a free slot, and a fleet sends the solve to the next member that
// runs the platform instead. The default is no limit.
func MaxConcurrency(n int) DialOption {
	return func(o *dialOptions) error {
		if n < 1 {
			return fmt.Errorf("remote: MaxConcurrency(%d): must be at least 1", n)
		}
		o.maxConcurrency = n
		return nil
	}
}

func makeDialOptions(opts []DialOption) (dialOptions, error) {
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
		errs = append(errs, fmt.Errorf("remote: WithServerName(%q) needs WithTLS", o.serverName))
	}
	return o, errors.Join(errs...)
}

// Dial connects to the BuildKit daemon at addr and waits until it answers
// with its workers. An empty addr means $BUILDKIT_HOST, else
// [DefaultAddress]. Addresses are unix:///path/to/buildkitd.sock,
// tcp://host:port (with [WithTLS] unless the host is loopback or
// [AllowInsecure] is given), and the schemes of BuildKit's connection
// helpers (docker-container://, podman-container://, nerdctl-container://,
// kube-pod://, ssh://) once the package remote/connhelpers is imported.
//
// Everything that can be checked without contacting the builder is checked
// first: the address ([*AddressError], [*InsecureError]) and the TLS files
// ([*CredentialsError]). Dial then retries until the builder lists its
// workers, and gives up at the context's deadline or after the [WithWait]
// bound, whichever comes first, with an [*UnreachableError]; a TLS handshake
// that fails for a reason that waiting will not fix returns a [*TLSError] at
// once.
func Dial(ctx context.Context, addr string, opts ...DialOption) (*Builder, error) {
	o, err := makeDialOptions(opts)
	if err != nil {
		return nil, err
	}
	if addr == "" {
		addr = os.Getenv("BUILDKIT_HOST")
	}
	if addr == "" {
		addr = DefaultAddress
	}
	if o.wait == 0 {
		o.wait = defaultDialWait
	}
	return dial(ctx, addr, o)
}

// target is an address checked and ready to dial.
type target struct {
	addr  string
	copts []client.ClientOpt
	creds *recordingCreds // nil without TLS
	live  *atomic.Bool    // set once the builder answered
}

// prepare checks addr and the options and builds the client options,
// without contacting anything.
func prepare(addr string, o *dialOptions) (*target, error) {
	u, err := url.Parse(addr)
	if err != nil || u.Scheme == "" {
		return nil, &AddressError{Address: addr, Reason: "not a URL with a scheme (use unix:///path/to/buildkitd.sock or tcp://host:port)"}
	}
	t := &target{addr: addr, live: new(atomic.Bool)}
	switch u.Scheme {
	case "unix":
		if u.Path == "" {
			return nil, &AddressError{Address: addr, Reason: "unix address has no socket path (use unix:///path/to/buildkitd.sock)"}
		}
	case "tcp":
		host, port, err := net.SplitHostPort(u.Host)
		if err != nil || host == "" || port == "" {
			return nil, &AddressError{Address: addr, Reason: "tcp address needs host:port"}
		}
		if u.Path != "" && u.Path != "/" {
			return nil, &AddressError{Address: addr, Reason: fmt.Sprintf("tcp address has a path %q", u.Path)}
		}
		if !o.tls && !o.insecure && !isLoopback(host) {
			return nil, &InsecureError{Address: addr}
		}
	default:
		h, err := connhelper.GetConnectionHelper(addr)
		switch {
		case err != nil:
			return nil, &AddressError{Address: addr, Reason: err.Error()}
		case h == nil && helperSchemes[u.Scheme]:
			return nil, &AddressError{Address: addr, Reason: fmt.Sprintf(
				"the %s connection helper is not registered: add import _ \"github.com/larder-build/larder/remote/connhelpers\"", u.Scheme)}
		case h == nil:
			return nil, &AddressError{Address: addr, Reason: fmt.Sprintf(
				"unknown scheme %q (use unix, tcp, or with remote/connhelpers imported: %s)", u.Scheme, strings.Join(sortedKeys(helperSchemes), ", "))}
		}
	}
	if o.tls {
		if u.Scheme != "tcp" {
			return nil, &AddressError{Address: addr, Reason: "WithTLS applies to tcp addresses only"}
		}
		cfg, err := loadTLS(o)
		if err != nil {
			return nil, err
		}
		t.creds = &recordingCreds{TransportCredentials: credentials.NewTLS(cfg), last: new(atomic.Pointer[error])}
		t.copts = append(t.copts, client.WithGRPCDialOption(grpc.WithTransportCredentials(t.creds)))
		if o.serverName != "" {
			// gRPC wants the authority to be the name the certificate
			// is checked against.
			t.copts = append(t.copts, client.WithGRPCDialOption(grpc.WithAuthority(o.serverName)))
		}
	}
	if o.keepalive >= 0 {
		iv, to := o.keepalive, o.keepaliveTimeout
		if iv == 0 {
			iv, to = defaultKeepaliveInterval, defaultKeepaliveTimeout
		}
		t.copts = append(t.copts, client.WithGRPCDialOption(grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: iv, Timeout: to})))
	}
	// Reconnect promptly when a daemon comes back, instead of gRPC's
	// backoff of up to two minutes.
	t.copts = append(t.copts, client.WithGRPCDialOption(grpc.WithConnectParams(grpc.ConnectParams{
		Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
		MinConnectTimeout: 10 * time.Second,
	})))
	name := o.name
	if name == "" {
		name = addr
	}
	wrap := func(err error) error {
		if err == nil || !t.live.Load() || status.Code(err) != codes.Unavailable {
			return err
		}
		return &ConnectionError{Builder: name, Address: addr, Err: err}
	}
	t.copts = append(t.copts,
		client.WithGRPCDialOption(grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			return wrap(invoker(ctx, method, req, reply, cc, opts...))
		})),
		client.WithGRPCDialOption(grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			s, err := streamer(ctx, desc, cc, method, opts...)
			if err != nil {
				return nil, wrap(err)
			}
			return &annotatedStream{ClientStream: s, wrap: wrap}, nil
		})),
	)
	return t, nil
}

// annotatedStream names the builder in the errors of a stream whose
// connection is lost.
type annotatedStream struct {
	grpc.ClientStream
	wrap func(error) error
}

func (s *annotatedStream) RecvMsg(m any) error { return s.wrap(s.ClientStream.RecvMsg(m)) }

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// loadTLS reads the files of WithTLS into a client configuration.
func loadTLS(o *dialOptions) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.serverName}
	if o.caFile == "" {
		pool, err := x509.SystemCertPool()
		if err != nil {
			return nil, &CredentialsError{File: "(system roots)", What: "CA certificate", Err: err}
		}
		cfg.RootCAs = pool
	} else {
		pem, err := os.ReadFile(o.caFile)
		if err != nil {
			return nil, &CredentialsError{File: o.caFile, What: "CA certificate", Err: err}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &CredentialsError{File: o.caFile, What: "CA certificate", Err: errors.New("no PEM certificate in the file")}
		}
		cfg.RootCAs = pool
	}
	if o.certFile != "" {
		for _, f := range []struct{ path, what string }{{o.certFile, "client certificate"}, {o.keyFile, "client key"}} {
			if _, err := os.Stat(f.path); err != nil {
				return nil, &CredentialsError{File: f.path, What: f.what, Err: err}
			}
		}
		cert, err := tls.LoadX509KeyPair(o.certFile, o.keyFile)
		if err != nil {
			return nil, &CredentialsError{File: o.certFile + " and " + o.keyFile, What: "client certificate", Err: err}
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// recordingCreds keeps the last error of a TLS handshake, so that Dial can
// tell a certificate that will never verify from a daemon not up yet.
type recordingCreds struct {
	credentials.TransportCredentials
	last *atomic.Pointer[error]
}

func (r *recordingCreds) ClientHandshake(ctx context.Context, authority string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	c, ai, err := r.TransportCredentials.ClientHandshake(ctx, authority, conn)
	if err != nil {
		r.last.Store(&err)
	}
	return c, ai, err
}

func (r *recordingCreds) Clone() credentials.TransportCredentials {
	return &recordingCreds{TransportCredentials: r.TransportCredentials.Clone(), last: r.last}
}

// permanentTLSError returns the error of a TLS handshake that retrying will
// not fix, or nil.
func (t *target) permanentTLSError(callErr error) error {
	if t.creds == nil {
		return nil
	}
	if p := t.creds.last.Load(); p != nil {
		err := *p
		var ua x509.UnknownAuthorityError
		var host x509.HostnameError
		var inv x509.CertificateInvalidError
		var ver *tls.CertificateVerificationError
		var alert tls.AlertError
		var rec tls.RecordHeaderError
		if errors.As(err, &ua) || errors.As(err, &host) || errors.As(err, &inv) || errors.As(err, &ver) ||
			errors.As(err, &alert) || errors.As(err, &rec) {
			return err
		}
	}
	// With TLS 1.3 the server checks the client's certificate after the
	// client's side of the handshake is done: its refusal arrives as an
	// alert on the first read.
	if callErr != nil {
		msg := callErr.Error()
		if i := strings.Index(msg, "remote error: tls:"); i >= 0 {
			return errors.New(strings.TrimRight(msg[i:], `"`))
		}
	}
	return nil
}

// dial checks addr, connects and polls the daemon until it lists its
// workers, within o.wait.
func dial(ctx context.Context, addr string, o dialOptions) (*Builder, error) {
	t, err := prepare(addr, &o)
	if err != nil {
		return nil, err
	}
	if o.name == "" {
		o.name = addr
	}
	ctx, cancel := context.WithTimeout(ctx, o.wait)
	defer cancel()
	c, err := client.New(ctx, addr, t.copts...)
	if err != nil {
		return nil, &UnreachableError{Address: addr, Err: err}
	}
	var lastErr error
	for {
		ws, err := c.ListWorkers(ctx)
		if err == nil && len(ws) > 0 {
			b, err := newBuilder(o, addr, c, ws)
			if err != nil {
				c.Close()
				return nil, err
			}
			t.live.Store(true)
			return b, nil
		}
		if err == nil {
			err = errors.New("the daemon has no workers")
		}
		if tlsErr := t.permanentTLSError(err); tlsErr != nil {
			c.Close()
			return nil, &TLSError{Address: addr, Err: tlsErr}
		}
		if lastErr == nil || ctx.Err() == nil {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			c.Close()
			if errors.Is(lastErr, context.DeadlineExceeded) || errors.Is(lastErr, context.Canceled) || status.Code(lastErr) == codes.DeadlineExceeded {
				lastErr = fmt.Errorf("no answer within %v: %w", o.wait, lastErr)
			}
			return nil, &UnreachableError{Address: addr, Err: lastErr}
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// newBuilder makes a Builder of a client whose daemon listed ws.
func newBuilder(o dialOptions, addr string, c *client.Client, ws []*client.WorkerInfo) (*Builder, error) {
	var ps []ocispecs.Platform
	for _, w := range ws {
		ps = append(ps, w.Platforms...)
	}
	for _, d := range o.platforms {
		if !runsAny(ps, d) {
			return nil, &UnsupportedPlatformError{Builder: o.name, Platform: platforms.Format(d), Have: formatPlatforms(ps)}
		}
	}
	b := &Builder{name: o.name, addr: addr, c: c, platforms: ps, declared: o.platforms, opts: o}
	if o.maxConcurrency > 0 {
		b.slots = make(chan struct{}, o.maxConcurrency)
	}
	return b, nil
}
