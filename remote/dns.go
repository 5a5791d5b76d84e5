package remote

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultInterval is how often a [DNSSource] asks again, unless told
// otherwise with [Interval]: twice the 5 seconds that Kubernetes' DNS
// (CoreDNS) keeps a Service's records by default, so that a pod that became
// ready gets new keys, and one that is going stops getting them, within
// about 15 seconds.
const DefaultInterval = 10 * time.Second

// DNSSource is a [MemberSource] that finds builders through DNS, such as
// the pods of a Kubernetes StatefulSet behind a headless Service. [SRV]
// makes one that reads SRV records, [AddressRecords] one that reads A and
// AAAA records and adds a port. It asks again every [Interval]. A
// DNSSource is immutable and safe for concurrent use.
type DNSSource struct {
	name     string // the name looked up, as given
	port     int    // AddressRecords' port; 0 for SRV
	resolver string // host:port of the DNS server; "" for the system's
	interval time.Duration
	err      error // the mistakes in the arguments, reported by Discover

	once sync.Once
	r    *net.Resolver
}

// DNSOption configures a [DNSSource].
type DNSOption func(*DNSSource) error

// Resolver makes the source ask the DNS server at addr, such as
// "10.96.0.10" (port 53) or "127.0.0.1:5353", instead of the system's
// resolver (/etc/resolv.conf). The system's search domains still apply to
// names with fewer dots than its ndots. The default is the system's.
func Resolver(addr string) DNSOption {
	return func(s *DNSSource) error {
		hp := addr
		if _, err := netip.ParseAddr(strings.Trim(addr, "[]")); err == nil {
			hp = net.JoinHostPort(strings.Trim(addr, "[]"), "53")
		}
		ap, err := netip.ParseAddrPort(hp)
		if err != nil || ap.Port() == 0 {
			return fmt.Errorf(`Resolver(%q): want the DNS server's IP address, with a port unless it is 53, such as "10.96.0.10" or "127.0.0.1:5353"`, addr)
		}
		s.resolver = ap.String()
		return nil
	}
}

// Interval sets how often the source asks again, at least 100ms. The
// default is [DefaultInterval].
func Interval(d time.Duration) DNSOption {
	return func(s *DNSSource) error {
		if d < 100*time.Millisecond {
			return fmt.Errorf("Interval(%v): want at least 100ms (such as remote.Interval(10*time.Second), the default)", d)
		}
		s.interval = d
		return nil
	}
}

// SRV returns a source of the builders that the SRV records of name list,
// such as "_buildkitd._tcp.buildkitd.ci.svc.cluster.local": Kubernetes
// publishes one for each named port of a headless Service,
// _<port name>._tcp.<service>.<namespace>.svc.<cluster domain>, with a
// record per ready pod. Each target is looked up (A and AAAA) with the
// same resolver and dialed at its address and the record's port; its name
// is the target's first label, which for a StatefulSet's pod is the pod's
// name ("buildkitd-0"), the name buildx's sticky mode and BuildKit's
// consistenthash hash. Its TLS server name is the target
// ("buildkitd-0.buildkitd.ci.svc.cluster.local"), so the builders'
// certificate must hold it, or give [WithServerName] to [Discover].
//
// A name that has no records lists no member. Mistakes in the arguments
// are reported by [NewFleet], before anything is contacted.
func SRV(name string, opts ...DNSOption) *DNSSource {
	s := newDNSSource(name, 0, opts)
	labels := strings.Split(strings.TrimSuffix(name, "."), ".")
	if s.err == nil && (len(labels) < 3 || !strings.HasPrefix(labels[0], "_") || labels[1] != "_tcp") {
		s.err = fmt.Errorf(`SRV(%q): want _<port name>._tcp.<service>.<namespace>.svc.cluster.local, such as "_buildkitd._tcp.buildkitd.ci.svc.cluster.local" (or remote.AddressRecords(%q, 1234) for A and AAAA records)`, name, name)
	}
	return s
}

