package remote_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/client"

	"github.com/larder-build/larder/remote"
)

// badInput is a mistake a user can make, what the call that gets it
// returns, and what its error must say: the value, and what to pass
// instead.
type badInput struct {
	name string
	// call makes the mistake; start is a Binary option that records
	// whether the daemon ran, for calls to Start.
	call func(t *testing.T, start remote.StartOption) error
	as   any      // the error's type, for errors.As; nil for an option error
	want []string // the value, and what to do
}

// secret is the password of the addresses that hold one: no error may
// show it.
const secret = "s3cret-pw"

func dialErr(addr string, opts ...remote.DialOption) func(*testing.T, remote.StartOption) error {
	return func(t *testing.T, _ remote.StartOption) error {
		ctx := context.Background()
		b, err := remote.Dial(ctx, addr, opts...)
		if err == nil {
			b.Close()
		}
		return err
	}
}

func dialOptErr(opts ...remote.DialOption) func(*testing.T, remote.StartOption) error {
	return dialErr("unix:///run/larder-nonexistent/buildkitd.sock", opts...)
}

func startErr(opts ...remote.StartOption) func(*testing.T, remote.StartOption) error {
	return func(t *testing.T, bin remote.StartOption) error {
		ctx := context.Background()
		b, err := remote.Start(ctx, append([]remote.StartOption{bin}, opts...)...)
		if err == nil {
			b.Close()
		}
		return err
	}
}

func fleetErr(opts ...remote.FleetOption) func(*testing.T, remote.StartOption) error {
	return func(t *testing.T, _ remote.StartOption) error {
		ctx := context.Background()
		f, err := remote.NewFleet(ctx, opts...)
		if err == nil {
			f.Close()
		}
		return err
	}
}

func routeErr(p string) func(*testing.T, remote.StartOption) error {
	return func(t *testing.T, _ remote.StartOption) error {
		ctx := context.Background()
		f, err := remote.NewFleet(ctx, remote.Member("unix:///run/larder-nonexistent/a.sock", remote.Platforms("linux/amd64")), remote.Lazy())
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = f.Route(p, "key")
		return err
	}
}

