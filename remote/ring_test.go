package remote

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/containerd/platforms"
	"github.com/serialx/hashring"
)

// owners returns, for each key, the first name of its order that skip
// does not hold.
func owners(r *ring, keys []string, skip map[string]bool) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		for _, m := range r.order(k) {
			if !skip[m] {
				out[i] = m
				break
			}
		}
	}
	return out
}

// someKeys returns n keys as buildx's sticky mode makes them: absolute
// paths of build contexts.
func someKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("/home/ci/src/project-%d", i)
	}
	return keys
}

// statefulSet returns the pod names of a StatefulSet named name with n
// replicas.
func statefulSet(name string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", name, i)
	}
	return out
}

// For 1,000 keys and the pods of a five-pod StatefulSet, the fleet picks
// what serialx/hashring's GetNode picks on the same names: what buildx's
// kubernetes driver in sticky mode and BuildKit's consistenthash pick.
// With a pod down, it picks what GetNode picks on the pods that are left,
// as buildx does: it lists the running pods only.
func TestFleetPicksWhatBuildxPicks(t *testing.T) {
	pods := statefulSet("buildkitd", 5)
	var fakes []fake
	for _, p := range pods {
		fakes = append(fakes, fake{name: p, native: "linux/amd64", listed: amdListed})
	}
	f, down := fakeFleet(t, false, fakes...)
	amd := platforms.MustParse("linux/amd64")
	hr := hashring.New(pods)
	keys := someKeys(1000)
	count := map[string]int{}
	for i, k := range keys {
		want, _ := hr.GetNode(k)
		r, err := f.Route("linux/amd64", k)
		if err != nil || r.Member != want {
			t.Fatalf("Route(%q) = %+v, %v; hashring.New(%v).GetNode = %s", k, r, err, pods, want)
		}
		if wantOrder, _ := hr.GetNodes(k, len(pods)); !slices.Equal(f.ring.order(k), wantOrder) {
			t.Fatalf("order(%q) = %v, GetNodes = %v", k, f.ring.order(k), wantOrder)
		}
		if i%10 == 0 { // Acquire takes the same member.
			_, name, release, err := f.Acquire(context.Background(), amd, k)
			if err != nil || name != want {
				t.Fatalf("Acquire(%q) = %q, %v; want %s", k, name, err, want)
			}
			release(nil)
		}
		count[want]++
	}
	t.Logf("keys per pod with one point each, as buildx and BuildKit's consistenthash spread them: %v", count)

	down["buildkitd-3"].Store(true)
	left := slices.DeleteFunc(slices.Clone(pods), func(s string) bool { return s == "buildkitd-3" })
	hrLeft := hashring.New(left)
	for _, k := range keys {
		want, _ := hrLeft.GetNode(k)
		_, name, release, err := f.Acquire(context.Background(), amd, k)
		if err != nil || name != want {
			t.Fatalf("with buildkitd-3 down, Acquire(%q) = %q, %v; hashring.New(%v).GetNode = %s", k, name, err, left, want)
		}
		release(nil)
	}
}

func TestRingOrderListsEveryMemberOnce(t *testing.T) {
	names := []string{"a", "b", "c", "d"}
	for _, points := range []int{1, 160} {
		r := newRing(names, points)
		for _, k := range someKeys(100) {
			o := r.order(k)
			s := slices.Clone(o)
			slices.Sort(s)
			if !slices.Equal(s, names) {
				t.Fatalf("%d points: order(%q) = %v, want each of a..d once", points, k, o)
			}
		}
	}
	if got := newRing(nil, 1).order("k"); len(got) != 0 {
		t.Fatalf("empty ring: order = %v", got)
	}
}

func TestRingIsDeterministic(t *testing.T) {
	names := []string{"amd64-1", "amd64-2", "arm64-1"}
	reversed := slices.Clone(names)
	slices.Reverse(reversed)
	r1, r2 := newRing(names, 1), newRing(reversed, 1)
	for _, k := range someKeys(200) {
		if a, b := r1.order(k), r2.order(k); !slices.Equal(a, b) {
			t.Fatalf("order(%q) differs between two rings of the same members: %v, %v", k, a, b)
		}
	}
}

// With RingPoints(160), keys spread evenly; with one point each, as
// buildx spreads them, they do not, and the test says by how much.
func TestRingSpreadsKeysEvenlyWithMorePoints(t *testing.T) {
	for _, n := range []int{2, 3, 5, 8} {
		names := statefulSet("buildkitd", n)
		keys := someKeys(20000)
		fair := float64(len(keys)) / float64(n)
		for _, points := range []int{1, 160} {
			count := map[string]int{}
			for _, o := range owners(newRing(names, points), keys, nil) {
				count[o]++
			}
			lo, hi := 2.0, 0.0
			for _, name := range names {
				ratio := float64(count[name]) / fair
				lo, hi = min(lo, ratio), max(hi, ratio)
			}
			t.Logf("%d members, %3d points each: shares from %.2f to %.2f of fair", n, points, lo, hi)
			if points > 1 && (lo < 0.75 || hi > 1.25) {
				t.Errorf("%d members, %d points: shares from %.2f to %.2f of fair, want 0.75 to 1.25", n, points, lo, hi)
			}
		}
	}
}

// Losing a member moves only the keys it held, with any number of points.
func TestRingLosingAMemberMovesOnlyItsKeys(t *testing.T) {
	names := statefulSet("buildkitd", 5)
	keys := someKeys(5000)
	for _, points := range []int{1, 160} {
		r := newRing(names, points)
		before := owners(r, keys, nil)
		for _, lost := range names {
			after := owners(r, keys, map[string]bool{lost: true})
			moved := map[string]int{}
			for i := range keys {
				switch {
				case before[i] != lost && after[i] != before[i]:
					t.Fatalf("%d points: losing %s moved key %q from %s to %s", points, lost, keys[i], before[i], after[i])
				case before[i] == lost:
					moved[after[i]]++
				}
			}
			// Skipping a member on the ring is the ring of the others.
			rest := newRing(slices.DeleteFunc(slices.Clone(names), func(s string) bool { return s == lost }), points)
			if got := owners(rest, keys, nil); !slices.Equal(got, after) {
				t.Fatalf("%d points: skipping %s is not the ring without it", points, lost)
			}
			if points > 1 && len(moved) < 3 {
				t.Errorf("losing %s: its keys went to %v, want them spread over the others", lost, moved)
			}
		}
	}
}

// Adding a member moves only the keys the new member takes: about a fifth
// of them with 160 points, its hashring share with one.
func TestRingAddingAMemberMovesOnlyKeysItTakes(t *testing.T) {
	names := statefulSet("buildkitd", 4)
	keys := someKeys(5000)
	for _, points := range []int{1, 160} {
		before := owners(newRing(names, points), keys, nil)
		after := owners(newRing(append(slices.Clone(names), "buildkitd-4"), points), keys, nil)
		took := 0
		for i := range keys {
			if after[i] == before[i] {
				continue
			}
			if after[i] != "buildkitd-4" {
				t.Fatalf("%d points: adding buildkitd-4 moved key %q from %s to %s", points, keys[i], before[i], after[i])
			}
			took++
		}
		share := float64(took) / float64(len(keys))
		t.Logf("%3d points: the fifth member took %.2f of the keys", points, share)
		if points > 1 && (share < 0.15 || share > 0.25) {
			t.Errorf("%d points: the new member took %.2f of the keys, want about 1/5", points, share)
		}
	}
}
