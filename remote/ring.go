package remote

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"strconv"
)

// ringReplicas is how many points each member has on the ring. More points
// spread keys more evenly; 128 keeps every member within about a fifth of
// its fair share.
const ringReplicas = 128

// ring is a consistent-hash ring over a fleet's members, by name. A key
// maps to a point; the members in the order their points follow it are the
// key's preference list. Removing a member from consideration moves only
// the keys it was first for.
type ring struct {
	points []ringPoint // sorted by hash
	n      int
}

type ringPoint struct {
	hash   uint64
	member int
}

func ringHash(s string) uint64 {
	sum := sha256.Sum256([]byte(s))
	return binary.BigEndian.Uint64(sum[:8])
}

func newRing(names []string) *ring {
	r := &ring{n: len(names)}
	for i, name := range names {
		for v := range ringReplicas {
			r.points = append(r.points, ringPoint{hash: ringHash(name + "#" + strconv.Itoa(v)), member: i})
		}
	}
	slices.SortFunc(r.points, func(a, b ringPoint) int {
		switch {
		case a.hash < b.hash:
			return -1
		case a.hash > b.hash:
			return 1
		}
		return a.member - b.member
	})
	return r
}

// order returns every member index once, in the order the ring prefers them
// for key.
func (r *ring) order(key string) []int {
	out := make([]int, 0, r.n)
	if len(r.points) == 0 {
		return out
	}
	h := ringHash(key)
	start, _ := slices.BinarySearchFunc(r.points, h, func(p ringPoint, h uint64) int {
		switch {
		case p.hash < h:
			return -1
		case p.hash > h:
			return 1
		}
		return 0
	})
	seen := make([]bool, r.n)
	for i := range r.points {
		p := r.points[(start+i)%len(r.points)]
		if !seen[p.member] {
			seen[p.member] = true
			out = append(out, p.member)
			if len(out) == r.n {
				break
			}
		}
	}
	return out
}
