package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

func resolver(addr string) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
}

func srvTargets(t *testing.T, r *net.Resolver, name string) string {
	t.Helper()
	_, srvs, err := r.LookupSRV(context.Background(), "", "", name)
	if err != nil {
		t.Fatalf("SRV %s: %v", name, err)
	}
	out := map[string]uint16{}
	for _, s := range srvs {
		out[s.Target] = s.Port
	}
	return fmt.Sprint(out)
}

// dnsmasq answers what SetHost and SetSRV say, NXDOMAIN for other names
// of cluster.local; SIGHUP alone re-reads A records but not SRV records,
// which is why SetSRV restarts it.
func TestDNSServesWhatTheTestSets(t *testing.T) {
	ctx := context.Background()
	d, err := StartDNS(ctx, t.TempDir())
	if err != nil {
		Unavailable(t, err)
	}
	defer d.Close()
	r := resolver(d.Addr)
	if err := d.SetHost("a.svc.cluster.local", "127.0.0.5", "::1"); err != nil {
		t.Fatal(err)
	}
	ips, err := r.LookupHost(ctx, "a.svc.cluster.local")
	slices.Sort(ips)
	if err != nil || fmt.Sprint(ips) != "[127.0.0.5 ::1]" {
		t.Errorf("a.svc.cluster.local = %v, %v", ips, err)
	}
	if err := d.SetSRV(ctx, "_x._tcp.s.svc.cluster.local", SRVTarget{"a.svc.cluster.local", 1234}); err != nil {
		t.Fatal(err)
	}
	if got := srvTargets(t, r, "_x._tcp.s.svc.cluster.local"); got != "map[a.svc.cluster.local.:1234]" {
		t.Errorf("SRV = %s", got)
	}
	_, err = r.LookupHost(ctx, "nothing.svc.cluster.local")
	var de *net.DNSError
	if !errors.As(err, &de) || !de.IsNotFound {
		t.Errorf("a name without records: %v, want not found", err)
	}

	// An srv-host line added to the configuration is not read on SIGHUP.
	conf := filepath.Join(d.dir, "dnsmasq.conf")
	f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, "srv-host=_x._tcp.s.svc.cluster.local,b.svc.cluster.local,1235")
	f.Close()
	d.mu.Lock()
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.reads++
	err = d.waitLogLocked("read "+d.hostsFile(), d.reads)
	d.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if got := srvTargets(t, r, "_x._tcp.s.svc.cluster.local"); got != "map[a.svc.cluster.local.:1234]" {
		t.Errorf("after SIGHUP, SRV = %s: dnsmasq now re-reads srv-host, and SetSRV need not restart it", got)
	}
	start := time.Now()
	if err := d.SetSRV(ctx, "_x._tcp.s.svc.cluster.local", SRVTarget{"a.svc.cluster.local", 1234}, SRVTarget{"b.svc.cluster.local", 1235}); err != nil {
		t.Fatal(err)
	}
	t.Logf("restarting dnsmasq took %v", time.Since(start))
	if got := srvTargets(t, r, "_x._tcp.s.svc.cluster.local"); got != "map[a.svc.cluster.local.:1234 b.svc.cluster.local.:1235]" {
		t.Errorf("after SetSRV, SRV = %s", got)
	}

	pid := d.cmd.Process.Pid
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("dnsmasq (pid %d) still runs after Close", pid)
	}
}
