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

// StateDir sets the directory that holds the daemon's state (its --root),
// its socket and its configuration. A state dir keeps cache mounts and layer
// cache between runs. The default is a new temporary directory removed on
// Close.
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
// runc, no buildkitd.
func Start(ctx context.Context, opts ...StartOption) (*Builder, error) {
	o := startOptions{binary: "buildkitd", maxStorage: "20GB"}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
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
	args := []string{"--root", root, "--addr", addr, "--config", cfgPath}
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
	dopts := dialOptions{name: addr, wait: 60 * time.Second}
	for _, opt := range o.dial {
		if err := opt(&dopts); err != nil {
			stop()
			return nil, err
		}
	}
	b, err := connect(dctx, addr, dopts)
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
	return b, nil
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

// Tail returns the last n lines written.
func (t *tailBuffer) Tail(n int) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := bytes.Split(bytes.TrimRight(t.buf, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