// AddressRecords returns a source of the builders at the addresses that
// the A and AAAA records of host list, each dialed at port: for a headless
// Kubernetes Service, "buildkitd.ci.svc.cluster.local" lists its ready
// pods' addresses. Each member is named by its address ("10.0.3.7"), which
// changes when a pod moves, and a pod of a dual-stack Service is two
// members, one per address: prefer [SRV], whose names are the pods' and
// agree with buildx and BuildKit's consistenthash. The members' TLS server
// name is host, so the builders' certificate must hold it, or give
// [WithServerName] to [Discover].
//
// A name that has no records lists no member. Mistakes in the arguments
// are reported by [NewFleet], before anything is contacted.
func AddressRecords(host string, port int, opts ...DNSOption) *DNSSource {
	s := newDNSSource(host, port, opts)
	switch {
	case s.err != nil:
	case port < 1 || port > 65535:
		s.err = fmt.Errorf("AddressRecords(%q, %d): port %d is out of range (want the builders' port, from 1 to 65535, such as 1234)", host, port, port)
	case isIP(host):
		s.err = fmt.Errorf("AddressRecords(%q, %d): an IP address is not looked up (give the Service's name, or add the builder with remote.Member(\"tcp://%s\"))", host, port, net.JoinHostPort(strings.Trim(host, "[]"), strconv.Itoa(port)))
	}
	return s
}

func isIP(s string) bool {
	_, err := netip.ParseAddr(strings.Trim(s, "[]"))
	return err == nil
}

func newDNSSource(name string, port int, opts []DNSOption) *DNSSource {
	s := &DNSSource{name: name, port: port, interval: DefaultInterval}
	what := fmt.Sprintf("SRV(%q)", name)
	if port != 0 {
		what = fmt.Sprintf("AddressRecords(%q, %d)", name, port)
	}
	var errs []error
	if err := checkDNSName(name); err != nil {
		errs = append(errs, fmt.Errorf("%s: %v", what, err))
	}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(s); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		}
	}
	s.err = errors.Join(errs...)
	return s
}

// checkDNSName says what is wrong with a name to look up.
func checkDNSName(name string) error {
	switch {
	case name == "":
		return errors.New("empty name (give the Service's DNS name, such as buildkitd.ci.svc.cluster.local)")
	case strings.Contains(name, "://"):
		_, rest, _ := strings.Cut(name, "://")
		return fmt.Errorf("a DNS name has no scheme (remove it: %q)", rest)
	case strings.TrimSpace(name) != name:
		return fmt.Errorf("spaces around the name (remove them: %q)", strings.TrimSpace(name))
	case strings.ContainsAny(name, ":/ "):
		if isIP(name) {
			return nil // reported by AddressRecords
		}
		return errors.New("want a DNS name alone, without a port or a path (give the port to AddressRecords)")
	}
	for _, l := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		if l == "" || len(l) > 63 {
			return fmt.Errorf("label %q: want 1 to 63 characters between dots, such as _buildkitd._tcp.buildkitd.ci.svc.cluster.local", l)
		}
	}
	return nil
}

func (s *DNSSource) check() error { return s.err }

// String describes the source, such as
// "DNS SRV _buildkitd._tcp.buildkitd.ci.svc.cluster.local" or
// "DNS A/AAAA buildkitd.ci.svc.cluster.local port 1234", followed by
// " at 127.0.0.1:5353" when given a [Resolver].
func (s *DNSSource) String() string {
	if s == nil {
		return "DNS (nil)"
	}
	out := "DNS SRV " + s.name
	if s.port != 0 {
		out = fmt.Sprintf("DNS A/AAAA %s port %d", s.name, s.port)
	}
	if s.resolver != "" {
		out += " at " + s.resolver
	}
	return out
}

func (s *DNSSource) netResolver() *net.Resolver {
	s.once.Do(func() {
		if s.resolver == "" {
			s.r = net.DefaultResolver
			return
		}
		addr := s.resolver
		s.r = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}}
	})
	return s.r
}

