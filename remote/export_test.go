package remote

// DaemonPID returns the process id of a daemon made by Start, 0 for a
// builder made by Dial.
func DaemonPID(b *Builder) int { return b.pid }
