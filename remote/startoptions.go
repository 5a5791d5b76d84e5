package remote

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/moby/buildkit/cmd/buildkitd/config"
)

// StartOption configures [Start]. Each option checks its own input, and
// Start checks them all before it runs the daemon.
type StartOption func(*startOptions) error

type startOptions struct {
	binary     string
	stateDir   string
	insecure   []string // registry hosts
	platforms  []string // normalized, as the daemon's worker runs them
	logTo      io.Writer
	maxStorage config.DiskSpace
	dial       []DialOption
	tcp        *tcpListen
}

type tcpListen struct {
	addr, ca, cert, key string
}

// defaultMaxStorage is MaxStorage's default, 20GB as buildkitd reads it.
var defaultMaxStorage = config.DiskSpace{Bytes: 20 << 30}

// makeStartOptions applies opts over the defaults; each error it returns
// starts with "remote: ".
func makeStartOptions(opts []StartOption) (startOptions, error) {
	o := startOptions{binary: "buildkitd", maxStorage: defaultMaxStorage}
	var errs []error
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&o); err != nil {
			errs = append(errs, err)
		}
	}
	return o, prefixed("remote: ", errs)
}

// Binary sets the buildkitd executable Start runs. The default is
// "buildkitd" looked up in PATH.
func Binary(path string) StartOption {
	return func(o *startOptions) error {
		if strings.TrimSpace(path) == "" {
			return fmt.Errorf("Binary(%q): empty path (give the buildkitd executable, such as \"/usr/local/bin/buildkitd\"; leave the option out to look up buildkitd in PATH)", path)
		}
		o.binary = path
		return nil
	}
}

// StateDir sets the directory that holds the daemon's state (its --root)
// and its configuration; its sockets live in a short temporary directory of
// their own. A state dir keeps cache mounts and layer cache between runs.
// The default is a new temporary directory removed on Close.
func StateDir(dir string) StartOption {
	return func(o *startOptions) error {
		if strings.TrimSpace(dir) == "" {
			return fmt.Errorf("StateDir(%q): empty path (give an absolute directory that keeps the daemon's state between runs, such as \"/var/lib/larder/buildkitd\"; leave the option out for a temporary one)", dir)
		}
		if !filepath.IsAbs(dir) {
			example := "/var/lib/larder/buildkitd"
			if abs, err := filepath.Abs(dir); err == nil {
				example = abs
			}
			return fmt.Errorf("StateDir(%q): must be an absolute path (such as %q, from filepath.Abs)", dir, example)
		}
		o.stateDir = dir
		return nil
	}
}

// InsecureRegistry lets the daemon reach the registry at host (such as
// "127.0.0.1:5000") over plain HTTP. The host is written as image
// references name it: a name with a dot or a port, or localhost, without
// a scheme or a path. The default is HTTPS for every registry.
func InsecureRegistry(host string) StartOption {
	return func(o *startOptions) error {
		if err := checkRegistryHost(host); err != nil {
			return fmt.Errorf("InsecureRegistry(%q): %w", host, err)
		}
		o.insecure = append(o.insecure, host)
		return nil
	}
}

// checkRegistryHost checks a registry host as image references name it,
// which is how the daemon's configuration names registries.
func checkRegistryHost(host string) error {
	const how = `give host or host:port, such as "127.0.0.1:5000" or "registry.example.com"`
	switch {
	case strings.TrimSpace(host) == "":
		return fmt.Errorf("empty host (%s)", how)
	case strings.TrimSpace(host) != host:
		return fmt.Errorf("spaces around the host (remove them: %q)", strings.TrimSpace(host))
	case strings.Contains(host, "://"):
		if u, err := url.Parse(host); err == nil && u.Host != "" {
			return fmt.Errorf("drop the scheme: InsecureRegistry(%q) (the option itself says plain HTTP)", u.Host)
		}
		return fmt.Errorf("a registry host has no scheme (%s)", how)
	case strings.Contains(host, "/"):
		h, _, _ := strings.Cut(host, "/")
		return fmt.Errorf("a registry host has no path: InsecureRegistry(%q) covers every repository on it", h)
	}
	if _, _, err := net.SplitHostPort(host); err == nil {
		if err := checkHostPort(host); err != nil {
			return fmt.Errorf("%v (%s)", err, how)
		}
	}
	named, err := reference.ParseNormalizedNamed(host + "/larder")
	if err != nil {
		return fmt.Errorf("not a registry host name (%s)", how)
	}
	if d := reference.Domain(named); d != host {
		if strings.ContainsAny(host, ".:") || host == "localhost" {
			return fmt.Errorf("image references name this registry %q: use InsecureRegistry(%q)", d, d)
		}
		return fmt.Errorf("without a dot or a port, %q reads as a namespace on Docker Hub, not a registry host (write it as image references name it, such as %q or %q)", host, host+":5000", host+".local")
	}
	return nil
}

