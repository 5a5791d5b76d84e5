package remote

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
)

// AddressError reports a builder address that can't be dialed as written: no
// scheme, an unknown scheme, a connection helper that is not registered, or
// a malformed host, port or path. Dial reports it before contacting
// anything.
type AddressError struct {
	// Address is the address as given, with any password in it replaced
	// by "xxxxx".
	Address string
	// From says where the address came from when it was not given to
	// Dial: "$BUILDKIT_HOST", or "" for an address given.
	From string
	// Reason says what is wrong with it, and what to write instead.
	Reason string
}

// Error names the address, where it came from, and what is wrong with it.
func (e *AddressError) Error() string {
	return fmt.Sprintf("remote: address %q%s: %s", e.Address, from(e.From), e.Reason)
}

// from says where an address came from, in an error's words.
func from(source string) string {
	if source == "" {
		return ""
	}
	return " (from " + source + ")"
}

// InsecureError reports a tcp address whose host is not a loopback address,
// dialed without TLS and without [AllowInsecure]. Dial reports it before
// contacting anything.
type InsecureError struct {
	// Address is the address as given, with any password in it replaced
	// by "xxxxx".
	Address string
	// From says where the address came from when it was not given to
	// Dial: "$BUILDKIT_HOST", or "" for an address given.
	From string
}

// Error names the address and the two ways to connect to it.
func (e *InsecureError) Error() string {
	return fmt.Sprintf("remote: address %q%s: refusing plain tcp to a host that is not loopback: anyone on the path could run builds as the daemon; "+
		"give remote.WithTLS(ca, cert, key), or remote.AllowInsecure() to accept an unencrypted connection", e.Address, from(e.From))
}

// CredentialsError reports a TLS file given to [WithTLS] that is missing or
// does not hold what it should, or PEM given to [WithTLSPEM] that does not.
// Dial reports it before contacting anything.
type CredentialsError struct {
	// File is the path as given; "" for PEM given to WithTLSPEM.
	File string
	// What is the role of the file: "CA certificate", "client certificate"
	// or "client key".
	What string
	// Err says what is wrong with the file.
	Err error
}

// Error names the file, its role and what is wrong with it, and says what
// the file should hold.
func (e *CredentialsError) Error() string {
	hint := "give the client's certificate and its key in PEM, made as a pair and signed by a CA the builder trusts"
	if e.What == "CA certificate" {
		hint = `give the PEM file of the CA that signed the builder's certificate, or "" for the system's roots`
	}
	if e.File == "" {
		hint = "give the client's certificate and its key in PEM, made as a pair and signed by a CA the builder trusts"
		if e.What == "CA certificate" {
			hint = "give the PEM of the CA that signed the builder's certificate, or nil for the system's roots"
		}
		return fmt.Sprintf("remote: WithTLSPEM: %s: %v (%s)", e.What, e.Err, hint)
	}
	return fmt.Sprintf("remote: WithTLS: %s %s: %v (%s)", e.What, e.File, e.Err, hint)
}

// Unwrap returns the underlying error, for errors.Is and errors.As.
func (e *CredentialsError) Unwrap() error { return e.Err }

// TLSError reports a TLS handshake with a builder that failed for a reason
// that waiting will not fix: the builder's certificate is not signed by the
// CA given to [WithTLS], does not name the host, or the builder refused the
// client certificate. Dial reports it as soon as it happens, without waiting
// for its deadline. Err is the error of crypto/tls or crypto/x509, so
// errors.As reaches x509.UnknownAuthorityError and its kin.
type TLSError struct {
	// Address is the builder's address, with any password in it replaced
	// by "xxxxx".
	Address string
	// Err is the handshake's error.
	Err error
}

// Error says in words why the handshake failed, then gives the TLS error.
func (e *TLSError) Error() string {
	return fmt.Sprintf("remote: TLS handshake with the builder at %s failed: %s: %v", e.Address, tlsReason(e.Err), e.Err)
}

// Unwrap returns the underlying error, for errors.Is and errors.As.
func (e *TLSError) Unwrap() error { return e.Err }

// tlsReason says in words what a handshake error means for the caller.
func tlsReason(err error) string {
	var ua x509.UnknownAuthorityError
	var host x509.HostnameError
	var inv x509.CertificateInvalidError
	var alert tls.AlertError
	switch {
	case errors.As(err, &ua):
		return "the builder's certificate is not trusted: it is not signed by the CA given to WithTLS (wrong CA?)"
	case errors.As(err, &host):
		return "the builder's certificate does not hold the server name expected (the address's host, or the one given to WithServerName)"
	case errors.As(err, &inv):
		return "the builder's certificate is not valid (expired, or not for server use)"
	case errors.As(err, &alert), strings.Contains(err.Error(), "remote error: tls:"):
		return "the builder refused the client certificate (is it signed by the CA the builder trusts?)"
	case strings.Contains(err.Error(), "first record does not look like a TLS handshake"):
		return "the builder does not speak TLS on this address"
	}
	return "the connection is not secure as configured"
}

// UnreachableError reports a builder that did not answer before the dial's
// deadline: no socket, connection refused, or no workers listed. Dial
// reports it at once, without waiting, for a unix socket whose directory
// does not exist.
type UnreachableError struct {
	// Address is the builder's address, with any password in it replaced
	// by "xxxxx".
	Address string
	// Err is the last error seen while waiting.
	Err error
}

// Error names the address and the last error seen while waiting.
func (e *UnreachableError) Error() string {
	return fmt.Sprintf("remote: builder at %s did not answer: %v", e.Address, e.Err)
}

// Unwrap returns the underlying error, for errors.Is and errors.As.
func (e *UnreachableError) Unwrap() error { return e.Err }

