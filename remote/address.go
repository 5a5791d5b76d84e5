package remote

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moby/buildkit/client/connhelper"
)

// maxSocketPath is the longest path a unix socket can have on Linux: the
// 108 bytes of sun_path, less the terminating NUL.
const maxSocketPath = 107

// parseAddress checks a builder address as Dial reads it, without
// contacting anything or looking at the filesystem, and returns it parsed.
// Its errors are *AddressError, with any password in the address redacted.
func parseAddress(addr string) (*url.URL, error) {
	bad := func(format string, args ...any) error {
		return &AddressError{Address: redact(addr), Reason: fmt.Sprintf(format, args...)}
	}
	if addr == "" {
		return nil, bad("empty address (use unix:///path/to/buildkitd.sock or tcp://host:port)")
	}
	if strings.TrimSpace(addr) != addr {
		return nil, bad("spaces around the address (remove them: %q)", redact(strings.TrimSpace(addr)))
	}
	u, err := url.Parse(addr)
	if err != nil {
		if scheme, rest, ok := strings.Cut(addr, "://"); ok && strings.EqualFold(scheme, "tcp") {
			// net/url refuses a port that is not a number before
			// checkTCP can say so.
			if err := checkHostPort(hostOf(rest)); err != nil {
				return nil, bad("%v (a tcp address is tcp://host:port, such as tcp://127.0.0.1:1234)", err)
			}
		}
		return nil, bad("not a valid URL: %s (use unix:///path/to/buildkitd.sock or tcp://host:port)", urlProblem(addr, err))
	}
	switch {
	case u.Scheme == "" && strings.HasPrefix(addr, "/"):
		return nil, bad("not a URL with a scheme: a socket path needs unix://, as in %q", "unix://"+redact(addr))
	case u.Scheme == "":
		return nil, bad("not a URL with a scheme (use unix:///path/to/buildkitd.sock or tcp://host:port)")
	case u.Opaque != "" && u.Scheme != "unix":
		if _, _, err := net.SplitHostPort(addr); err == nil {
			return nil, bad("not a URL with a scheme: for a daemon listening on tcp, use %q", "tcp://"+redact(addr))
		}
		return nil, bad("no // after the scheme (use %s://...)", u.Scheme)
	}
	switch u.Scheme {
	case "unix":
		return u, checkUnix(u, bad)
	case "tcp":
		return u, checkTCP(u, bad)
	}
	h, err := connhelper.GetConnectionHelper(addr)
	switch {
	case err != nil:
		return nil, bad("%s%s", scrub(err.Error(), addr), helperHint(u.Scheme))
	case h == nil && helperSchemes[u.Scheme]:
		return nil, bad("the %s connection helper is not registered: add import _ \"github.com/larder-build/larder/remote/connhelpers\"", u.Scheme)
	case h == nil:
		return nil, bad("unknown scheme %q (use unix, tcp, or with remote/connhelpers imported: %s)", u.Scheme, strings.Join(sortedKeys(helperSchemes), ", "))
	}
	return u, nil
}

// checkUnix checks a unix address: an absolute socket path, nothing else.
func checkUnix(u *url.URL, bad func(string, ...any) error) error {
	const use = "use unix:///path/to/buildkitd.sock"
	switch {
	case u.User != nil:
		return bad("a unix address carries no user or password (remove %q; %s)", userinfoShown(u), use)
	case u.Opaque != "":
		return bad("the socket path %q is relative (give an absolute path, such as unix:///run/buildkit/buildkitd.sock)", u.Opaque)
	case u.Host != "":
		return bad("%q reads as a host, but a unix address has none: the socket path is absolute, with three slashes (unix:///%s%s)", u.Host, u.Host, u.Path)
	case u.Path == "":
		return bad("unix address has no socket path (%s)", use)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return bad("a unix address has no ?query or #fragment (%s)", use)
	case strings.HasSuffix(u.Path, "/"):
		return bad("the socket path %q ends in / (name the socket file, such as unix:///run/buildkit/buildkitd.sock)", u.Path)
	case len(u.Path) > maxSocketPath:
		return bad("the socket path is %d bytes long, and unix socket paths are at most %d (use a shorter path)", len(u.Path), maxSocketPath)
	}
	return nil
}

// checkTCP checks a tcp address: host:port and nothing else.
func checkTCP(u *url.URL, bad func(string, ...any) error) error {
	switch {
	case u.User != nil:
		return bad("BuildKit sends no user or password over tcp, so %q would be ignored: remove it, and authenticate with client certificates (remote.WithTLS)", userinfoShown(u))
	case u.Path != "" && u.Path != "/":
		return bad("tcp address has a path %q (a tcp address is tcp://host:port and nothing more)", u.Path)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return bad("a tcp address has no ?query or #fragment (a tcp address is tcp://host:port and nothing more)")
	}
	if err := checkHostPort(u.Host); err != nil {
		return bad("%v (a tcp address is tcp://host:port, such as tcp://127.0.0.1:1234)", err)
	}
	return nil
}

