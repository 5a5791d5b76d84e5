package remote

import (
	"github.com/containerd/platforms"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// Match says how a builder runs a platform. The zero Match means it does
// not run it.
type Match int

const (
	// Native: the platform is one of the builder's native platforms,
	// variant included.
	Native Match = iota + 1
	// Compatible: a native platform of the builder runs the platform
	// without emulation, such as linux/arm64 for linux/arm/v7 or
	// linux/amd64 for linux/386 (containerd's platforms.Only), or the
	// builder lists another variant of a native architecture.
	Compatible
	// Emulated: the builder lists the platform but runs it under
	// emulation (binfmt and qemu).
	Emulated
)

// String returns "native", "compatible", "emulated", or "none" for the zero
// Match.
func (m Match) String() string {
	switch m {
	case Native:
		return "native"
	case Compatible:
		return "compatible"
	case Emulated:
		return "emulated"
	}
	return "none"
}

// matchPlatform says how a builder whose native platforms are native and
// which lists listed runs p.
func matchPlatform(native, listed []ocispecs.Platform, p ocispecs.Platform) Match {
	p = platforms.Normalize(p)
	for _, n := range native {
		if platforms.OnlyStrict(n).Match(p) {
			return Native
		}
	}
	for _, n := range native {
		if platforms.Only(n).Match(p) {
			return Compatible
		}
	}
	for _, l := range listed {
		if platforms.Only(l).Match(p) {
			// Variants of a native architecture are CPU features the
			// host has (linux/amd64/v3), not emulation.
			for _, n := range native {
				n = platforms.Normalize(n)
				if p.OS == n.OS && p.Architecture == n.Architecture {
					return Compatible
				}
			}
			return Emulated
		}
	}
	return 0
}

// runsAny reports whether one of the listed platforms runs p.
func runsAny(listed []ocispecs.Platform, p ocispecs.Platform) bool {
	for _, l := range listed {
		if platforms.Only(l).Match(p) {
			return true
		}
	}
	return false
}

func formatPlatforms(ps []ocispecs.Platform) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = platforms.Format(p)
	}
	return out
}