// ConnectionError reports a call to a builder that failed because the
// connection is down or was lost, such as a solve whose daemon died or
// stopped answering keepalive pings. A solve that fails with it can be
// retried on another builder: a [Fleet] marks the member down when the
// solve's release reports it. Find it with errors.As.
//
// It does not unwrap to gRPC's error: BuildKit's client rebuilds every
// error that carries a gRPC status from that status alone, which would
// lose this type, so status.Code reports Unknown for it; Err keeps gRPC's
// error, whose code is Unavailable.
type ConnectionError struct {
	// Builder is the name of the builder.
	Builder string
	// Address is the builder's address, with any password in it replaced
	// by "xxxxx".
	Address string
	// Err is gRPC's error.
	Err error
}

// Error names the builder and its address, then gives gRPC's error.
func (e *ConnectionError) Error() string {
	return fmt.Sprintf("remote: lost the connection to builder %s (%s): %v", e.Builder, e.Address, e.Err)
}

// NoBuilderError reports that [Dial] had no builder to dial: it was given
// no address, $BUILDKIT_HOST is not set, and there is no socket at
// [DefaultAddress]. Dial reports it at once, without waiting. Its message
// lists the ways to get a builder.
type NoBuilderError struct {
	// Address is the default address that has no socket.
	Address string
	// Err is the error of looking for the socket; it wraps
	// fs.ErrNotExist.
	Err error
}

// builderSources are the ways to get a builder that a NoBuilderError
// lists, in the order it lists them.
var builderSources = []string{
	"remote.Auto(ctx) finds one or starts one: a builder container through Docker or Podman, or a local buildkitd (as root, or rootless)",
	"remote.Start(ctx) runs a local buildkitd as a child process (as root with runc, or rootless with rootlesskit)",
	`remote.Dial(ctx, "docker-container://NAME") reaches buildkitd in the container NAME`,
	"set $BUILDKIT_HOST to the address of a running builder, such as unix:///path/to/buildkitd.sock or tcp://host:1234",
}

// Error says that no builder was found where Dial looks, and lists the
// ways to get one.
func (e *NoBuilderError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "remote: no builder to dial: no address given, $BUILDKIT_HOST is not set, and there is no socket at %s (no buildkitd runs there). To get a builder: ", e.Address)
	for i, s := range builderSources {
		if i > 0 {
			b.WriteString("; or ")
		}
		b.WriteString(s)
	}
	return b.String()
}

// Unwrap returns the underlying error, for errors.Is and errors.As.
func (e *NoBuilderError) Unwrap() error { return e.Err }

// UnsupportedPlatformError reports a platform that no worker of a builder runs.
type UnsupportedPlatformError struct {
	// Builder is the name of the builder.
	Builder string
	// Platform is the platform asked for.
	Platform string
	// Have lists the platforms the builder runs.
	Have []string
}

// Error names the builder, the platform and the platforms it runs.
func (e *UnsupportedPlatformError) Error() string {
	return fmt.Sprintf("remote: builder %s does not run %s (it runs %s)", e.Builder, e.Platform, strings.Join(e.Have, ", "))
}

// RouteError reports a platform that no member of a [Fleet] can build now.
// It lists the members that would have built it but are down, and those
// that could emulate it when emulation is not allowed.
type RouteError struct {
	// Platform is the platform asked for.
	Platform string
	// Down lists the members that run the platform natively or compatibly
	// but do not answer, with why.
	Down []MemberStatus
	// Emulators lists the members that could run the platform under
	// emulation, which the fleet does not allow (see [AllowEmulation]).
	Emulators []string
	// Members lists every member of the fleet with its native platforms,
	// as "name (linux/amd64)".
	Members []string
	// Sources lists the fleet's sources ([Discover]) that failed or listed
	// no member.
	Sources []SourceStatus
}

// Error names the platform, the members that would build it but are
// down, and those that could emulate it if allowed.
func (e *RouteError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "remote: no member of the fleet can build %s now", e.Platform)
	for _, d := range e.Down {
		fmt.Fprintf(&b, "; %s runs it but is down", d.Name)
		if d.Err != nil {
			fmt.Fprintf(&b, " (%v)", d.Err)
		}
	}
	if len(e.Emulators) > 0 {
		fmt.Fprintf(&b, "; %s could emulate it, but emulation is not allowed (remote.AllowEmulation)", strings.Join(e.Emulators, ", "))
	}
	if len(e.Down) == 0 && len(e.Emulators) == 0 {
		if len(e.Members) == 0 {
			b.WriteString("; the fleet has no member")
		} else {
			fmt.Fprintf(&b, "; members: %s", strings.Join(e.Members, ", "))
		}
	}
	for _, s := range e.Sources {
		if s.Err != nil {
			fmt.Fprintf(&b, "; source %s: %v", s.Source, s.Err)
		} else {
			fmt.Fprintf(&b, "; source %s lists no member", s.Source)
		}
	}
	return b.String()
}

// StartError reports a local daemon that could not be started, with what is
// missing.
type StartError struct {
	// Reason says what is missing or what failed.
	Reason string
	// Err is the underlying error, if any.
	Err error
	// Log holds the last lines the daemon wrote, if it ran.
	Log string
}

// Error says what is missing, followed by the daemon's last lines when
// it ran.
func (e *StartError) Error() string {
	var b strings.Builder
	b.WriteString("remote: cannot start buildkitd: ")
	b.WriteString(e.Reason)
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if e.Log != "" {
		b.WriteString("\nbuildkitd log:\n")
		b.WriteString(e.Log)
	}
	return b.String()
}

// Unwrap returns the underlying error, for errors.Is and errors.As.
func (e *StartError) Unwrap() error { return e.Err }
