package remote_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/internal/testenv"
	"github.com/larder-build/larder/remote"
)

// solveResult is what a solve running in the background gave.
type solveResult struct {
	res *build.Result
	err error
	at  time.Time
}

func solveInBackground(ctx context.Context, t *testing.T, b build.Builder, st build.Stage, opts ...build.SolveOption) <-chan solveResult {
	done := make(chan solveResult, 1)
	go func() {
		res, err := build.Solve(ctx, b, st, opts...)
		done <- solveResult{res, err, time.Now()}
	}()
	return done
}

// A builder killed during a long step: the solve fails at once with a
// *remote.ConnectionError naming it, the fleet marks it down, and the same
// build retried goes to the other member and succeeds.
func TestSolveFailsWhenBuilderIsKilled(t *testing.T) {
	env := testenv.Get(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	doomed, err := env.NewBuilder(ctx, remote.WorkerPlatforms("linux/amd64"), remote.StartDialOptions(remote.WithName("doomed")))
	if err != nil {
		t.Fatal(err)
	}
	fleet, err := remote.NewFleet(ctx, remote.FromBuilder(doomed), remote.FromBuilder(env.Builder))
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Close()
	var key string
	for i := 0; key == ""; i++ {
		if r, err := fleet.Route("linux/amd64", fmt.Sprint("project-", i)); err == nil && r.Member == "doomed" {
			key = fmt.Sprint("project-", i)
		}
	}
	g := newGate(t)
	// The step waits on the gate, which holds the first request until the
	// test ends.
	st := build.Image(busybox(t, env)).Run(fmt.Sprintf("wget -q -O /out %s/block # %d", g.URL, time.Now().UnixNano()))
	sctx, scancel := context.WithTimeout(ctx, 60*time.Second) // a safety net
	defer scancel()
	done := solveInBackground(sctx, t, fleet, st, build.Platforms("linux/amd64"), build.Key(key))
	g.waitHit(t, "/block", 30*time.Second)
	killed := time.Now()
	if err := syscall.Kill(remote.DaemonPID(doomed), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var r solveResult
	select {
	case r = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the solve did not end within 20s of its builder's death")
	}
	t.Logf("solve failed %v after the kill: %v", r.at.Sub(killed), r.err)
	if r.err == nil {
		t.Fatal("the solve succeeded on a killed builder")
	}
	if errors.Is(r.err, context.DeadlineExceeded) || sctx.Err() != nil {
		t.Fatalf("the solve ended by its context's deadline, not by noticing the builder died: %v", r.err)
	}
	if !strings.Contains(r.err.Error(), "lost the connection to builder doomed") {
		t.Errorf("error %v does not name the builder doomed", r.err)
	}
	if ce := (*remote.ConnectionError)(nil); !errors.As(r.err, &ce) || ce.Builder != "doomed" {
		t.Errorf("error %v (%T) is not a *remote.ConnectionError naming builder doomed", r.err, r.err)
	}
	if st := fleet.Members()[0]; st.State != remote.StateDown {
		t.Errorf("doomed after its solve lost the connection: %v, want down", st.State)
	}
	// A unary call gets the type too, although BuildKit's client rebuilds
	// errors that carry a gRPC status.
	lctx, lcancel := context.WithTimeout(ctx, 10*time.Second)
	_, err = doomed.Client().ListWorkers(lctx)
	lcancel()
	if ce := (*remote.ConnectionError)(nil); !errors.As(err, &ce) || ce.Builder != "doomed" {
		t.Errorf("ListWorkers on the killed builder: %v (%T), want a *remote.ConnectionError naming doomed", err, err)
	}

	// The same build again: the gate answers at once now.
	res, err := build.Solve(ctx, fleet, st, build.Platforms("linux/amd64"), build.Key(key))
	if err != nil {
		t.Fatalf("the retry: %v", err)
	}
	if builderOf(res) != "amd64" {
		t.Errorf("the retry built on %s, want amd64", builderOf(res))
	}
}

// A builder that stops answering without closing its connection (a frozen
// process, a host that vanished, a network that drops packets): keepalive
// fails the solve instead of letting it hang until its context ends.
func TestSolveFailsWhenBuilderFreezes(t *testing.T) {
	env := testenv.Get(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	frozen, err := env.NewBuilder(ctx, remote.StartDialOptions(remote.WithName("frozen"), remote.WithKeepalive(10*time.Second, 5*time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	pid := remote.DaemonPID(frozen)
	g := newGate(t)
	st := build.Image(busybox(t, env)).Run(fmt.Sprintf("wget -q -O /out %s/block # %d", g.URL, time.Now().UnixNano()))
	sctx, scancel := context.WithTimeout(ctx, 90*time.Second) // a safety net
	defer scancel()
	done := solveInBackground(sctx, t, frozen, st)
	g.waitHit(t, "/block", 30*time.Second)
	stopped := time.Now()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(pid, syscall.SIGCONT)
	var r solveResult
	select {
	case r = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("the solve did not end within 60s of its builder freezing")
	}
	t.Logf("solve failed %v after the freeze: %v", r.at.Sub(stopped), r.err)
	if r.err == nil {
		t.Fatal("the solve succeeded on a frozen builder")
	}
	if errors.Is(r.err, context.DeadlineExceeded) || sctx.Err() != nil {
		t.Fatalf("the solve ended by its context's deadline, not by keepalive: %v", r.err)
	}
	// Which RPC notices first (the status stream or a unary call) depends
	// on timing; either way the type reaches Solve's caller, and the
	// message names the builder and the cause.
	if msg := r.err.Error(); !strings.Contains(msg, "builder frozen") || !strings.Contains(msg, "keepalive") {
		t.Errorf("error %v does not name the builder frozen and keepalive", r.err)
	}
	if ce := (*remote.ConnectionError)(nil); !errors.As(r.err, &ce) || ce.Builder != "frozen" {
		t.Errorf("error %v (%T) is not a *remote.ConnectionError naming builder frozen", r.err, r.err)
	}
	if d := r.at.Sub(stopped); d > 40*time.Second {
		t.Errorf("keepalive took %v to notice, want about 10s + 5s", d)
	}
	syscall.Kill(pid, syscall.SIGCONT)
	g.Open()
}
