package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/larder-build/larder/internal/daemon"
)

// Start runs buildkitd as a child process with its own state directory,
// socket and configuration, waits until it answers, and returns a Builder
// whose Close stops the daemon and waits for it to exit. It reports a
// [*StartError] saying what is missing when it can't start: not root, no
// runc, no buildkitd. Options are checked before the daemon starts.
func Start(ctx context.Context, opts ...StartOption) (*Builder, error) {
	o, err := makeStartOptions(opts)
	dopts, derr := makeDialOptions("remote: StartDialOptions: ", o.dial)
	if err := errors.Join(err, derr); err != nil {
		return nil, err
	}
	if dopts.tls || dopts.insecure {
		return nil, errors.New("remote: StartDialOptions: Start dials the daemon's unix socket: WithTLS and AllowInsecure do not apply (drop them; to reach the daemon over tcp, give ListenTCP, then Dial its address)")
	}
	if dopts.wait == 0 {
		dopts.wait = 60 * time.Second
	}
	if o.stateDir != "" {
		if fi, err := os.Stat(o.stateDir); err == nil && !fi.IsDir() {
			return nil, fmt.Errorf("remote: StateDir(%q): a file, not a directory (give a directory, or a path that does not exist yet)", o.stateDir)
		}
	}
	cfgTOML, err := marshalDaemonConfig(daemonConfig(o))
	if err != nil {
		return nil, &StartError{Reason: "rendering the daemon configuration", Err: err}
	}
	bin, err := daemon.LookPath(o.binary)
	if err != nil {
		return nil, &StartError{Reason: fmt.Sprintf("%s not found in PATH or Larder's cache directory (run remote.Install, or scripts/setup, or pass remote.Binary)", o.binary), Err: err}
	}
	if _, err := exec.LookPath("runc"); err != nil {
		return nil, &StartError{Reason: "runc not found in PATH (apt-get install runc)", Err: err}
	}
	var wrap []string // the command that runs buildkitd: rootlesskit for a user other than root
	if os.Geteuid() != 0 {
		if wrap, err = rootless(); err != nil {
			return nil, err
		}
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
	if err := os.WriteFile(cfgPath, cfgTOML, 0o600); err != nil {
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
	cmd := exec.Command(bin, args...)
	if len(wrap) > 0 {
		cmd = exec.Command(wrap[0], append(append(wrap[1:], bin), args...)...)
	}
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

// rootless returns the command that runs buildkitd for a user other than
// root, rootless: rootlesskit, which maps the user's subordinate ids
// (/etc/subuid, /etc/subgid) into a user namespace where buildkitd is root,
// on the host's network. It reports what is missing.
func rootless() ([]string, error) {
	fix := "run as root, or install rootlesskit and uidmap and give the user subordinate ids in /etc/subuid and /etc/subgid, or dial a running builder"
	rk, err := exec.LookPath("rootlesskit")
	if err != nil {
		return nil, &StartError{Reason: "buildkitd with the runc worker needs root, and rootlesskit is not in PATH to run it rootless (" + fix + ")", Err: err}
	}
	for _, tool := range []string{"newuidmap", "newgidmap"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, &StartError{Reason: tool + " not found in PATH, which rootlesskit needs (apt-get install uidmap)", Err: err}
		}
	}
	return []string{rk, "--net=host", "--copy-up=/etc"}, nil
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
