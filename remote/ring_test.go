package remote

import (
	"fmt"
	"slices"
	"testing"
)

func owners(r *ring, keys []string, skip map[int]bool) []int {
	out := make([]int, len(keys))
	for i, k := range keys {
		out[i] = -1
		for _, m := range r.order(k) {
			if !skip[m] {
				out[i] = m
				break
			}
		}
	}
	return out
}

func someKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("project-%d", i)
	}
	return keys
}

func TestRingOrderListsEveryMemberOnce(t *testing.T) {
	r := newRing([]string{"a", "b", "c", "d"})
	for _, k := range someKeys(100) {
		o := r.order(k)
		s := slices.Clone(o)
		slices.Sort(s)
		if !slices.Equal(s, []int{0, 1, 2, 3}) {
			t.Fatalf("order(%q) = %v, want each of 0..3 once", k, o)
		}
	}
	if got := newRing(nil).order("k"); len(got) != 0 {
		t.Fatalf("empty ring: order = %v", got)
	}
}

func TestRingIsDeterministic(t *testing.T) {
	names := []string{"amd64-1", "amd64-2", "arm64-1"}
	r1, r2 := newRing(names), newRing(names)
	for _, k := range someKeys(200) {
		if a, b := r1.order(k), r2.order(k); !slices.Equal(a, b) {
			t.Fatalf("order(%q) differs between two rings of the same members: %v, %v", k, a, b)
		}
	}
}

func TestRingSpreadsKeysEvenly(t *testing.T) {
	for _, n := range []int{2, 3, 5, 8} {
		names := make([]string, n)
		for i := range names {
			names[i] = fmt.Sprintf("builder-%d", i)
		}
		r := newRing(names)
		keys := someKeys(20000)
		count := make([]int, n)
		for _, o := range owners(r, keys, nil) {
			count[o]++
		}
		fair := float64(len(keys)) / float64(n)
		for i, c := range count {
			if ratio := float64(c) / fair; ratio < 0.75 || ratio > 1.25 {
				t.Errorf("%d members: member %d holds %d keys, %.2f of its fair share %v", n, i, c, ratio, fair)
			}
		}
	}
}

// Losing a member moves only the keys it held; each goes to the next member
// on the ring, which spreads them over the others.
func TestRingLosingAMemberMovesOnlyItsKeys(t *testing.T) {
	r := newRing([]string{"a", "b", "c", "d", "e"})
	keys := someKeys(5000)
	before := owners(r, keys, nil)
	for lost := range 5 {
		after := owners(r, keys, map[int]bool{lost: true})
		moved := map[int]int{}
		for i := range keys {
			switch {
			case before[i] != lost && after[i] != before[i]:
				t.Fatalf("losing %d moved key %q from %d to %d", lost, keys[i], before[i], after[i])
			case before[i] == lost:
				moved[after[i]]++
			}
		}
		if len(moved) < 3 {
			t.Errorf("losing %d: its keys went to %v, want them spread over the others", lost, moved)
		}
	}
}

// Adding a member moves only the keys the new member takes.
func TestRingAddingAMemberMovesOnlyKeysItTakes(t *testing.T) {
	names := []string{"a", "b", "c", "d"}
	keys := someKeys(5000)
	before := owners(newRing(names), keys, nil)
	after := owners(newRing(append(names, "e")), keys, nil)
	took := 0
	for i := range keys {
		if after[i] == before[i] {
			continue
		}
		if after[i] != 4 {
			t.Fatalf("adding e moved key %q from %d to %d", keys[i], before[i], after[i])
		}
		took++
	}
	if share := float64(took) / float64(len(keys)); share < 0.15 || share > 0.25 {
		t.Errorf("the new member took %.2f of the keys, want about 1/5", share)
	}
}
