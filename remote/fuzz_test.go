package remote

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/containerd/platforms"
	"github.com/moby/buildkit/client/connhelper"
	"github.com/moby/buildkit/cmd/buildkitd/config"
)

// The address checker never panics, refuses with an *AddressError that
// names the address without its password, and accepts only what BuildKit
// can dial: a known scheme, an absolute socket path, or a host and a port
// from 1 to 65535.
func FuzzAddress(f *testing.F) {
	for _, s := range []string{
		DefaultAddress, "unix:/run/buildkit/buildkitd.sock", "unix://", "unix://run/x.sock", "unix:rel.sock",
		"tcp://127.0.0.1:1234", "tcp://[::1]:1234", "tcp://localhost:99999", "tcp://h:abc", "tcp://h:0", "tcp://:1",
		"tcp://u:secret@h:1234", "tcp://u:p%zz@h:1", "tcp://::1:1234", "tcp://h:1/path", "tcp://h:1?q", "TCP://H:1",
		"ssh://me:pw@host", "docker-container://c", "ftp://x", "localhost:1234", "/run/x.sock", " tcp://h:1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		o := dialOptions{insecure: true}
		tg, err := prepare(addr, &o)
		start, end, pw := splitUserinfo(addr)
		if err != nil {
			var ae *AddressError
			if !errors.As(err, &ae) {
				t.Fatalf("prepare(%q) = %T %v, want an *AddressError", addr, err, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, fmt.Sprintf("%q", redact(addr))) {
				t.Errorf("error %q does not name the address", msg)
			}
			if pw != "" && pw != "xxxxx" && strings.Contains(msg, addr[start:end]+"@") {
				t.Errorf("error %q shows the password of %q", msg, addr)
			}
			return
		}
		if pw != "" && pw != "xxxxx" && strings.Contains(tg.shown, pw) {
			t.Errorf("address %q shown as %q", addr, tg.shown)
		}
		u := tg.url
		switch u.Scheme {
		case "unix":
			if !strings.HasPrefix(u.Path, "/") || len(u.Path) > maxSocketPath || u.Host != "" || u.User != nil {
				t.Errorf("accepted %q: socket path %q, host %q", addr, u.Path, u.Host)
			}
		case "tcp":
			host, port, err := net.SplitHostPort(u.Host)
			n, perr := strconv.Atoi(port)
			if err != nil || host == "" || perr != nil || n < 1 || n > 65535 || u.User != nil {
				t.Errorf("accepted %q: host %q, port %q", addr, host, port)
			}
		default:
			if h, err := connhelper.GetConnectionHelper(addr); h == nil || err != nil {
				t.Errorf("accepted %q: scheme %q has no connection helper", addr, u.Scheme)
			}
		}
	})
}

// The platform parsing of Platforms, WorkerPlatforms and Fleet.Route never
// panics; its errors name the value; what it accepts, containerd reads
// back the same, and what WorkerPlatforms accepts, buildkitd reads from the
// configuration Start writes.
func FuzzPlatform(f *testing.F) {
	for _, s := range []string{"linux/amd64", "linux/arm64/v8", "linux/arm/v7", "arm64", "linux", "windows/amd64", "",
		" linux/amd64", "linux/amd64,linux/arm64", "linux/amd64/v2/x", "darwin/arm64", "linux/386", "Linux/AMD64", "linux/nope"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var do dialOptions
		derr := Platforms(s)(&do)
		var so startOptions
		werr := WorkerPlatforms(s)(&so)
		_, rerr := parsePlatform("Route", s)
		for _, err := range []error{derr, werr, rerr} {
			if err != nil && !strings.Contains(err.Error(), fmt.Sprintf("%q", s)) {
				t.Errorf("error %q does not name %q", err, s)
			}
		}
		if (derr == nil) != (rerr == nil) {
			t.Errorf("Platforms(%q): %v, but Route: %v", s, derr, rerr)
		}
		if werr == nil && derr != nil {
			t.Errorf("WorkerPlatforms accepts %q, Platforms refuses it: %v", s, derr)
		}
		if derr == nil {
			p := do.platforms[0]
			back, err := platforms.Parse(platforms.Format(p))
			if err != nil || !platforms.OnlyStrict(p).Match(platforms.Normalize(back)) {
				t.Errorf("Platforms(%q) holds %s, which reads back as %v, %v", s, platforms.Format(p), back, err)
			}
		}
		if werr == nil {
			so.maxStorage = defaultMaxStorage
			text, err := marshalDaemonConfig(daemonConfig(so))
			if err != nil {
				t.Fatal(err)
			}
			c, err := config.Load(bytes.NewReader(text))
			if err != nil || !slices.Equal(c.Workers.OCI.Platforms, so.platforms) {
				t.Fatalf("WorkerPlatforms(%q): buildkitd reads %v, %v from\n%s", s, c.Workers.OCI.Platforms, err, text)
			}
			for _, w := range c.Workers.OCI.Platforms {
				// buildkitd parses its worker's platforms so.
				p, err := platforms.Parse(w)
				if err != nil || p.OS != "linux" {
					t.Errorf("WorkerPlatforms(%q) writes %q, which buildkitd reads as %v, %v", s, w, p, err)
				}
			}
		}
	})
}
