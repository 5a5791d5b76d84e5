package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/platforms"
)

// StartOption configures [Start].
type StartOption func(*startOptions) error

type startOptions struct {
	binary     string
	stateDir   string
	insecure   []string
	platforms  []string
	logTo      io.Writer
	maxStorage string
	dial       []DialOption
	tcp        *tcpListen
}

type tcpListen struct {
	addr, ca, cert, key string
}

// Binary sets the buildkitd executable Start runs. The default is
// "buildkitd" looked up in PATH.
func Binary(path string) StartOption {
	return func(o *startOptions) error {
		if path == "" {
			return errors.New("remote: Binary: empty path")
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
		if !filepath.IsAbs(dir) {
			return fmt.Errorf("remote: StateDir(%q): must be an absolute path", dir)
		}
		o.stateDir = dir
		return nil
	}
}

// InsecureRegistry lets the daemon reach the registry at host (such as
// "127.0.0.1:5000") over plain HTTP. The default is HTTPS for every registry.
func InsecureRegistry(host string) StartOption {
	return func(o *startOptions) error {
		if host == "" || strings.Contains(host, "/") {
			return fmt.Errorf("remote: InsecureRegistry(%q): want host or host:port", host)
		}
		o.insecure = append(o.insecure, host)
		return nil
	}
}

// WorkerPlatforms sets the platforms of the daemon's worker (buildkitd's
// --oci-worker-platform), such as "linux/arm64" for a member that should
// take arm64 builds; the first is the worker's default platform. The daemon
// still lists every platform the host can emulate after these, so a fleet
// should declare its members' platforms. The default is the host's platform
// first, then the emulated ones.
func WorkerPlatforms(ps ...string) StartOption {
	return func(o *startOptions) error {
		for _, p := range ps {
			if _, err := platforms.Parse(p); err != nil {
				return fmt.Errorf("remote: WorkerPlatforms(%q): %v", p, err)
			}
		}
		o.platforms = append(o.platforms, ps...)
		return nil
	}
}

// MaxStorage sets how much disk the daemon's cache may use before garbage
// collection, as buildkitd reads it ("20GB", "10%"). The default is 20GB.
// Larder's policy keeps cache mounts under the same bound as everything
// else, instead of BuildKit's default that evicts cache mounts first.
func MaxStorage(s string) StartOption {
	return func(o *startOptions) error {
		if s == "" {
			return errors.New("remote: MaxStorage: empty size")
		}
		o.maxStorage = s
		return nil
	}
}

// DaemonLog copies everything the daemon writes to w. The default keeps only
// the last lines, for the error when the daemon fails to start.
func DaemonLog(w io.Writer) StartOption {
	return func(o *startOptions) error {
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
			return fmt.Errorf("remote: ListenTCP(%q): the daemon already listens on %q (one tcp address only)", addr, o.tcp.addr)
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host == "" || port == "" {
			return fmt.Errorf("remote: ListenTCP(%q): want host:port", addr)
		}
		if certFile == "" || keyFile == "" {
			return fmt.Errorf("remote: ListenTCP(%q): the daemon needs a certificate and its key", addr)
		}
		for _, f := range []string{caFile, certFile, keyFile} {
			if f == "" {
				continue
			}
			if _, err := os.Stat(f); err != nil {
				return fmt.Errorf("remote: ListenTCP(%q): %w", addr, err)
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

// Start runs buildkitd as a child process with its own state directory,
// socket and configuration, waits until it answers, and returns a Builder
// whose Close stops the daemon and waits for it to exit. It reports a
// [*StartError] saying what is missing when it can't start: not root, no
// runc, no buildkitd. Options are checked before the daemon starts.
func Start(ctx context.Context, opts ...StartOption) (*Builder, error) {
	o := startOptions{binary: "buildkitd", maxStorage: "20GB"}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	dopts, err := makeDialOptions(o.dial)
	if err != nil {
		return nil, err
	}
	if dopts.tls || dopts.insecure {
		return nil, errors.New("remote: Start dials the daemon's unix socket: WithTLS and AllowInsecure do not apply (use ListenTCP, then Dial)")
	}
	if dopts.wait == 0 {
		dopts.wait = 60 * time.Second
	}
	if os.Geteuid() != 0 {
		return nil, &StartError{Reason: "buildkitd with the runc worker needs root (run as root, or dial a running builder with Dial)"}
	}
	bin, err := exec.LookPath(o.binary)
	if err != nil {
		return nil, &StartError{Reason: fmt.Sprintf("%s not found (run scripts/setup, or pass remote.Binary)", o.binary), Err: err}
	}
	if _, err := exec.LookPath("runc"); err != nil {
		return nil, &StartError{Reason: "runc not found in PATH (apt-get install runc)", Err: err}
	}

	removeState := false
	if o.stateDir == "" {
		dir, err := os.MkdirTemp("", "larder-buildkitd-")
		if err != nil {
			return nil, &StartError{Reason: "making a state directory", Err: err}
		}
		o.stateDir = dir
		removeState = true
	}
	if err := os.MkdirAll(o.stateDir, 0o700); err != nil {
		return nil, &StartError{Reason: "making the state directory", Err: err}
	}
	// Unix socket paths are limited to 108 bytes; keep the socket short.
	sockDir, err := os.MkdirTemp("", "lbk")
	if err != nil {
		return nil, &StartError{Reason: "making a socket directory", Err: err}
	}
	sock := filepath.Join(sockDir, "buildkitd.sock")
	cfgPath := filepath.Join(o.stateDir, "buildkitd.toml")
	if err := os.WriteFile(cfgPath, []byte(daemonConfig(o)), 0o600); err != nil {
		return nil, &StartError{Reason: "writing the daemon configuration", Err: err}
	}
	root := filepath.Join(o.stateDir, "root")

	addr := "unix://" + sock
	// buildkitd's trace collector listens on /run/buildkit/otel-grpc.sock
	// unless told otherwise, whatever --root and --addr say; two daemons
	// starting at once race for it and one exits ("address already in use").
	otelSock := filepath.Join(sockDir, "otel.sock")
	args := []string{"--root", root, "--addr", addr, "--config", cfgPath, "--otel-socket-path", otelSock}
	if o.tcp != nil {
		args = append(args, "--addr", "tcp://"+o.tcp.addr, "--tlscert", o.tcp.cert, "--tlskey", o.tcp.key)
		if o.tcp.ca != "" {
			args = append(args, "--tlscacert", o.tcp.ca)
		}
	}
	for _, p := range o.platforms {
		args = append(args, "--oci-worker-platform", p)
	}
	cmd := exec.Command(bin, args...)
	logBuf := &tailBuffer{max: 64 << 10}
	var out io.Writer = logBuf
	if o.logTo != nil {
		out = io.MultiWriter(logBuf, o.logTo)
	}
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, so stopping it reaches runc children too, and
	// killed with the parent if the parent dies first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, &StartError{Reason: "running " + bin, Err: err}
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()

	stop := func() error {
		select {
		case <-exited:
		default:
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(15 * time.Second):
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-exited
			}
		}
		// Anything left in the group (a runc shim of a step that was running).
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		// A daemon that died without cleaning up leaves its build
		// containers running (runc puts them in their own session) and
		// their filesystems mounted under the state directory.
		cleanAfterDaemon(root)
		var errs []error
		errs = append(errs, os.RemoveAll(sockDir))
		if removeState {
			errs = append(errs, os.RemoveAll(o.stateDir))
		}
		return errors.Join(errs...)
	}

	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-exited:
			cancel()
		case <-dctx.Done():
		}
	}()
	b, err := dial(dctx, addr, dopts)
	if err != nil {
		stop()
		select {
		case <-exited:
			return nil, &StartError{Reason: "buildkitd exited during start", Err: waitErr, Log: logBuf.Tail(20)}
		default:
		}
		return nil, &StartError{Reason: "buildkitd did not answer", Err: err, Log: logBuf.Tail(20)}
	}
	b.stop = stop
	b.pid = cmd.Process.Pid
	return b, nil
}

// cleanAfterDaemon removes the build containers and mounts a daemon with
// state directory root left behind: each container is named after its
// directory under the executor's root, and runc keeps them in its default
// state directory.
func cleanAfterDaemon(root string) {
	if runc, err := exec.LookPath("runc"); err == nil {
		ids, _ := filepath.Glob(filepath.Join(root, "*", "executor", "*"))
		for _, dir := range ids {
			if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
				_ = exec.Command(runc, "delete", "--force", filepath.Base(dir)).Run()
			}
		}
	}
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(info), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if strings.HasPrefix(mp, root+"/") {
			points = append(points, mp)
		}
	}
	// Deepest first.
	slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
	for _, mp := range points {
		_ = syscall.Unmount(mp, syscall.MNT_DETACH)
	}
}