// Wait returns after the source's [Interval], or with ctx's error when ctx
// ends first.
func (s *DNSSource) Wait(ctx context.Context) error {
	t := time.NewTimer(s.interval)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// List looks the records up and returns a member for each builder they
// list. A name that does not exist, or has no records of the kind, lists
// no member; any other failure of the lookup is an error, and the fleet
// keeps the members it has. For SRV records, a target that does not exist
// is left out, unless none exists; a target whose lookup fails otherwise
// fails List, so that a passing failure does not take a builder out.
//
// When a name that is not rooted (no trailing dot) is not found, List
// asks again for the rooted name before it lists no member: a resolver
// that tries the system's search domains reports the failure of the last
// name it tried, so a failed lookup of the name itself can come back as
// "not found" from a search domain.
func (s *DNSSource) List(ctx context.Context) ([]Endpoint, error) {
	if s.err != nil {
		return nil, s.err
	}
	r := s.netResolver()
	if s.port != 0 {
		ips, err := lookupRooted(ctx, s.name, func(name string) ([]netip.Addr, error) { return r.LookupNetIP(ctx, "ip", name) })
		if notFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("looking up %s: %w", s.name, err)
		}
		var out []Endpoint
		for _, ip := range sortedIPs(ips) {
			out = append(out, Endpoint{
				Name:       ip.String(),
				Address:    "tcp://" + net.JoinHostPort(ip.String(), strconv.Itoa(s.port)),
				ServerName: strings.TrimSuffix(s.name, "."),
			})
		}
		return out, nil
	}
	srvs, err := lookupRooted(ctx, s.name, func(name string) ([]*net.SRV, error) {
		_, srvs, err := r.LookupSRV(ctx, "", "", name)
		return srvs, err
	})
	if notFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("looking up %s: %w", s.name, err)
	}
	out := make([]Endpoint, len(srvs))
	errs := make([]error, len(srvs))
	var wg sync.WaitGroup
	for i, srv := range srvs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The target is a rooted name: no search domain applies.
			target := strings.TrimSuffix(srv.Target, ".")
			ips, err := r.LookupNetIP(ctx, "ip", srv.Target)
			if err == nil && len(ips) == 0 {
				err = &net.DNSError{Err: "no address", Name: target, IsNotFound: true}
			}
			if err != nil {
				errs[i] = fmt.Errorf("looking up %s, a target of %s: %w", target, s.name, err)
				return
			}
			first, _, _ := strings.Cut(target, ".")
			out[i] = Endpoint{
				Name:       first,
				Address:    "tcp://" + net.JoinHostPort(sortedIPs(ips)[0].String(), strconv.Itoa(int(srv.Port))),
				ServerName: target,
			}
		}()
	}
	wg.Wait()
	var found []Endpoint
	var failed []error
	for i := range srvs {
		switch {
		case errs[i] == nil:
			found = append(found, out[i])
		case !notFound(errs[i]):
			failed = append(failed, errs[i])
		}
	}
	if len(failed) > 0 {
		return nil, errors.Join(failed...)
	}
	if len(found) == 0 && len(srvs) > 0 {
		return nil, errors.Join(errs...)
	}
	slices.SortFunc(found, func(a, b Endpoint) int { return strings.Compare(a.Name, b.Name) })
	return found, nil
}

// lookupRooted looks name up with lookup and, when name is not rooted and
// is not found, looks the rooted name up too, whose answer stands: see
// [DNSSource.List].
func lookupRooted[T any](ctx context.Context, name string, lookup func(string) (T, error)) (T, error) {
	v, err := lookup(name)
	if !notFound(err) || strings.HasSuffix(name, ".") || ctx.Err() != nil {
		return v, err
	}
	rv, rerr := lookup(name + ".")
	if rerr == nil || !notFound(rerr) {
		return rv, rerr
	}
	return v, err
}

func notFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}

// sortedIPs returns ips unmapped and sorted, IPv4 first.
func sortedIPs(ips []netip.Addr) []netip.Addr {
	out := make([]netip.Addr, len(ips))
	for i, ip := range ips {
		out[i] = ip.Unmap()
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return slices.Compact(out)
}
