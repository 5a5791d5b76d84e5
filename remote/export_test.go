package remote

import "testing"

// DaemonPID returns the process id of a daemon made by Start, 0 for a
// builder made by Dial.
func DaemonPID(b *Builder) int { return b.pid }

// SetDefaultAddress points Dial's default address at addr until t ends.
func SetDefaultAddress(t testing.TB, addr string) {
	old := defaultAddress
	defaultAddress = addr
	t.Cleanup(func() { defaultAddress = old })
}
