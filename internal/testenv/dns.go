package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DNS is a dnsmasq process (Debian's dnsmasq-base, installed by
// scripts/setup) that answers on 127.0.0.1 with the records a test sets,
// as a cluster's DNS answers for a headless Service: SRV records with
// [DNS.SetSRV] and A and AAAA records with [DNS.SetHost]. It is
// authoritative for cluster.local: a name there that has no records is
// answered NXDOMAIN. Names elsewhere are refused.
//
// dnsmasq re-reads its hosts file on SIGHUP, so SetHost takes effect at
// once; it reads SRV records (--srv-host) only when it starts, and SIGHUP
// does not reload them, so SetSRV restarts it on the same port: for a few
// milliseconds, queries fail.
type DNS struct {
	// Addr is where it answers, over UDP and TCP, such as
	// "127.0.0.1:40053".
	Addr string

	dir string
	bin string

	mu    sync.Mutex
	srv   map[string][]SRVTarget
	hosts map[string][]string
	cmd   *exec.Cmd
	done  chan struct{}
	reads int // times the running dnsmasq read the hosts file
}

// SRVTarget is one SRV record.
type SRVTarget struct {
	// Target is the host name the record points at, such as
	// "buildkitd-0.buildkitd.larder.svc.cluster.local".
	Target string
	// Port is the port the record gives.
	Port int
}

// StartDNS starts dnsmasq on a free port of 127.0.0.1, with its files in
// dir. The caller must Close it. It fails when dnsmasq is not installed.
func StartDNS(ctx context.Context, dir string) (*DNS, error) {
	bin, err := exec.LookPath("dnsmasq")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/dnsmasq"); serr != nil {
			return nil, fmt.Errorf("testenv: no dnsmasq (run scripts/setup, which installs Debian's dnsmasq-base): %w", err)
		}
		bin = "/usr/sbin/dnsmasq"
	}
	d := &DNS{dir: dir, bin: bin, srv: map[string][]SRVTarget{}, hosts: map[string][]string{}}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var lastErr error
	for range 5 {
		port, err := freeUDPAndTCPPort()
		if err != nil {
			return nil, err
		}
		d.Addr = fmt.Sprintf("127.0.0.1:%d", port)
		d.mu.Lock()
		lastErr = d.startLocked(ctx)
		d.mu.Unlock()
		if lastErr == nil {
			return d, nil
		}
	}
	return nil, lastErr
}

// freeUDPAndTCPPort returns a port of 127.0.0.1 that was free for both UDP
// and TCP a moment ago.
func freeUDPAndTCPPort() (int, error) {
	for range 20 {
		u, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		t, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		u.Close()
		if err == nil {
			t.Close()
			return port, nil
		}
	}
	return 0, errors.New("testenv: no port free for both UDP and TCP")
}

// SetSRV makes name's SRV records targets (none: no records), and
// restarts dnsmasq so that it reads them.
func (d *DNS) SetSRV(ctx context.Context, name string, targets ...SRVTarget) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.srv[name] = slices.Clone(targets)
	if err := d.stopLocked(); err != nil {
		return err
	}
	return d.startLocked(ctx)
}

// SetHost makes name's A and AAAA records ips (none: no records), and
// tells dnsmasq to read them (SIGHUP).
func (d *DNS) SetHost(name string, ips ...string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.hosts[name] = slices.Clone(ips)
	if err := d.writeHostsLocked(); err != nil {
		return err
	}
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		return fmt.Errorf("testenv: dnsmasq: %w", err)
	}
	// dnsmasq handles the signal in its main loop: wait until it has
	// read the file (it logs each read).
	d.reads++
	return d.waitLogLocked(fmt.Sprintf("read %s", d.hostsFile()), d.reads)
}

func (d *DNS) hostsFile() string { return filepath.Join(d.dir, "hosts") }

func (d *DNS) writeHostsLocked() error {
	var b strings.Builder
	names := make([]string, 0, len(d.hosts))
	for n := range d.hosts {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		for _, ip := range d.hosts[n] {
			fmt.Fprintf(&b, "%s %s\n", ip, n)
		}
	}
	return os.WriteFile(d.hostsFile(), []byte(b.String()), 0o600)
}

func (d *DNS) startLocked(ctx context.Context) error {
	if err := d.writeHostsLocked(); err != nil {
		return err
	}
	_, port, _ := net.SplitHostPort(d.Addr)
	conf := []string{
		"no-resolv", "no-hosts", "no-poll", "bind-interfaces",
		"listen-address=127.0.0.1", "port=" + port,
		"local=/cluster.local/", "local-ttl=0",
		"addn-hosts=" + d.hostsFile(),
		"log-facility=" + filepath.Join(d.dir, "dnsmasq.log"),
		"pid-file=",
	}
	if os.Geteuid() == 0 {
		conf = append(conf, "user=root") // to read files in the test's directories
	}
	names := make([]string, 0, len(d.srv))
	for n := range d.srv {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		for _, t := range d.srv[n] {
			conf = append(conf, fmt.Sprintf("srv-host=%s,%s,%d", n, t.Target, t.Port))
		}
	}
	confFile := filepath.Join(d.dir, "dnsmasq.conf")
	if err := os.WriteFile(confFile, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	logFile := filepath.Join(d.dir, "dnsmasq.log")
	os.Remove(logFile)
	stderr, err := os.Create(filepath.Join(d.dir, "dnsmasq.stderr"))
	if err != nil {
		return err
	}
	cmd := exec.Command(d.bin, "--keep-in-foreground", "--conf-file="+confFile)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Start(); err != nil {
		stderr.Close()
		return fmt.Errorf("testenv: starting dnsmasq: %w", err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		stderr.Close()
		close(done)
	}()
	d.cmd, d.done = cmd, done
	// It answers once it listens on TCP (it listens on UDP first).
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", d.Addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			d.reads = 1
			return d.waitLogLocked(fmt.Sprintf("read %s", d.hostsFile()), 1)
		}
		select {
		case <-done:
			out, _ := os.ReadFile(filepath.Join(d.dir, "dnsmasq.stderr"))
			return fmt.Errorf("testenv: dnsmasq exited: %s", strings.TrimSpace(string(out)))
		case <-ctx.Done():
			d.stopLocked()
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			d.stopLocked()
			return fmt.Errorf("testenv: dnsmasq does not answer on %s", d.Addr)
		}
	}
}

// waitLogLocked waits until dnsmasq's log holds line n times.
func (d *DNS) waitLogLocked(line string, n int) error {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(filepath.Join(d.dir, "dnsmasq.log"))
		if strings.Count(string(b), line) >= n {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("testenv: dnsmasq did not log %q", line)
}

func (d *DNS) stopLocked() error {
	if d.cmd == nil {
		return nil
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(5 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
	}
	d.cmd = nil
	return nil
}

// Close stops dnsmasq and waits for it to exit.
func (d *DNS) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stopLocked()
}