// WorkerPlatforms sets the platforms of the daemon's worker (what
// buildkitd's --oci-worker-platform sets), such as "linux/arm64" for a
// member that should take arm64 builds; the first is the worker's default
// platform. Each must be a linux platform: the worker runs runc. The daemon
// still lists every platform the host can emulate after these, so a fleet
// should declare its members' platforms. The default is the host's platform
// first, then the emulated ones.
func WorkerPlatforms(ps ...string) StartOption {
	return func(o *startOptions) error {
		if len(ps) == 0 {
			return errors.New(`WorkerPlatforms(): no platform given (pass the worker's platforms, such as remote.WorkerPlatforms("linux/arm64"); leave the option out for the host's platform)`)
		}
		var errs []error
		for _, s := range ps {
			p, err := parsePlatform("WorkerPlatforms", s)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if p.OS != "linux" {
				errs = append(errs, fmt.Errorf("WorkerPlatforms(%q): the daemon's runc worker runs linux platforms only (such as \"linux/%s\")", s, p.Architecture))
				continue
			}
			if f := platforms.Format(p); !slices.Contains(o.platforms, f) {
				o.platforms = append(o.platforms, f)
			}
		}
		return errors.Join(errs...)
	}
}

// MaxStorage sets how much disk the daemon's cache may use before garbage
// collection, as buildkitd reads it: bytes with a unit ("20GB", "512MB")
// or a share of the disk ("10%"). Sizes under 1MB are refused. The default
// is 20GB. Larder's policy keeps cache mounts under the same bound as
// everything else, instead of BuildKit's default that evicts cache mounts
// first.
func MaxStorage(s string) StartOption {
	return func(o *startOptions) error {
		d, err := parseStorage(s)
		if err != nil {
			return fmt.Errorf("MaxStorage(%q): %w", s, err)
		}
		o.maxStorage = d
		return nil
	}
}

// parseStorage reads a size with BuildKit's own parser, the one buildkitd
// reads its configuration with, and refuses sizes that parse but make no
// sense as a cache's bound.
func parseStorage(s string) (config.DiskSpace, error) {
	const how = `give bytes with a unit, such as "20GB" or "512MB", or a share of the disk, such as "10%"`
	var d config.DiskSpace
	switch {
	case strings.TrimSpace(s) == "":
		return d, fmt.Errorf("empty size (%s; leave the option out for 20GB)", how)
	case strings.ContainsAny(s, `"'`):
		return d, fmt.Errorf("quotes around the size (remove them: %q)", strings.Trim(s, `"' `))
	}
	if err := d.UnmarshalText([]byte(s)); err != nil {
		return d, fmt.Errorf("not a size buildkitd reads (%s)", how)
	}
	switch {
	case strings.HasSuffix(s, "%") && (d.Percentage < 1 || d.Percentage > 100):
		return d, fmt.Errorf("a share of the disk is from 1%% to 100%% (such as \"10%%\")")
	case !strings.HasSuffix(s, "%") && d.Bytes < 1<<20:
		return d, fmt.Errorf("%d bytes is under 1MB: the cache would be emptied after every step (a number without a unit is bytes; %s)", d.Bytes, how)
	}
	return d, nil
}

// DaemonLog copies everything the daemon writes to w. The default keeps only
// the last lines, for the error when the daemon fails to start.
func DaemonLog(w io.Writer) StartOption {
	return func(o *startOptions) error {
		if w == nil {
			return errors.New("DaemonLog(nil): nil writer (pass a writer, such as os.Stderr; leave the option out to keep only the daemon's last lines for errors)")
		}
		o.logTo = w
		return nil
	}
}

// ListenTCP makes the daemon also listen on the tcp address addr (such as
// "127.0.0.1:1234") with TLS: certFile and keyFile are its certificate and
// key in PEM; with a caFile, it asks every client for a certificate signed
// by that CA (mutual TLS). Start itself still dials the daemon's unix
// socket. The default is the unix socket only.
func ListenTCP(addr, caFile, certFile, keyFile string) StartOption {
	return func(o *startOptions) error {
		if o.tcp != nil {
			return fmt.Errorf("ListenTCP(%q): the daemon already listens on %q (one tcp address only: give ListenTCP once)", addr, o.tcp.addr)
		}
		if strings.HasPrefix(addr, "tcp://") {
			return fmt.Errorf("ListenTCP(%q): want host:port, without the scheme: ListenTCP(%q, ...)", addr, strings.TrimPrefix(addr, "tcp://"))
		}
		if err := checkHostPort(addr); err != nil {
			return fmt.Errorf("ListenTCP(%q): want host:port, such as \"127.0.0.1:1234\" (\"0.0.0.0:1234\" for every interface): %v", addr, err)
		}
		if certFile == "" || keyFile == "" {
			return fmt.Errorf("ListenTCP(%q, %q, %q, %q): the daemon needs a certificate and its key (pass both in PEM, such as remote.ListenTCP(%q, \"ca.pem\", \"server.pem\", \"server-key.pem\"))", addr, caFile, certFile, keyFile, addr)
		}
		for _, f := range []struct{ path, what string }{{caFile, "CA certificate"}, {certFile, "certificate"}, {keyFile, "key"}} {
			if f.path == "" {
				continue
			}
			if _, err := os.Stat(f.path); err != nil {
				return fmt.Errorf("ListenTCP(%q): the daemon's %s: %w (give the path of an existing PEM file)", addr, f.what, err)
			}
		}
		o.tcp = &tcpListen{addr: addr, ca: caFile, cert: certFile, key: keyFile}
		return nil
	}
}

// StartDialOptions passes options such as [WithName] to the dial that
// follows the daemon's start.
func StartDialOptions(opts ...DialOption) StartOption {
	return func(o *startOptions) error {
		o.dial = append(o.dial, opts...)
		return nil
	}
}
