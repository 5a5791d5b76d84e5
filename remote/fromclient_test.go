package remote_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/client"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/internal/testenv"
	"github.com/larder-build/larder/remote"
)

// A builder the caller is already connected to, as a managed builder
// service hands one out (a *client.Client, a name and a platform), is a
// member like any other: it is checked, routed to and built on, and the
// fleet leaves its client open. Its TLS credentials as PEM bytes dial too.
func TestFleetMemberFromClient(t *testing.T) {
	env := testenv.Get(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	certs, err := testenv.NewTLSFiles(t.TempDir(), "larder test CA", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	hostport, err := testenv.FreeTCPAddr()
	if err != nil {
		t.Fatal(err)
	}
	d, err := env.NewBuilder(ctx, remote.WorkerPlatforms("linux/amd64"), remote.ListenTCP(hostport, certs.CA, certs.ServerCert, certs.ServerKey))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	c, err := client.New(ctx, "tcp://"+hostport, client.WithServerConfig("127.0.0.1", certs.CA), client.WithCredentials(certs.ClientCert, certs.ClientKey))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	fleet, err := remote.NewFleet(ctx, remote.FromClient(c, remote.WithName("managed-amd64"), remote.Platforms("linux/amd64")))
	if err != nil {
		t.Fatal(err)
	}
	st := fleet.Members()[0]
	if st.Name != "managed-amd64" || st.State != remote.StateUp || st.Address != "" || strings.Join(st.Native, ",") != "linux/amd64" {
		t.Errorf("the member: %+v", st)
	}
	dir, res, err := solveTo(ctx, t, fleet, build.Image(busybox(t, env)).Run("echo managed > /out"), build.Key("/home/ci/src/app"))
	if err != nil {
		t.Fatal(err)
	}
	if builderOf(res) != "managed-amd64" || testenv.ReadFile(t, dir, "out") != "managed\n" {
		t.Errorf("built on %q", builderOf(res))
	}
	if err := fleet.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListWorkers(ctx); err != nil {
		t.Errorf("the client after the fleet closed: %v, want it still open", err)
	}

	// The same daemon, dialed with the credentials as PEM bytes.
	var pems [3][]byte
	for i, f := range []string{certs.CA, certs.ClientCert, certs.ClientKey} {
		if pems[i], err = os.ReadFile(f); err != nil {
			t.Fatal(err)
		}
	}
	b, err := remote.Dial(ctx, "tcp://"+hostport, remote.WithTLSPEM(pems[0], pems[1], pems[2]), remote.WithWait(20*time.Second))
	if err != nil {
		t.Fatalf("Dial with PEM bytes: %v", err)
	}
	b.Close()
	_, err = remote.Dial(ctx, "tcp://"+hostport, remote.WithTLSPEM(pems[0], nil, nil), remote.WithWait(20*time.Second))
	var te *remote.TLSError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "refused the client certificate") {
		t.Errorf("Dial with PEM bytes and no client certificate: %v, want a *TLSError", err)
	}

	// A client whose daemon is gone: the fleet says so within its probe
	// timeout.
	d.Close()
	start := time.Now()
	_, err = remote.NewFleet(ctx, remote.FromClient(c, remote.WithName("managed-amd64")), remote.ProbeTimeout(2*time.Second))
	if err == nil || !strings.Contains(err.Error(), "no member answered") || !strings.Contains(err.Error(), "managed-amd64") {
		t.Errorf("a fleet of a client whose daemon is gone: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
}