// idleClient returns a BuildKit client that has not connected to
// anything: client.New does not dial until a call is made.
func idleClient(t *testing.T) *client.Client {
	c, err := client.New(context.Background(), "unix:///run/larder-nonexistent/buildkitd.sock")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Every mistake is refused before anything is contacted or started, at
// once, with an error that names the value and says what to pass instead.
func TestBadInputIsRefusedFirst(t *testing.T) {
	dir := t.TempDir()
	ran := filepath.Join(dir, "ran")
	script := filepath.Join(dir, "buildkitd")
	if err := os.WriteFile(script, []byte("#!/bin/sh\ntouch "+ran+"\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	aFile := filepath.Join(dir, "a-file")
	if err := os.WriteFile(aFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	missingDefault := "unix://" + filepath.Join(dir, "no-daemon", "buildkitd.sock")
	longSocket := "unix:///" + strings.Repeat("d", 120) + ".sock"

	var (
		addrErr     *remote.AddressError
		insecureErr *remote.InsecureError
		credErr     *remote.CredentialsError
		unreachErr  *remote.UnreachableError
		noBuilder   *remote.NoBuilderError
	)
	cases := []badInput{
		// Addresses.
		{"port out of range", dialErr("tcp://127.0.0.1:99999"), &addrErr, []string{`"tcp://127.0.0.1:99999"`, "port 99999 is out of range", "from 1 to 65535"}},
		{"port not a number", dialErr("tcp://127.0.0.1:abc"), &addrErr, []string{`"tcp://127.0.0.1:abc"`, `port "abc" is not a number`, "from 1 to 65535"}},
		{"port 0", dialErr("tcp://127.0.0.1:0"), &addrErr, []string{"port 0 is out of range", "from 1 to 65535"}},
		{"port with a sign", dialErr("tcp://127.0.0.1:+80"), &addrErr, []string{`"+80"`, "from 1 to 65535"}},
		{"tcp without a port", dialErr("tcp://127.0.0.1"), &addrErr, []string{`"tcp://127.0.0.1"`, "no port", "such as 127.0.0.1:1234"}},
		{"tcp without a host", dialErr("tcp://:1234"), &addrErr, []string{`"tcp://:1234"`, "no host", "host name or IP address"}},
		{"IPv6 without brackets", dialErr("tcp://::1:1234"), &addrErr, []string{`"tcp://::1:1234"`, "brackets", "[::1]:1234"}},
		{"tcp with a path", dialErr("tcp://127.0.0.1:1234/buildkit"), &addrErr, []string{`"/buildkit"`, "tcp://host:port and nothing more"}},
		{"tcp with a query", dialErr("tcp://127.0.0.1:1234?tls=1"), &addrErr, []string{`"tcp://127.0.0.1:1234?tls=1"`, "tcp://host:port and nothing more"}},
		{"tcp with a password", dialErr("tcp://user:" + secret + "@127.0.0.1:1234"), &addrErr, []string{`"tcp://user:xxxxx@127.0.0.1:1234"`, "remove it", "remote.WithTLS"}},
		{"unix without a path", dialErr("unix://"), &addrErr, []string{`"unix://"`, "no socket path", "unix:///path/to/buildkitd.sock"}},
		{"unix with two slashes", dialErr("unix://run/buildkit/buildkitd.sock"), &addrErr, []string{`"run"`, "three slashes", "unix:///run/buildkit/buildkitd.sock"}},
		{"unix relative", dialErr("unix:buildkitd.sock"), &addrErr, []string{`"buildkitd.sock"`, "absolute path"}},
		{"unix names a directory", dialErr("unix:///run/buildkit/"), &addrErr, []string{`"/run/buildkit/"`, "name the socket file"}},
		{"unix path too long", dialErr(longSocket), &addrErr, []string{"126 bytes long", "at most 107", "shorter path"}},
		{"unix with a password", dialErr("unix://me:" + secret + "@/run/buildkit/buildkitd.sock"), &addrErr, []string{"me:xxxxx@", "remove"}},
		{"socket path without scheme", dialErr("/run/buildkit/buildkitd.sock"), &addrErr, []string{`"/run/buildkit/buildkitd.sock"`, `"unix:///run/buildkit/buildkitd.sock"`}},
		{"host:port without scheme", dialErr("localhost:1234"), &addrErr, []string{`"localhost:1234"`, `"tcp://localhost:1234"`}},
		{"unknown scheme", dialErr("ftp://builder:21"), &addrErr, []string{`"ftp"`, "use unix, tcp"}},
		{"helper not registered", dialErr("nerdctl-container://buildkitd"), &addrErr, []string{`"nerdctl-container://buildkitd"`, `import _ "github.com/larder-build/larder/remote/connhelpers"`}},
		{"spaces around", dialErr(" tcp://127.0.0.1:1234 "), &addrErr, []string{`" tcp://127.0.0.1:1234 "`, `remove them: "tcp://127.0.0.1:1234"`}},
		{"plain tcp to another host", dialErr("tcp://10.0.0.1:1234"), &insecureErr, []string{`"tcp://10.0.0.1:1234"`, "remote.WithTLS(ca, cert, key)", "remote.AllowInsecure()"}},
		{"TLS on a unix socket", dialErr("unix:///run/buildkit/buildkitd.sock", remote.WithTLS("", "", "")), &addrErr, []string{`"unix:///run/buildkit/buildkitd.sock"`, "tcp addresses only", "drop WithTLS"}},
		{"socket directory missing", dialErr("unix://" + filepath.Join(dir, "missing-dir", "buildkitd.sock")), &unreachErr, []string{filepath.Join(dir, "missing-dir"), "check the path"}},
		{"no builder at the default address", func(t *testing.T, _ remote.StartOption) error {
			ctx := context.Background()
			remote.SetDefaultAddress(t, missingDefault)
			t.Setenv("BUILDKIT_HOST", "")
			_, err := remote.Dial(ctx, "")
			return err
		}, &noBuilder, []string{missingDefault, "remote.Auto(ctx)", "remote.Start(ctx)", "rootless", `"docker-container://NAME"`, "$BUILDKIT_HOST"}},
		{"bad $BUILDKIT_HOST", func(t *testing.T, _ remote.StartOption) error {
			ctx := context.Background()
			t.Setenv("BUILDKIT_HOST", "tcp://127.0.0.1:65536")
			_, err := remote.Dial(ctx, "")
			return err
		}, &addrErr, []string{`"tcp://127.0.0.1:65536"`, "from $BUILDKIT_HOST", "from 1 to 65535"}},
		{"insecure $BUILDKIT_HOST", func(t *testing.T, _ remote.StartOption) error {
			ctx := context.Background()
			t.Setenv("BUILDKIT_HOST", "tcp://10.0.0.3:1234")
			_, err := remote.Dial(ctx, "")
			return err
		}, &insecureErr, []string{`"tcp://10.0.0.3:1234" (from $BUILDKIT_HOST)`, "remote.AllowInsecure()"}},

		// Dial options.
		{"WithName empty", dialOptErr(remote.WithName(" ")), nil, []string{`WithName(" ")`, `such as "arm-1"`}},
		{"WithWait zero", dialOptErr(remote.WithWait(0)), nil, []string{"WithWait(0s)", "remote.WithWait(time.Minute)"}},
		{"WithWait negative", dialOptErr(remote.WithWait(-time.Second)), nil, []string{"WithWait(-1s)", "must be positive"}},
		{"WithTLS without the key", dialOptErr(remote.WithTLS("ca.pem", "client.pem", "")), nil, []string{`"client.pem"`, "give both the client certificate and its key"}},
		{"WithTLS missing CA file", dialErr("tcp://10.0.0.1:1234", remote.WithTLS("/nonexistent/ca.pem", "", "")), &credErr, []string{"/nonexistent/ca.pem", "no such file", "the CA that signed the builder's certificate"}},
		{"WithServerName empty", dialOptErr(remote.WithServerName("")), nil, []string{`WithServerName("")`, `"buildkitd.internal"`}},
		{"WithServerName without TLS", dialOptErr(remote.WithServerName("builder.example")), nil, []string{`WithServerName("builder.example")`, "add remote.WithTLS"}},
		{"WithKeepalive too short", dialOptErr(remote.WithKeepalive(5*time.Second, time.Second)), nil, []string{"WithKeepalive(5s, 1s)", "at least 10s", "remote.WithKeepalive(30*time.Second, 20*time.Second)"}},
		{"WithKeepalive no timeout", dialOptErr(remote.WithKeepalive(time.Minute, 0)), nil, []string{"WithKeepalive(1m0s, 0s)", "timeout must be positive"}},
		{"Platforms none", dialOptErr(remote.Platforms()), nil, []string{"Platforms()", `remote.Platforms("linux/arm64")`}},
		{"Platforms malformed", dialOptErr(remote.Platforms("linux/amd64/v2/x")), nil, []string{`Platforms("linux/amd64/v2/x")`, `want os/arch[/variant], such as linux/arm64`}},
		{"Platforms unknown architecture", dialOptErr(remote.Platforms("linux/amd46")), nil, []string{`Platforms("linux/amd46")`, `unknown architecture "amd46"`, "amd64, arm64"}},
		{"Platforms unknown operating system", dialOptErr(remote.Platforms("lnux/amd64")), nil, []string{`Platforms("lnux/amd64")`, `unknown operating system "lnux"`, `want os/arch[/variant], such as linux/arm64`}},
		{"Platforms empty string", dialOptErr(remote.Platforms("")), nil, []string{`Platforms("")`, "empty platform", "os/arch"}},
		{"Platforms in one string", dialOptErr(remote.Platforms("linux/amd64,linux/arm64")), nil, []string{`Platforms("linux/amd64,linux/arm64")`, `Platforms("linux/amd64", "linux/arm64")`}},
		{"MaxConcurrency zero", dialOptErr(remote.MaxConcurrency(0)), nil, []string{"MaxConcurrency(0)", "such as 4"}},

		// Start options: the script given as Binary must not run.
		{"MaxStorage not a size", startErr(remote.MaxStorage("lots")), nil, []string{`MaxStorage("lots")`, "not a size buildkitd reads", `"20GB"`, `"10%"`}},
		{"MaxStorage empty", startErr(remote.MaxStorage("")), nil, []string{`MaxStorage("")`, `"20GB"`, "leave the option out"}},
		{"MaxStorage over 100%", startErr(remote.MaxStorage("150%")), nil, []string{`MaxStorage("150%")`, "from 1% to 100%"}},
		{"MaxStorage zero", startErr(remote.MaxStorage("0")), nil, []string{`MaxStorage("0")`, "under 1MB", `"20GB"`}},
		{"MaxStorage without a unit", startErr(remote.MaxStorage("20")), nil, []string{`MaxStorage("20")`, "20 bytes", "with a unit"}},
		{"MaxStorage quoted", startErr(remote.MaxStorage(`"20GB"`)), nil, []string{`MaxStorage("\"20GB\"")`, `remove them: "20GB"`}},
		{"Binary empty", startErr(remote.Binary("")), nil, []string{`Binary("")`, "/usr/local/bin/buildkitd"}},
		{"StateDir relative", startErr(remote.StateDir("state")), nil, []string{`StateDir("state")`, "absolute path", "filepath.Abs"}},
		{"StateDir empty", startErr(remote.StateDir("")), nil, []string{`StateDir("")`, "/var/lib/larder/buildkitd"}},
		{"StateDir a file", startErr(remote.StateDir(aFile)), nil, []string{aFile, "not a directory", "give a directory"}},
		{"InsecureRegistry empty", startErr(remote.InsecureRegistry("")), nil, []string{`InsecureRegistry("")`, `"127.0.0.1:5000"`}},
		{"InsecureRegistry with a scheme", startErr(remote.InsecureRegistry("http://127.0.0.1:5000")), nil, []string{`InsecureRegistry("http://127.0.0.1:5000")`, `InsecureRegistry("127.0.0.1:5000")`}},
		{"InsecureRegistry with a path", startErr(remote.InsecureRegistry("127.0.0.1:5000/team")), nil, []string{`InsecureRegistry("127.0.0.1:5000/team")`, `InsecureRegistry("127.0.0.1:5000")`}},
		{"InsecureRegistry Docker Hub namespace", startErr(remote.InsecureRegistry("myregistry")), nil, []string{`InsecureRegistry("myregistry")`, "Docker Hub", `"myregistry:5000"`}},
		{"InsecureRegistry port out of range", startErr(remote.InsecureRegistry("127.0.0.1:99999")), nil, []string{`InsecureRegistry("127.0.0.1:99999")`, "from 1 to 65535"}},
		{"WorkerPlatforms none", startErr(remote.WorkerPlatforms()), nil, []string{"WorkerPlatforms()", `remote.WorkerPlatforms("linux/arm64")`}},
		{"WorkerPlatforms malformed", startErr(remote.WorkerPlatforms("linux/nope/x/y")), nil, []string{`WorkerPlatforms("linux/nope/x/y")`, "os/arch"}},
		{"WorkerPlatforms not linux", startErr(remote.WorkerPlatforms("windows/amd64")), nil, []string{`WorkerPlatforms("windows/amd64")`, "linux platforms only", `"linux/amd64"`}},
		{"DaemonLog nil", startErr(remote.DaemonLog(nil)), nil, []string{"DaemonLog(nil)", "os.Stderr"}},
		{"ListenTCP without a port", startErr(remote.ListenTCP("127.0.0.1", "", "c.pem", "k.pem")), nil, []string{`ListenTCP("127.0.0.1")`, "want host:port", "127.0.0.1:1234"}},
		{"ListenTCP port out of range", startErr(remote.ListenTCP("127.0.0.1:70000", "", "c.pem", "k.pem")), nil, []string{`ListenTCP("127.0.0.1:70000")`, "from 1 to 65535"}},
		{"ListenTCP with a scheme", startErr(remote.ListenTCP("tcp://127.0.0.1:1234", "", "c.pem", "k.pem")), nil, []string{`ListenTCP("tcp://127.0.0.1:1234")`, `ListenTCP("127.0.0.1:1234", ...)`}},
		{"ListenTCP without a certificate", startErr(remote.ListenTCP("127.0.0.1:1234", "", "", "")), nil, []string{`ListenTCP("127.0.0.1:1234"`, "certificate and its key", `"server.pem"`}},
		{"ListenTCP missing file", startErr(remote.ListenTCP("127.0.0.1:1234", "", "/nonexistent/c.pem", "/nonexistent/k.pem")), nil, []string{"/nonexistent/c.pem", "no such file", "existing PEM file"}},
		{"ListenTCP twice", startErr(remote.ListenTCP("127.0.0.1:1234", "", aFile, aFile), remote.ListenTCP("127.0.0.1:1235", "", aFile, aFile)), nil, []string{`ListenTCP("127.0.0.1:1235")`, "give ListenTCP once"}},
		{"StartDialOptions with TLS", startErr(remote.StartDialOptions(remote.WithTLS("", "", ""))), nil, []string{"WithTLS and AllowInsecure do not apply", "ListenTCP"}},
		{"StartDialOptions bad name", startErr(remote.StartDialOptions(remote.WithName(""))), nil, []string{"StartDialOptions", `WithName("")`, `"arm-1"`}},

		// Fleets.
		{"fleet without members", fleetErr(), nil, []string{"no member", "remote.Member"}},
		{"Member empty address", fleetErr(remote.Member("")), nil, []string{`Member("")`, `"tcp://arm-1:1234"`}},
		{"Member port out of range", fleetErr(remote.Member("tcp://127.0.0.1:99999")), &addrErr, []string{`"tcp://127.0.0.1:99999"`, "from 1 to 65535"}},
		{"Member bad name", fleetErr(remote.Member("unix:///a.sock", remote.WithName(" "))), nil, []string{`Member("unix:///a.sock")`, `WithName(" ")`, `"arm-1"`}},
		{"Member bad platform", fleetErr(remote.Member("unix:///a.sock", remote.Platforms("linux/nope/x/y"))), nil, []string{`Member("unix:///a.sock")`, `Platforms("linux/nope/x/y")`, "os/arch"}},
		{"Member with a password", fleetErr(remote.Member("tcp://me:"+secret+"@127.0.0.1:1234", remote.WithName(""))), nil, []string{`Member("tcp://me:xxxxx@127.0.0.1:1234")`}},
		{"Member plain tcp", fleetErr(remote.Member("tcp://10.0.0.1:1234")), &insecureErr, []string{`"tcp://10.0.0.1:1234"`, "remote.AllowInsecure()"}},
		{"members with one name", fleetErr(remote.Member("unix:///a.sock", remote.WithName("x")), remote.Member("unix:///b.sock", remote.WithName("x"))), nil, []string{`"x"`, "give each its own WithName"}},
		{"ProbeTimeout zero", fleetErr(remote.Member("unix:///a.sock"), remote.ProbeTimeout(0)), nil, []string{"ProbeTimeout(0s)", "remote.ProbeTimeout(5*time.Second)"}},
		{"RetryBackoff reversed", fleetErr(remote.Member("unix:///a.sock"), remote.RetryBackoff(2*time.Second, time.Second)), nil, []string{"RetryBackoff(2s, 1s)", "0 < min <= max", "remote.RetryBackoff(time.Second, time.Minute)"}},
		{"FromBuilder nil", fleetErr(remote.FromBuilder(nil)), nil, []string{"FromBuilder(nil)", "remote.Dial or remote.Start"}},
		{"RingPoints zero", fleetErr(remote.Member("unix:///a.sock"), remote.RingPoints(0)), nil, []string{"RingPoints(0)", "want 1 to 1000", "such as 160"}},
		{"FromClient nil", fleetErr(remote.FromClient(nil)), nil, []string{"FromClient(nil)", "remote.WithName"}},
		{"FromClient without a name", fleetErr(remote.FromClient(idleClient(t))), nil, []string{"FromClient: no name", `remote.WithName("depot-arm64")`}},
		{"FromClient with TLS", fleetErr(remote.FromClient(idleClient(t), remote.WithName("depot"), remote.WithTLS("", "", ""))), nil, []string{"FromClient(depot)", "do not apply to a client that is already connected"}},
		{"FromClient bad platform", fleetErr(remote.FromClient(idleClient(t), remote.WithName("depot"), remote.Platforms("linux/amd46"))), nil, []string{"FromClient: ", `Platforms("linux/amd46")`, "amd64, arm64"}},

		// Sources.
		{"Discover nil", fleetErr(remote.Discover(nil)), nil, []string{"Discover(nil)", `remote.SRV("_buildkitd._tcp.buildkitd.ci.svc.cluster.local")`}},
		{"Discover with a name", fleetErr(remote.Discover(remote.SRV(svcSRV), remote.WithName("x"))), nil, []string{"Discover(DNS SRV " + svcSRV + ")", `WithName("x") does not apply`, "drop WithName"}},
		{"Discover TLS without the key", fleetErr(remote.Discover(remote.SRV(svcSRV), remote.WithTLS("ca.pem", "client.pem", ""))), nil, []string{"Discover(DNS SRV " + svcSRV + ")", "give both the client certificate and its key"}},
		{"Discover missing CA file", fleetErr(remote.Discover(remote.SRV(svcSRV), remote.WithTLS("/nonexistent/ca.pem", "", ""))), &credErr, []string{"source DNS SRV " + svcSRV, "/nonexistent/ca.pem", "no such file"}},
		{"SRV of a host name", fleetErr(remote.Discover(remote.SRV(svcHost))), nil, []string{`SRV("` + svcHost + `")`, "_<port name>._tcp.<service>", `remote.AddressRecords("` + svcHost + `", 1234)`}},
		{"SRV empty", fleetErr(remote.Discover(remote.SRV(""))), nil, []string{`SRV("")`, "empty name", "buildkitd.ci.svc.cluster.local"}},
		{"SRV with a scheme", fleetErr(remote.Discover(remote.SRV("dns://" + svcSRV))), nil, []string{`SRV("dns://` + svcSRV + `")`, "no scheme"}},
		{"SRV with a port", fleetErr(remote.Discover(remote.SRV(svcSRV + ":53"))), nil, []string{`SRV("` + svcSRV + `:53")`, "without a port"}},
		{"SRV empty label", fleetErr(remote.Discover(remote.SRV("_buildkitd._tcp..svc"))), nil, []string{`SRV("_buildkitd._tcp..svc")`, `label ""`}},
		{"AddressRecords port zero", fleetErr(remote.Discover(remote.AddressRecords(svcHost, 0))), nil, []string{`AddressRecords("` + svcHost + `", 0)`, "from 1 to 65535", "such as 1234"}},
		{"AddressRecords of an IP", fleetErr(remote.Discover(remote.AddressRecords("10.0.0.5", 1234))), nil, []string{`AddressRecords("10.0.0.5", 1234)`, "not looked up", `remote.Member("tcp://10.0.0.5:1234")`}},
		{"AddressRecords with a port", fleetErr(remote.Discover(remote.AddressRecords("buildkitd:1234", 1234))), nil, []string{`AddressRecords("buildkitd:1234", 1234)`, "without a port", "give the port to AddressRecords"}},
		{"Resolver a name", fleetErr(remote.Discover(remote.SRV(svcSRV, remote.Resolver("kube-dns")))), nil, []string{`Resolver("kube-dns")`, `"10.96.0.10"`, `"127.0.0.1:5353"`}},
		{"Resolver port zero", fleetErr(remote.Discover(remote.SRV(svcSRV, remote.Resolver("127.0.0.1:0")))), nil, []string{`Resolver("127.0.0.1:0")`, "with a port unless it is 53"}},
		{"Interval too short", fleetErr(remote.Discover(remote.SRV(svcSRV, remote.Interval(10*time.Millisecond)))), nil, []string{`SRV("` + svcSRV + `"): Interval(10ms)`, "at least 100ms", "remote.Interval(10*time.Second)"}},

		// Credentials as PEM.
		{"WithTLSPEM without the key", dialOptErr(remote.WithTLSPEM(nil, []byte("cert"), nil)), nil, []string{"WithTLSPEM(ca, cert (4 bytes), key (0 bytes))", "give both the client certificate and its key"}},
		{"WithTLSPEM and WithTLS", dialOptErr(remote.WithTLS("", "", ""), remote.WithTLSPEM(nil, nil, nil)), nil, []string{"WithTLSPEM: WithTLS was given too", "give the credentials once"}},
		{"WithTLSPEM CA not PEM", dialErr("tcp://10.0.0.1:1234", remote.WithTLSPEM([]byte("not a certificate"), nil, nil)), &credErr, []string{"WithTLSPEM: CA certificate", "no PEM certificate in it", "or nil for the system's roots"}},
		{"WithTLSPEM key not PEM", dialErr("tcp://10.0.0.1:1234", remote.WithTLSPEM(nil, []byte("cert"), []byte("key"))), &credErr, []string{"WithTLSPEM: client certificate", "made as a pair"}},

		{"Route malformed platform", routeErr("linux/nope/x/y"), nil, []string{`Route("linux/nope/x/y")`, "os/arch"}},
		{"Route empty platform", routeErr(""), nil, []string{`Route("")`, "empty platform"}},
	}
	if len(cases) < 40 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			err := tc.call(t, remote.Binary(script))
			d := time.Since(start)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			t.Log(msg)
			if d > 500*time.Millisecond {
				t.Errorf("took %v to refuse, want it at once", d)
			}
			if _, err := os.Stat(ran); !errors.Is(err, fs.ErrNotExist) {
				os.Remove(ran)
				t.Errorf("the daemon ran")
			}
			if tc.as != nil && !errors.As(err, tc.as) {
				t.Errorf("%T %v, want a %T", err, err, tc.as)
			}
			var se *remote.StartError
			if errors.As(err, &se) {
				t.Errorf("a mistake in the options is not a *StartError: %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("the error does not say %q", w)
				}
			}
			if strings.Contains(msg, secret) || strings.Contains(fmt.Sprintf("%+v", err), secret) {
				t.Errorf("the error shows the password")
			}
			if strings.Count(msg, "remote: ") != strings.Count(msg, "\n")+1 {
				t.Errorf("the error says \"remote: \" more than once a line")
			}
		})
	}
}
