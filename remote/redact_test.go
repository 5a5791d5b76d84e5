package remote_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/larder-build/larder/internal/testenv"
	"github.com/larder-build/larder/remote"
	"github.com/moby/buildkit/client/connhelper"
)

// larderTestSocket is the socket the connection helper larder-test://
// reaches for the host "up"; every other host fails with an error that
// quotes the whole address, password included, as a careless helper would.
var larderTestSocket string

func init() {
	connhelper.Register("larder-test", func(u *url.URL) (*connhelper.ConnectionHelper, error) {
		return &connhelper.ConnectionHelper{ContextDialer: func(ctx context.Context, _ string) (net.Conn, error) {
			if u.Hostname() == "up" && larderTestSocket != "" {
				var d net.Dialer
				return d.DialContext(ctx, "unix", larderTestSocket)
			}
			return nil, fmt.Errorf("cannot reach %s (user info %s)", u.String(), u.User.String()+"@")
		}}, nil
	})
}

// A password in a builder's address shows nowhere: not in the builder's
// name or address, not in a fleet's statuses and route errors, not in the
// errors of a dial that fails.
func TestPasswordsAreNeverShown(t *testing.T) {
	env := testenv.Get(t)
	larderTestSocket = strings.TrimPrefix(env.Builder.Address(), "unix://")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	up := "larder-test://builder:" + secret + "@up"
	down := "larder-test://builder:" + secret + "@down"
	const upShown = "larder-test://builder:xxxxx@up"
	const downShown = "larder-test://builder:xxxxx@down"

	var shown []string
	b, err := remote.Dial(ctx, up, remote.WithWait(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Name() != upShown || b.Address() != upShown {
		t.Errorf("builder named %q at %q, want both %q", b.Name(), b.Address(), upShown)
	}
	shown = append(shown, b.Name(), b.Address())
	if _, name, release, err := b.Acquire(ctx, b.Native()[0], "k"); err != nil || name != upShown {
		t.Errorf("Acquire = %q, %v", name, err)
	} else {
		release(nil)
	}

	_, err = remote.Dial(ctx, down, remote.WithWait(time.Second))
	var ue *remote.UnreachableError
	if !errors.As(err, &ue) || ue.Address != downShown || !strings.Contains(err.Error(), "cannot reach "+downShown) {
		t.Errorf("Dial(down) = %v, want an *UnreachableError naming %s", err, downShown)
	}
	shown = append(shown, fmt.Sprintf("%v %+v", err, err))

	fleet, err := remote.NewFleet(ctx,
		remote.Member(up, remote.Platforms("linux/amd64")),
		remote.Member(down, remote.Platforms("linux/arm64")),
		remote.ProbeTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Close()
	for _, st := range fleet.Members() {
		shown = append(shown, fmt.Sprintf("%+v", st))
		if st.Name != upShown && st.Name != downShown || st.Address != st.Name {
			t.Errorf("member %q at %q, want its redacted address for both", st.Name, st.Address)
		}
	}
	for _, p := range []string{"linux/arm64", "linux/riscv64"} {
		_, err := fleet.Route(p, "k")
		var re *remote.RouteError
		if !errors.As(err, &re) {
			t.Fatalf("Route(%s) = %v, want a *RouteError", p, err)
		}
		if p == "linux/arm64" && !strings.Contains(err.Error(), downShown+" runs it but is down") {
			t.Errorf("the route error does not name the member that is down: %v", err)
		}
		shown = append(shown, err.Error(), fmt.Sprintf("%+v", re))
	}
	for _, s := range shown {
		t.Log(s)
		if strings.Contains(s, secret) {
			t.Errorf("shows the password: %s", s)
		}
	}
}

// With no address, no $BUILDKIT_HOST and no socket at the default address,
// Dial says at once how to get a builder; a file at the default address
// is a daemon that may be starting, and Dial waits for it.
func TestDialWithoutABuilder(t *testing.T) {
	dir := t.TempDir()
	sock := dir + "/buildkitd.sock"
	remote.SetDefaultAddress(t, "unix://"+sock)
	t.Setenv("BUILDKIT_HOST", "")
	start := time.Now()
	_, err := remote.Dial(context.Background(), "", remote.WithWait(5*time.Second))
	var nb *remote.NoBuilderError
	if !errors.As(err, &nb) || nb.Address != "unix://"+sock {
		t.Fatalf("Dial(\"\") = %v, want a *NoBuilderError", err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("Dial took %v to say there is no builder", d)
	}
	// The socket exists: the daemon may be starting.
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // leaves the socket file, with nobody listening
	start = time.Now()
	_, err = remote.Dial(context.Background(), "", remote.WithWait(time.Second))
	var ue *remote.UnreachableError
	if !errors.As(err, &ue) || errors.As(err, &nb) {
		t.Fatalf("Dial(\"\") with a socket file = %v, want an *UnreachableError", err)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("Dial gave up after %v, before its wait", d)
	}
}