// unescapeMount undoes the octal escapes of /proc/self/mountinfo ("\040"
// for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, "\\") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// daemonConfig renders buildkitd's TOML configuration.
func daemonConfig(o startOptions) string {
	var b strings.Builder
	b.WriteString("[worker.oci]\n  enabled = true\n  gc = true\n")
	// One policy over every record: cache mounts are evicted by the same
	// rule as layers, not first.
	fmt.Fprintf(&b, "  [[worker.oci.gcpolicy]]\n    all = true\n    maxUsedSpace = %q\n", o.maxStorage)
	b.WriteString("[worker.containerd]\n  enabled = false\n")
	hosts := slices.Clone(o.insecure)
	slices.Sort(hosts)
	for _, h := range slices.Compact(hosts) {
		fmt.Fprintf(&b, "[registry.%q]\n  http = true\n  insecure = true\n", h)
	}
	return b.String()
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

// Tail returns the last n lines written, leaving out Go stack frames (a
// function's name, then its file and line indented by a tab), which
// buildkitd prints after the message of a fatal error.
func (t *tailBuffer) Tail(n int) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	all := bytes.Split(bytes.TrimRight(t.buf, "\n"), []byte("\n"))
	var lines [][]byte
	for i, l := range all {
		frame := bytes.HasPrefix(l, []byte("\t")) ||
			i+1 < len(all) && bytes.HasPrefix(all[i+1], []byte("\t")) && !bytes.ContainsAny(l, " \t")
		if !frame {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
