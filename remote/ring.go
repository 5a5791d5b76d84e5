package remote

import (
	"github.com/serialx/hashring"
)

// ring is the consistent-hash ring of a fleet's members, by name: the ring
// of github.com/serialx/hashring, which BuildKit's
// examples/kubernetes/consistenthash and buildx's kubernetes driver in
// sticky mode use too. With one point per member (the default), the first
// member of a key's order is hashring.New(names).GetNode(key).
//
// Each member's points depend on its name only, never on the other
// members, so the first member of the order among any subset of the names
// is what a ring of that subset alone picks: a fleet that leaves out the
// members that are down, busy or of another platform still picks what
// buildx picks among the pods it lists. Removing a member moves only the
// keys it was first for; adding one moves only the keys it takes.
type ring struct {
	hr *hashring.HashRing
	n  int
}

// newRing makes the ring of names, each with points points (hashring's
// weight). The names must be distinct.
func newRing(names []string, points int) *ring {
	if points <= 1 {
		return &ring{hr: hashring.New(names), n: len(names)}
	}
	weights := make(map[string]int, len(names))
	for _, name := range names {
		weights[name] = points
	}
	return &ring{hr: hashring.NewWithWeights(weights), n: len(names)}
}

// order returns every name once, in the order the ring prefers them for
// key: hashring's GetNodes.
func (r *ring) order(key string) []string {
	if r == nil || r.n == 0 {
		return nil
	}
	names, _ := r.hr.GetNodes(key, r.n)
	return names
}