// checkHostPort checks a host:port of a tcp address: a host, and a port
// from 1 to 65535. Its errors name the part that is wrong.
func checkHostPort(hostport string) error {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		var ae *net.AddrError
		switch {
		case hostport == "":
			return errors.New("no host:port")
		case errors.As(err, &ae) && ae.Err == "missing port in address":
			return fmt.Errorf("no port after the host %q: add the daemon's port, such as %s:1234", hostport, hostport)
		case errors.As(err, &ae) && ae.Err == "too many colons in address":
			return fmt.Errorf("%q has too many colons: put an IPv6 address in brackets, such as [::1]:1234", hostport)
		}
		return fmt.Errorf("%q is not host:port", hostport)
	}
	if host == "" {
		return fmt.Errorf("no host before the port in %q: give the daemon's host name or IP address", hostport)
	}
	if port == "" {
		return fmt.Errorf("no port after the host %q: add the daemon's port, such as %s:1234", host, hostport)
	}
	n, err := strconv.ParseUint(port, 10, 64)
	if err != nil {
		return fmt.Errorf("the port %q is not a number: a port is a number from 1 to 65535", port)
	}
	if n < 1 || n > 65535 {
		return fmt.Errorf("the port %s is out of range: a port is a number from 1 to 65535", port)
	}
	return nil
}

// hostOf returns the host:port of the part of a URL after "//": what
// precedes the first "/", "?" or "#", without the user information.
func hostOf(rest string) string {
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		rest = rest[i+1:]
	}
	return rest
}

// helperHint says how to write an address of a connection helper whose
// parser refused it.
func helperHint(scheme string) string {
	switch scheme {
	case "docker-container", "podman-container", "nerdctl-container":
		return fmt.Sprintf(" (name the container, such as %s://buildkitd)", scheme)
	case "kube-pod":
		return " (name the pod, such as kube-pod://buildkitd-0?namespace=builds)"
	case "ssh":
		return " (such as ssh://me@builder.example; ssh authenticates with your keys or agent, not a password in the address)"
	}
	return ""
}

// urlProblem says what net/url found wrong with addr, without quoting
// anything of a password the address may hold.
func urlProblem(addr string, err error) string {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return "it does not parse"
	}
	if _, _, pw := splitUserinfo(addr); pw != "" {
		var esc url.EscapeError
		if errors.As(ue.Err, &esc) {
			return "an invalid %-escape"
		}
	}
	return scrub(ue.Err.Error(), addr)
}

// socketDirMissing returns an error when the directory that would hold the
// socket of the unix address u does not exist, nil otherwise.
func socketDirMissing(u *url.URL) error {
	dir := filepath.Dir(u.Path)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no socket at %s, and no directory %s to hold one (check the path; if a daemon is starting and will create it, dial once the directory exists): %w", u.Path, dir, err)
	}
	return nil
}

// redact returns addr with the password of its user information, if it
// has one, replaced by "xxxxx", as net/url's URL.Redacted writes it:
// "tcp://user:xxxxx@host:1234". It works on addresses that do not parse
// as URLs too. An address without a password is returned as it is.
func redact(addr string) string {
	start, end, pw := splitUserinfo(addr)
	if pw == "" {
		return addr
	}
	user, _, _ := strings.Cut(addr[start:end], ":")
	return addr[:start] + user + ":xxxxx" + addr[end:]
}

// scrub replaces, in a message about addr, the address and its user
// information with their redacted forms.
func scrub(msg, addr string) string {
	start, end, pw := splitUserinfo(addr)
	if pw == "" {
		return msg
	}
	msg = strings.ReplaceAll(msg, addr, redact(addr))
	info := addr[start:end]
	user, _, _ := strings.Cut(info, ":")
	msg = strings.ReplaceAll(msg, info+"@", user+":xxxxx@")
	if dec, err := url.PathUnescape(info); err == nil && dec != info {
		duser, _, _ := strings.Cut(dec, ":")
		msg = strings.ReplaceAll(msg, dec+"@", duser+":xxxxx@")
	}
	return msg
}

// userinfoShown is the user information of u as an error shows it: the
// user name, and the password redacted.
func userinfoShown(u *url.URL) string {
	if _, ok := u.User.Password(); ok {
		return u.User.Username() + ":xxxxx@"
	}
	return u.User.Username() + "@"
}

// splitUserinfo finds the user information of a URL: addr[start:end] is
// "user:password" (without the @), and pw is "" when there is no password
// (or it is empty). It follows net/url: the authority follows "//" and
// ends at the first "/", "?" or "#"; the user information is what comes
// before its last "@".
func splitUserinfo(addr string) (start, end int, pw string) {
	i := strings.Index(addr, "//")
	if i < 0 {
		return 0, 0, ""
	}
	auth := addr[i+2:]
	if j := strings.IndexAny(auth, "/?#"); j >= 0 {
		auth = auth[:j]
	}
	at := strings.LastIndex(auth, "@")
	if at < 0 {
		return 0, 0, ""
	}
	info := auth[:at]
	_, pw, ok := strings.Cut(info, ":")
	if !ok || pw == "" {
		return 0, 0, ""
	}
	return i + 2, i + 2 + at, pw
}

// redactedError is an error whose message had an address's password
// replaced. It unwraps to the original error.
type redactedError struct {
	err  error
	addr string
}

func (e *redactedError) Error() string { return scrub(e.err.Error(), e.addr) }
func (e *redactedError) Unwrap() error { return e.err }

// redactErr returns err, its message stripped of addr's password when addr
// has one.
func redactErr(err error, addr string) error {
	if err == nil {
		return nil
	}
	if _, _, pw := splitUserinfo(addr); pw == "" {
		return err
	}
	return &redactedError{err: err, addr: addr}
}
