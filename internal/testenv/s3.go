package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/larder-build/larder/internal/daemon"
)

// S3Server says how to reach the environment's S3-compatible server, and
// what it holds: one bucket, empty when the server starts. It is a value;
// its fields are read-only.
//
// The server is larder-s3, built by scripts/setup from tools/s3: gofakes3
// with its in-memory backend. It addresses buckets by path, not by virtual
// host, and accepts any credentials; the static ones here are for clients
// that insist on having some.
type S3Server struct {
	// Endpoint is the server's URL, such as "http://127.0.0.1:40123". It
	// speaks plain HTTP.
	Endpoint string
	// Host is Endpoint's host:port, such as "127.0.0.1:40123", for clients
	// (minio-go) that take the host and a secure flag instead of a URL.
	Host string
	// Bucket is the name of a bucket that exists, "larder-test".
	Bucket string
	// Region is "us-east-1".
	Region string
	// AccessKeyID is the access key of static credentials the server
	// accepts, as it accepts any: "larder".
	AccessKeyID string
	// SecretAccessKey is the secret key that goes with AccessKeyID:
	// "larder-secret".
	SecretAccessKey string
}

// s3Bucket is the bucket larder-s3 creates at start.
const s3Bucket = "larder-test"

// S3 returns the environment's S3-compatible server, starting it on first
// use; later calls return the same server, whose bucket then holds what
// earlier users put in it, so give objects keys of their own. The server is
// a larder-s3 child process listening on a free port of 127.0.0.1, which a
// build step reaches too (steps run on the host network). It stops when the
// Env is closed, and dies with the process that started it. S3 fails when
// larder-s3 is not installed (run scripts/setup) or does not start; it
// tries again on the next call.
func (e *Env) S3(ctx context.Context) (S3Server, error) {
	e.s3mu.Lock()
	defer e.s3mu.Unlock()
	if e.s3 != nil {
		return e.s3.server, nil
	}
	p, err := startS3(ctx)
	if err != nil {
		return S3Server{}, err
	}
	e.s3 = p
	return p.server, nil
}

// closeS3 stops the S3 server, if S3 started one.
func (e *Env) closeS3() error {
	e.s3mu.Lock()
	p := e.s3
	e.s3 = nil
	e.s3mu.Unlock()
	if p == nil {
		return nil
	}
	return p.stop()
}

// s3Process is a running larder-s3.
type s3Process struct {
	server S3Server
	cmd    *exec.Cmd
	stdin  *os.File // the write end of its stdin: closing it stops the server
	stderr *headBuffer
	exited chan struct{}
	err    error // cmd.Wait's, once exited is closed
}

// startS3 starts larder-s3 with the bucket s3Bucket and waits for it to
// print the address it listens on.
func startS3(ctx context.Context) (*s3Process, error) {
	bin, err := daemon.LookPath("larder-s3")
	if err != nil {
		return nil, fmt.Errorf("testenv: no S3 server (run scripts/setup to build larder-s3): %w", err)
	}
	// larder-s3 exits when its stdin reaches end of file: when we close the
	// write end, or when this process dies and the kernel closes it.
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("testenv: starting larder-s3: %w", err)
	}
	lines := &firstLine{ready: make(chan string, 1)}
	p := &s3Process{
		cmd:    exec.Command(bin, "-addr", "127.0.0.1:0", "-bucket", s3Bucket),
		stdin:  stdinW,
		stderr: &headBuffer{},
		exited: make(chan struct{}),
	}
	p.cmd.Stdin, p.cmd.Stdout, p.cmd.Stderr = stdinR, lines, p.stderr
	// Should it hang, it is also killed when the thread that started it
	// ends: with this process, in practice, as Go ends a thread only when a
	// goroutine locked to it returns.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p.cmd.WaitDelay = 5 * time.Second
	err = p.cmd.Start()
	stdinR.Close()
	if err != nil {
		stdinW.Close()
		return nil, fmt.Errorf("testenv: starting %s: %w", bin, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()

	fail := func(reason string, err error) (*s3Process, error) {
		p.stop()
		msg := fmt.Sprintf("testenv: %s %s: %v", bin, reason, err)
		if tail := p.stderr.String(); tail != "" {
			msg += "\n" + tail
		}
		return nil, errors.New(msg)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var addr string
	select {
	case addr = <-lines.ready:
	case <-p.exited:
		return fail("exited during start", p.err)
	case <-ctx.Done():
		return fail("did not say where it listens", ctx.Err())
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fail("printed no address", err)
	}
	p.server = S3Server{
		Endpoint:        "http://" + addr,
		Host:            addr,
		Bucket:          s3Bucket,
		Region:          "us-east-1",
		AccessKeyID:     "larder",
		SecretAccessKey: "larder-secret",
	}
	return p, nil
}

// stop closes the server's stdin, which makes it exit, and waits for it;
// it kills a server that has not exited after five seconds. It reports a
// server that exited with an error of its own.
func (p *s3Process) stop() error {
	p.stdin.Close()
	select {
	case <-p.exited:
		if p.err != nil {
			return fmt.Errorf("testenv: larder-s3: %w: %s", p.err, p.stderr.String())
		}
		return nil
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
		return nil
	}
}

// firstLine is a child's stdout that hands its first line to ready and
// discards the rest.
type firstLine struct {
	mu    sync.Mutex
	buf   []byte
	done  bool
	ready chan string
}

func (f *firstLine) Write(b []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done {
		return len(b), nil
	}
	f.buf = append(f.buf, b...)
	if line, _, ok := bytes.Cut(f.buf, []byte("\n")); ok {
		f.done = true
		f.ready <- strings.TrimSpace(string(line))
		f.buf = nil
	}
	return len(b), nil
}

// headBuffer keeps the first 8 KiB written to it, for error messages.
type headBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (h *headBuffer) Write(b []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if n := 8<<10 - len(h.buf); n > 0 {
		h.buf = append(h.buf, b[:min(n, len(b))]...)
	}
	return len(b), nil
}

func (h *headBuffer) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.TrimSpace(string(h.buf))
}
