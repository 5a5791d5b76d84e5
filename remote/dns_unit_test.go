package remote

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"
)

// A name that is not found is asked again rooted, whose answer stands: a
// resolver that tried search domains after a failed lookup of the name
// itself reports the last domain's "not found".
func TestLookupRootedAsksTheRootedName(t *testing.T) {
	ctx := context.Background()
	notFoundErr := &net.DNSError{Err: "no such host", Name: "x", IsNotFound: true}
	servfail := &net.DNSError{Err: "server misbehaving", Name: "x", IsTemporary: true}
	for _, c := range []struct {
		name    string
		answers map[string]error // by name asked; missing: found
		want    error
		asked   []string
	}{
		{"_b._tcp.b.ci.svc.cluster.local", map[string]error{}, nil, []string{"_b._tcp.b.ci.svc.cluster.local"}},
		{"_b._tcp.b.ci.svc.cluster.local", map[string]error{"_b._tcp.b.ci.svc.cluster.local": notFoundErr, "_b._tcp.b.ci.svc.cluster.local.": servfail}, servfail,
			[]string{"_b._tcp.b.ci.svc.cluster.local", "_b._tcp.b.ci.svc.cluster.local."}},
		{"_b._tcp.b.ci.svc.cluster.local", map[string]error{"_b._tcp.b.ci.svc.cluster.local": notFoundErr}, nil,
			[]string{"_b._tcp.b.ci.svc.cluster.local", "_b._tcp.b.ci.svc.cluster.local."}},
		{"_b._tcp.b.ci.svc.cluster.local", map[string]error{"_b._tcp.b.ci.svc.cluster.local": notFoundErr, "_b._tcp.b.ci.svc.cluster.local.": notFoundErr}, notFoundErr,
			[]string{"_b._tcp.b.ci.svc.cluster.local", "_b._tcp.b.ci.svc.cluster.local."}},
		{"_b._tcp.b.ci.svc.cluster.local.", map[string]error{"_b._tcp.b.ci.svc.cluster.local.": notFoundErr}, notFoundErr, []string{"_b._tcp.b.ci.svc.cluster.local."}},
		{"b", map[string]error{"b": servfail}, servfail, []string{"b"}},
	} {
		var asked []string
		_, err := lookupRooted(ctx, c.name, func(name string) (int, error) {
			asked = append(asked, name)
			return 1, c.answers[name]
		})
		if !errors.Is(err, c.want) && err != c.want {
			t.Errorf("%s with %v: error %v, want %v", c.name, c.answers, err, c.want)
		}
		if !slices.Equal(asked, c.asked) {
			t.Errorf("%s with %v: asked %q, want %q", c.name, c.answers, asked, c.asked)
		}
	}
}
