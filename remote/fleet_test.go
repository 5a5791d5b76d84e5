package remote_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/containerd/platforms"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/internal/testenv"
	"github.com/larder-build/larder/remote"
)

// An arm64 step runs on the arm64 member and an amd64 step on the amd64
// one, through Acquire and through build.Solve.
func TestFleetSendsEachPlatformToItsMember(t *testing.T) {
	env := testenv.Get(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	arm, err := env.Arm64(ctx)
	if err != nil {
		testenv.Unavailable(t, err)
	}
	fleet, err := remote.NewFleet(ctx, remote.FromBuilder(env.Builder), remote.FromBuilder(arm))
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Close()
	if got := fmt.Sprint(fleet.Platforms()); !strings.Contains(got, "amd64") || !strings.Contains(got, "arm64") || len(fleet.Platforms()) != 2 {
		t.Errorf("fleet.Platforms() = %v, want the two native platforms", fleet.Platforms())
	}
	st := build.Image(busybox(t, env)).Run(fmt.Sprintf("uname -m > /arch # %d", time.Now().UnixNano()))
	for _, tc := range []struct{ platform, member, arch string }{
		{"linux/arm64", "arm64", "aarch64"},
		{"linux/amd64", "amd64", "x86_64"},
	} {
		_, name, release, err := fleet.Acquire(ctx, platforms.MustParse(tc.platform), "project")
		if err != nil {
			t.Fatal(err)
		}
		release(nil)
		if name != tc.member {
			t.Errorf("Acquire(%s) = %s, want %s", tc.platform, name, tc.member)
		}
		dir, res, err := solveTo(ctx, t, fleet, st, build.Platforms(tc.platform), build.Key("project"))
		if err != nil {
			t.Fatalf("%s: %v", tc.platform, err)
		}
		if builderOf(res) != tc.member {
			t.Errorf("%s built on %s, want %s", tc.platform, builderOf(res), tc.member)
		}
		if got := testenv.ReadFile(t, dir, "arch"); got != tc.arch+"\n" {
			t.Errorf("%s: uname -m = %q, want %s", tc.platform, got, tc.arch)
		}
	}
	// Both at once: build.Solve acquires one member per platform,
	// concurrently.
	res, err := build.Solve(ctx, fleet, st, build.Platforms("linux/amd64", "linux/arm64"), build.Key("project"))
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range res.Platforms {
		if want := map[string]string{"linux/amd64": "amd64", "linux/arm64": "arm64"}[pr.Platform]; pr.Builder != want {
			t.Errorf("in a two-platform solve, %s built on %s, want %s", pr.Platform, pr.Builder, want)
		}
	}
}

// With the arm64 member stopped, an arm64 build fails with an error that
// says why and what would help; with emulation allowed it runs on the amd64
// member under qemu.
func TestFleetEmulatesOnlyWhenAllowed(t *testing.T) {
	env := testenv.Get(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	arm, err := env.Arm64(ctx)
	if err != nil {
		testenv.Unavailable(t, err)
	}
	members := []remote.FleetOption{
		remote.FromBuilder(env.Builder),
		remote.Member(arm.Address(), remote.WithName("arm64")), // the fleet's own connection
		remote.ProbeTimeout(2 * time.Second),
	}
	strict, err := remote.NewFleet(ctx, members...)
	if err != nil {
		t.Fatal(err)
	}
	defer strict.Close()
	lenient, err := remote.NewFleet(ctx, append(members, remote.AllowEmulation())...)
	if err != nil {
		t.Fatal(err)
	}
	defer lenient.Close()
	for _, f := range []*remote.Fleet{strict, lenient} {
		if r, err := f.Route("linux/arm64", "project"); err != nil || r.Member != "arm64" || r.Match != remote.Native {
			t.Fatalf("with both members up, arm64 routes to %+v, %v; want arm64, native", r, err)
		}
	}
	if err := arm.Close(); err != nil {
		t.Fatal(err)
	}

	st := build.Image(busybox(t, env)).Run(fmt.Sprintf("uname -m > /arch # %d", time.Now().UnixNano()))
	start := time.Now()
	_, _, err = solveTo(ctx, t, strict, st, build.Platforms("linux/arm64"))
	var re *remote.RouteError
	if !errors.As(err, &re) {
		t.Fatalf("arm64 with its member stopped and no emulation: %v, want a *RouteError", err)
	}
	for _, want := range []string{"no member of the fleet can build linux/arm64", "arm64 runs it but is down", "amd64 could emulate it, but emulation is not allowed (remote.AllowEmulation)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the route error took %v", d)
	}
	t.Logf("%v", err)
	if st := strict.Members()[1]; st.State != remote.StateDown || st.Err == nil {
		t.Errorf("the stopped member: %+v, want down with its error", st)
	}

	dir, res, err := solveTo(ctx, t, lenient, st, build.Platforms("linux/arm64"))
	if err != nil {
		t.Fatalf("arm64 with emulation allowed: %v", err)
	}
	if builderOf(res) != "amd64" {
		t.Errorf("arm64 under emulation built on %s, want amd64", builderOf(res))
	}
	if got := testenv.ReadFile(t, dir, "arch"); got != "aarch64\n" {
		t.Errorf("uname -m under emulation = %q, want aarch64", got)
	}
}

// Three members, two of them amd64: each key lands on the same member
// every time; after one amd64 member stops, only the keys it held move.
func TestFleetKeepsEachKeyOnOneMember(t *testing.T) {
	env := testenv.Get(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var members []remote.FleetOption
	var stopB func() error
	for _, name := range []string{"amd64-a", "amd64-b"} {
		b, err := env.NewBuilder(ctx, remote.WorkerPlatforms("linux/amd64"))
		if err != nil {
			t.Fatal(err)
		}
		if name == "amd64-b" {
			stopB = b.Close
		}
		members = append(members, remote.Member(b.Address(), remote.WithName(name)))
	}
	arm, err := env.Arm64(ctx)
	if err != nil {
		testenv.Unavailable(t, err)
	}
	members = append(members, remote.Member(arm.Address(), remote.WithName("arm64")), remote.ProbeTimeout(2*time.Second))
	fleet, err := remote.NewFleet(ctx, members...)
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Close()

	amd := platforms.MustParse("linux/amd64")
	keys := []string{"team/api", "team/web", "team/worker", "infra/proxy", "infra/db"}
	acquire := func(key string) string {
		t.Helper()
		_, name, release, err := fleet.Acquire(ctx, amd, key)
		if err != nil {
			t.Fatal(err)
		}
		release(nil)
		return name
	}
	where := map[string]string{}
	held := map[string]int{}
	for round := range 4 {
		for _, k := range keys {
			name := acquire(k)
			if round == 0 {
				where[k] = name
				held[name]++
			} else if name != where[k] {
				t.Fatalf("round %d: key %s went to %s, it went to %s before", round, k, name, where[k])
			}
		}
	}
	if held["amd64-a"] == 0 || held["amd64-b"] == 0 || held["arm64"] != 0 {
		t.Fatalf("keys per member %v, want amd64 keys on both amd64 members and none on arm64", held)
	}
	// Real solves land where Acquire said.
	img := build.Image(busybox(t, env))
	for _, k := range keys {
		dir, res, err := solveTo(ctx, t, fleet, img.Run("echo "+k+" > /key"), build.Platforms("linux/amd64"), build.Key(k))
		if err != nil {
			t.Fatal(err)
		}
		if builderOf(res) != where[k] || testenv.ReadFile(t, dir, "key") != k+"\n" {
			t.Errorf("key %s built on %s, want %s", k, builderOf(res), where[k])
		}
	}
	if _, res, err := solveTo(ctx, t, fleet, img.Run("echo arm > /key"), build.Platforms("linux/arm64"), build.Key(keys[0])); err != nil || builderOf(res) != "arm64" {
		t.Errorf("an arm64 solve: %v on %q, want arm64", err, builderOf(res))
	}

	if err := stopB(); err != nil {
		t.Fatal(err)
	}
	var moved string
	for round := range 4 {
		for _, k := range keys {
			name := acquire(k)
			switch {
			case where[k] == "amd64-a" && name != "amd64-a":
				t.Fatalf("round %d: key %s moved from amd64-a, which is up, to %s", round, k, name)
			case where[k] == "amd64-b" && name != "amd64-a":
				t.Fatalf("round %d: key %s of the stopped amd64-b went to %s, want amd64-a", round, k, name)
			case where[k] == "amd64-b":
				moved = k
			}
		}
	}
	if st := fleet.Members()[1]; st.Name != "amd64-b" || st.State != remote.StateDown {
		t.Errorf("amd64-b after it stopped: %+v, want down", st)
	}
	_, res, err := solveTo(ctx, t, fleet, img.Run("echo "+moved+" > /key"), build.Platforms("linux/amd64"), build.Key(moved))
	if err != nil || builderOf(res) != "amd64-a" {
		t.Errorf("a moved key's solve: %v on %q, want amd64-a", err, builderOf(res))
	}
}
