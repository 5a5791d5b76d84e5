package remote

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/containerd/platforms"
	"github.com/moby/buildkit/client"
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

// defaultAddress is DefaultAddress; tests point it elsewhere.
var defaultAddress = DefaultAddress

// Dial connects to the BuildKit daemon at addr and waits until it answers
// with its workers. An empty addr means $BUILDKIT_HOST, else
// [DefaultAddress]. Addresses are unix:///path/to/buildkitd.sock,
// tcp://host:port (with [WithTLS] unless the host is loopback or
// [AllowInsecure] is given), and the schemes of BuildKit's connection
// helpers (docker-container://, podman-container://, nerdctl-container://,
// kube-pod://, ssh://) once the package remote/connhelpers is imported.
//
// Everything that can be checked without contacting the builder is checked
// first: the options, the address ([*AddressError], [*InsecureError]) and
// the TLS files ([*CredentialsError]). When addr is empty, $BUILDKIT_HOST
// is unset and there is no socket at [DefaultAddress], Dial fails at once
// with a [*NoBuilderError] that says how to get a builder; a unix socket
// whose directory does not exist fails at once with an [*UnreachableError].
// Dial then retries until the builder lists its workers, and gives up at
// the context's deadline or after the [WithWait] bound, whichever comes
// first, with an [*UnreachableError]; a TLS handshake that fails for a
// reason that waiting will not fix returns a [*TLSError] at once.
//
// A password in an address is never shown: errors, the builder's name and
// its [Builder.Address] show it as "xxxxx".
func Dial(ctx context.Context, addr string, opts ...DialOption) (*Builder, error) {
	o, err := makeDialOptions("remote: ", opts)
	if err != nil {
		return nil, err
	}
	from := ""
	if addr == "" {
		addr, from = os.Getenv("BUILDKIT_HOST"), "$BUILDKIT_HOST"
	}
	if addr == "" {
		addr, from = defaultAddress, ""
		// Mistakes in the options first, then the missing daemon.
		if _, err := prepare(addr, &o); err != nil {
			return nil, err
		}
		if err := checkDefaultSocket(addr); err != nil {
			return nil, err
		}
	}
	if o.wait == 0 {
		o.wait = defaultDialWait
	}
	b, err := dial(ctx, addr, o)
	if from != "" {
		var ae *AddressError
		var ie *InsecureError
		switch {
		case errors.As(err, &ae):
			ae.From = from
		case errors.As(err, &ie):
			ie.From = from
		}
	}
	return b, err
}

// checkDefaultSocket returns a *NoBuilderError when the default address
// addr is a unix socket that does not exist.
func checkDefaultSocket(addr string) error {
	u, err := parseAddress(addr)
	if err != nil || u.Scheme != "unix" {
		return err
	}
	if _, err := os.Stat(u.Path); errors.Is(err, fs.ErrNotExist) {
		return &NoBuilderError{Address: addr, Err: err}
	}
	return nil
}

// target is an address checked and ready to dial.
type target struct {
	addr  string   // as given
	url   *url.URL // addr parsed
	shown string   // addr as errors show it, its password redacted
	copts []client.ClientOpt
	creds *recordingCreds // nil without TLS
	live  *atomic.Bool    // set once the builder answered
}

// prepare checks addr and the options and builds the client options,
// without contacting anything.
func prepare(addr string, o *dialOptions) (*target, error) {
	u, err := parseAddress(addr)
	if err != nil {
		return nil, err
	}
	t := &target{addr: addr, url: u, shown: redact(addr), live: new(atomic.Bool)}
	if u.Scheme == "tcp" && !o.tls && !o.insecure && !isLoopback(u.Hostname()) {
		return nil, &InsecureError{Address: t.shown}
	}
	if o.tls {
		if u.Scheme != "tcp" {
			return nil, &AddressError{Address: t.shown, Reason: "WithTLS and WithTLSPEM apply to tcp addresses only (drop WithTLS or WithTLSPEM, or dial the daemon's tcp://host:port)"}
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
		name = t.shown
	}
	wrap := func(err error) error {
		if err == nil || !t.live.Load() || status.Code(err) != codes.Unavailable {
			return err
		}
		return &ConnectionError{Builder: name, Address: t.shown, Err: redactErr(err, addr)}
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

// loadTLS reads the files of WithTLS, or the PEM of WithTLSPEM, into a
// client configuration.
func loadTLS(o *dialOptions) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.serverName}
	caFile, ca := o.caFile, o.caPEM
	if !o.pem && caFile != "" {
		var err error
		if ca, err = os.ReadFile(caFile); err != nil {
			return nil, &CredentialsError{File: caFile, What: "CA certificate", Err: err}
		}
	}
	if len(ca) == 0 && (o.pem || caFile == "") {
		pool, err := x509.SystemCertPool()
		if err != nil {
			return nil, &CredentialsError{File: "(system roots)", What: "CA certificate", Err: err}
		}
		cfg.RootCAs = pool
	} else {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			if o.pem {
				return nil, &CredentialsError{What: "CA certificate", Err: errors.New("no PEM certificate in it")}
			}
			return nil, &CredentialsError{File: caFile, What: "CA certificate", Err: errors.New("no PEM certificate in the file")}
		}
		cfg.RootCAs = pool
	}
	switch {
	case o.pem && len(o.certPEM) > 0:
		cert, err := tls.X509KeyPair(o.certPEM, o.keyPEM)
		if err != nil {
			return nil, &CredentialsError{What: "client certificate", Err: err}
		}
		cfg.Certificates = []tls.Certificate{cert}
	case !o.pem && o.certFile != "":
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
		o.name = t.shown
	}
	if t.url.Scheme == "unix" {
		// A daemon that is starting may not have made its socket yet,
		// but a directory that does not exist is a wrong path.
		if err := socketDirMissing(t.url); err != nil {
			return nil, &UnreachableError{Address: t.shown, Err: err}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, o.wait)
	defer cancel()
	c, err := client.New(ctx, addr, t.copts...)
	if err != nil {
		return nil, &UnreachableError{Address: t.shown, Err: redactErr(err, addr)}
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
			return nil, &TLSError{Address: t.shown, Err: tlsErr}
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
			return nil, &UnreachableError{Address: t.shown, Err: redactErr(lastErr, addr)}
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
