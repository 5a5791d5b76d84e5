package remote_test

import (
	"context"
	"crypto/x509"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/internal/testenv"
	"github.com/larder-build/larder/remote"
)

// Every mistake that can be found without the network is reported at once,
// and nothing is sent: these addresses are never contacted.
func TestDialRefusesBeforeContactingAnything(t *testing.T) {
	certs, err := testenv.NewTLSFiles(t.TempDir(), "larder test CA", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var (
		addrErr     *remote.AddressError
		insecureErr *remote.InsecureError
		credErr     *remote.CredentialsError
	)
	for _, tc := range []struct {
		name string
		addr string
		opts []remote.DialOption
		as   any
		want []string
	}{
		{"plain tcp to a private IP", "tcp://10.0.0.1:1234", nil, &insecureErr, []string{"refusing plain tcp", "remote.WithTLS", "remote.AllowInsecure"}},
		{"plain tcp to a host name", "tcp://builder.example.com:1234", nil, &insecureErr, []string{"not loopback"}},
		{"unknown scheme", "ftp://builder:21", nil, &addrErr, []string{`unknown scheme "ftp"`, "unix, tcp"}},
		{"connection helper not registered", "nerdctl-container://buildkitd", nil, &addrErr, []string{"nerdctl-container connection helper is not registered", `import _ "github.com/larder-build/larder/remote/connhelpers"`}},
		{"kube-pod not registered", "kube-pod://buildkitd-0", nil, &addrErr, []string{"kube-pod", "remote/connhelpers"}},
		{"no scheme", "/run/buildkit/buildkitd.sock", nil, &addrErr, []string{"not a URL with a scheme"}},
		{"unix without a path", "unix://", nil, &addrErr, []string{"no socket path"}},
		{"tcp without a port", "tcp://127.0.0.1", nil, &addrErr, []string{"host:port"}},
		{"TLS on a unix socket", "unix:///run/buildkit/buildkitd.sock", []remote.DialOption{remote.WithTLS(certs.CA, "", "")}, &addrErr, []string{"tcp addresses only"}},
		{"missing CA file", "tcp://10.0.0.1:1234", []remote.DialOption{remote.WithTLS("/nonexistent/ca.pem", certs.ClientCert, certs.ClientKey)}, &credErr, []string{"CA certificate /nonexistent/ca.pem", "no such file"}},
		{"CA file without a certificate", "tcp://10.0.0.1:1234", []remote.DialOption{remote.WithTLS(notPEM, certs.ClientCert, certs.ClientKey)}, &credErr, []string{notPEM, "no PEM certificate"}},
		{"missing client key", "tcp://10.0.0.1:1234", []remote.DialOption{remote.WithTLS(certs.CA, certs.ClientCert, "/nonexistent/key.pem")}, &credErr, []string{"client key /nonexistent/key.pem"}},
		{"key of another certificate", "tcp://10.0.0.1:1234", []remote.DialOption{remote.WithTLS(certs.CA, certs.ClientCert, certs.ServerKey)}, &credErr, []string{"private key does not match"}},
		{"PEM key of another certificate", "tcp://10.0.0.1:1234", []remote.DialOption{remote.WithTLSPEM(readFile(t, certs.CA), readFile(t, certs.ClientCert), readFile(t, certs.ServerKey))}, &credErr, []string{"WithTLSPEM: client certificate", "private key does not match"}},
		{"PEM CA given as a key", "tcp://10.0.0.1:1234", []remote.DialOption{remote.WithTLSPEM(readFile(t, certs.ClientKey), nil, nil)}, &credErr, []string{"WithTLSPEM: CA certificate", "no PEM certificate in it"}},
		{"PEM on a unix socket", "unix:///run/buildkit/buildkitd.sock", []remote.DialOption{remote.WithTLSPEM(readFile(t, certs.CA), nil, nil)}, &addrErr, []string{"tcp addresses only"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			b, err := remote.Dial(context.Background(), tc.addr, tc.opts...)
			if err == nil {
				b.Close()
				t.Fatalf("Dial(%q) succeeded", tc.addr)
			}
			if d := time.Since(start); d > 100*time.Millisecond {
				t.Errorf("Dial took %v to refuse, want it at once", d)
			}
			if !errors.As(err, tc.as) {
				t.Errorf("Dial(%q) = %T %v, want a %T", tc.addr, err, err, tc.as)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	if _, err := remote.Dial(context.Background(), "tcp://10.0.0.1:1234", remote.WithTLS("/nonexistent/ca.pem", "", "")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing CA file: %v does not wrap fs.ErrNotExist", err)
	}
}

func TestDialOptionsAreChecked(t *testing.T) {
	for _, tc := range []struct {
		opt  remote.DialOption
		want string
	}{
		{remote.WithTLS("ca.pem", "cert.pem", ""), "both the client certificate and its key"},
		{remote.WithServerName("builder.example"), "needs WithTLS"},
		{remote.WithKeepalive(5*time.Second, time.Second), "at least 10s"},
		{remote.WithKeepalive(time.Minute, 0), "timeout must be positive"},
		{remote.WithWait(0), "must be positive"},
		{remote.WithName(" "), "empty name"},
		{remote.Platforms(), "no platform"},
		{remote.Platforms("linux/amd64/v2/x"), "Platforms"},
		{remote.MaxConcurrency(0), "at least 1"},
	} {
		_, err := remote.Dial(context.Background(), "unix:///nonexistent.sock", tc.opt)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Dial = %v, want an error saying %q", err, tc.want)
		}
	}
}

func TestDialUsesBuildkitHost(t *testing.T) {
	t.Setenv("BUILDKIT_HOST", "tcp://10.0.0.2:1234")
	_, err := remote.Dial(context.Background(), "")
	var ie *remote.InsecureError
	if !errors.As(err, &ie) || ie.Address != "tcp://10.0.0.2:1234" {
		t.Fatalf("Dial(\"\") with $BUILDKIT_HOST set = %v, want that address refused", err)
	}
}

// A socket nobody listens on: Dial keeps trying until its wait ends, then
// says what it last saw.
func TestDialUnreachableWithinTheWait(t *testing.T) {
	sock := "unix://" + filepath.Join(t.TempDir(), "nobody.sock")
	start := time.Now()
	_, err := remote.Dial(context.Background(), sock, remote.WithWait(time.Second))
	d := time.Since(start)
	var ue *remote.UnreachableError
	if !errors.As(err, &ue) || ue.Address != sock {
		t.Fatalf("Dial = %v, want an *UnreachableError for %s", err, sock)
	}
	if !strings.Contains(err.Error(), "no such file") {
		t.Errorf("error %q does not say the socket is missing", err)
	}
	if d < time.Second || d > 3*time.Second {
		t.Errorf("Dial gave up after %v, want about the 1s wait", d)
	}
	// A context deadline earlier than the wait wins.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err := remote.Dial(ctx, sock); !errors.As(err, &ue) {
		t.Fatalf("Dial = %v, want an *UnreachableError", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Dial with a 300ms context gave up after %v", d)
	}
}

// A daemon listening on 127.0.0.1 with mutual TLS: the right certificates
// connect and build; a client that trusts another CA, a client certificate
// from another CA, a server name the certificate does not hold, and plain
// tcp all fail with errors that say which.
func TestDialMutualTLS(t *testing.T) {
	env := testenv.Get(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	good, err := testenv.NewTLSFiles(filepath.Join(dir, "good"), "larder test CA", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	other, err := testenv.NewTLSFiles(filepath.Join(dir, "other"), "another CA", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	hostport, err := testenv.FreeTCPAddr()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.NewBuilder(ctx, remote.ListenTCP(hostport, good.CA, good.ServerCert, good.ServerKey)); err != nil {
		t.Fatal(err)
	}
	addr := "tcp://" + hostport

	b, err := remote.Dial(ctx, addr, remote.WithTLS(good.CA, good.ClientCert, good.ClientKey), remote.WithName("tls"), remote.WithWait(20*time.Second))
	if err != nil {
		t.Fatalf("Dial with the right certificates: %v", err)
	}
	defer b.Close()
	if len(b.Platforms()) == 0 || b.Address() != addr || b.Name() != "tls" {
		t.Errorf("builder over TLS: platforms %v, address %s, name %s", b.Platforms(), b.Address(), b.Name())
	}
	out, res, err := solveTo(ctx, t, b, build.Image(busybox(t, env)).Run("echo over-mtls > /greeting"))
	if err != nil {
		t.Fatalf("solve over mTLS: %v", err)
	}
	if got := testenv.ReadFile(t, out, "greeting"); got != "over-mtls\n" || builderOf(res) != "tls" {
		t.Errorf("solve over mTLS wrote %q on %q", got, builderOf(res))
	}

	for _, tc := range []struct {
		name string
		opts []remote.DialOption
		want string
		as   any
	}{
		{"client trusts another CA", []remote.DialOption{remote.WithTLS(other.CA, good.ClientCert, good.ClientKey)},
			"certificate is not trusted: it is not signed by the CA given to WithTLS (wrong CA?)", new(x509.UnknownAuthorityError)},
		{"client certificate from another CA", []remote.DialOption{remote.WithTLS(good.CA, other.ClientCert, other.ClientKey)},
			"the builder refused the client certificate", nil},
		{"no client certificate", []remote.DialOption{remote.WithTLS(good.CA, "", "")},
			"the builder refused the client certificate", nil},
		{"server name the certificate does not hold", []remote.DialOption{remote.WithTLS(good.CA, good.ClientCert, good.ClientKey), remote.WithServerName("builder.example")},
			"does not hold the server name expected", new(x509.HostnameError)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			b, err := remote.Dial(ctx, addr, append(tc.opts, remote.WithWait(20*time.Second))...)
			if err == nil {
				b.Close()
				t.Fatal("Dial succeeded")
			}
			var te *remote.TLSError
			if !errors.As(err, &te) {
				t.Fatalf("Dial = %T %v, want a *TLSError", err, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if tc.as != nil && !errors.As(err, tc.as) {
				t.Errorf("errors.As(%v, %T) = false", err, tc.as)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Dial took %v to report a TLS failure, want it without waiting out its 20s", d)
			}
			t.Logf("%v", err)
		})
	}

	// Plain tcp to the TLS port: loopback needs no AllowInsecure, but the
	// daemon never answers.
	_, err = remote.Dial(ctx, addr, remote.WithWait(time.Second))
	var ue *remote.UnreachableError
	if !errors.As(err, &ue) {
		t.Errorf("plain tcp to a TLS port: %v, want an *UnreachableError", err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
