package remote_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/larder-build/larder/internal/testenv"
	"github.com/larder-build/larder/remote"
)

// The GC policy Start writes is accepted by buildkitd: the worker reports
// one rule over every record, so cache mounts are not evicted before
// anything else (BuildKit's default policy evicts them first).
func TestStartGCPolicyIsAccepted(t *testing.T) {
	env := testenv.Get(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	small, err := env.NewBuilder(ctx, remote.MaxStorage("5GB"), remote.StartDialOptions(remote.WithName("gc-5GB")))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		b    *remote.Builder
		want int64
	}{{env.Builder, 20 << 30}, {small, 5 << 30}} {
		ws, err := tc.b.Client().ListWorkers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range ws {
			if len(w.GCPolicy) != 1 {
				t.Fatalf("%s: worker %s has %d GC rules %+v, want the one Start writes", tc.b.Name(), w.ID, len(w.GCPolicy), w.GCPolicy)
			}
			p := w.GCPolicy[0]
			if !p.All || len(p.Filter) != 0 || p.KeepDuration != 0 || p.MaxUsedSpace != tc.want {
				t.Errorf("%s: GC rule %+v, want all records, no filter, no keep duration, max used space %d", tc.b.Name(), p, tc.want)
			}
			for _, f := range p.Filter {
				if strings.Contains(f, "exec.cachemount") {
					t.Errorf("%s: GC rule singles out cache mounts: %v", tc.b.Name(), p.Filter)
				}
			}
		}
	}
}

// Every option that goes into the daemon's configuration, at once:
// buildkitd starts with what Start writes, and its worker reports the
// platforms and the GC bound given.
func TestStartAcceptsEveryOption(t *testing.T) {
	env := testenv.Get(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var log lockedBuffer
	b, err := env.NewBuilder(ctx,
		remote.MaxStorage("10%"),
		remote.WorkerPlatforms("linux/arm64", "linux/amd64"),
		remote.InsecureRegistry("registry.example.com"),
		remote.InsecureRegistry("[::1]:5000"),
		remote.InsecureRegistry("localhost"),
		remote.StateDir(filepath.Join(t.TempDir(), "state")),
		remote.DaemonLog(&log),
		remote.StartDialOptions(remote.WithName("every-option"), remote.Platforms("linux/amd64"), remote.MaxConcurrency(2)),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ws, err := b.Client().ListWorkers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 1 {
		t.Fatalf("%d workers, want the OCI worker alone", len(ws))
	}
	w := ws[0]
	if got := fmt.Sprint(w.Platforms[:2]); len(w.Platforms) < 2 || w.Platforms[0].Architecture != "arm64" || w.Platforms[1].Architecture != "amd64" {
		t.Errorf("worker platforms start with %s, want linux/arm64 then linux/amd64", got)
	}
	if len(w.GCPolicy) != 1 || !w.GCPolicy[0].All || w.GCPolicy[0].MaxUsedSpace <= 0 || w.GCPolicy[0].MaxUsedSpace == 20<<30 {
		t.Errorf("GC policy %+v, want one rule over every record bounded by 10%% of the disk", w.GCPolicy)
	}
	if !strings.Contains(log.String(), "running server on") {
		t.Errorf("DaemonLog got %q, want the daemon's log", log.String())
	}
}

// lockedBuffer is a buffer a daemon's log goes to while a test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func TestStartChecksOptionsFirst(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		opt  remote.StartOption
		want string
	}{
		{remote.ListenTCP("127.0.0.1", "", "c.pem", "k.pem"), "want host:port"},
		{remote.ListenTCP("127.0.0.1:1234", "", "", ""), "certificate and its key"},
		{remote.ListenTCP("127.0.0.1:1234", "", "/nonexistent/c.pem", "/nonexistent/k.pem"), "no such file"},
		{remote.StartDialOptions(remote.WithTLS("", "", "")), "WithTLS and AllowInsecure do not apply"},
		{remote.StartDialOptions(remote.WithKeepalive(time.Second, time.Second)), "at least 10s"},
	} {
		_, err := remote.Start(ctx, tc.opt)
		var se *remote.StartError
		if err == nil || errors.As(err, &se) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Start = %v, want an option error saying %q", err, tc.want)
		}
	}
}

// Every unix socket a started daemon listens on is its own: buildkitd puts
// its trace collector on /run/buildkit/otel-grpc.sock unless told
// otherwise, and two daemons starting at once then race for that path.
func TestStartKeepsItsSocketsToItself(t *testing.T) {
	env := testenv.Get(t)
	pid := remote.DaemonPID(env.Builder)
	own := filepath.Dir(strings.TrimPrefix(env.Builder.Address(), "unix://"))

	inodes := map[string]bool{}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	table, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/unix", pid))
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, line := range strings.Split(string(table), "\n")[1:] {
		// Num RefCount Protocol Flags Type St Inode Path; the flag
		// __SO_ACCEPTCON (0x10000) marks a listening socket.
		f := strings.Fields(line)
		if len(f) != 8 || !inodes[f[6]] || !strings.HasPrefix(f[7], "/") {
			continue
		}
		if flags, err := strconv.ParseUint(f[3], 16, 32); err == nil && flags&0x10000 != 0 {
			paths = append(paths, f[7])
		}
	}
	if len(paths) < 2 {
		t.Fatalf("daemon %d listens on %v, want its gRPC and trace sockets", pid, paths)
	}
	for _, p := range paths {
		if filepath.Dir(p) != own {
			t.Errorf("daemon %d listens on %s, outside its own socket directory %s", pid, p, own)
		}
	}
}
