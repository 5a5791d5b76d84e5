package mounts

import (
	"fmt"
	"strings"

	"github.com/moby/buildkit/client/llb"
)

// SharingMode says how steps that run at the same time use one cache. The
// zero value is Shared. BuildKit leaves it out of the step's cache key.
type SharingMode int

const (
	// Shared lets steps that run at the same time use the cache together.
	// It is the default.
	Shared SharingMode = iota
	// Private gives each step that runs while the cache is in use a new,
	// empty cache of its own.
	Private
	// Locked makes a step wait until no other step uses the cache. Package
	// managers that lock their own files, such as apt, need it.
	Locked
)

// String returns "shared", "private" or "locked", as Parse and ParseSharing
// read them, or SharingMode(N) for an unknown value.
func (s SharingMode) String() string {
	switch s {
	case Shared:
		return "shared"
	case Private:
		return "private"
	case Locked:
		return "locked"
	}
	return fmt.Sprintf("SharingMode(%d)", int(s))
}

func (s SharingMode) known() bool { return s >= Shared && s <= Locked }

func (s SharingMode) llb() llb.CacheMountSharingMode {
	switch s {
	case Private:
		return llb.CacheMountPrivate
	case Locked:
		return llb.CacheMountLocked
	}
	return llb.CacheMountShared
}

// ParseSharing reads "shared", "private" or "locked", in any case. Any
// other text is an *Error.
func ParseSharing(s string) (SharingMode, error) {
	for _, m := range []SharingMode{Shared, Private, Locked} {
		if strings.EqualFold(s, m.String()) {
			return m, nil
		}
	}
	reason := fmt.Sprintf("sharing %q is not one of shared, private or locked", s)
	if m := suggest(strings.ToLower(s), []string{"shared", "private", "locked"}); m != "" {
		reason += fmt.Sprintf(" (did you mean %q?)", m)
	}
	return Shared, &Error{Field: "sharing", Value: s, Reason: reason}
}

// Sharing sets how steps that run at the same time use the cache. The
// default is Shared. BuildKit leaves it out of the step's cache key.
func Sharing(mode SharingMode) CacheOption { return sharingOption(mode) }

type sharingOption SharingMode

func (o sharingOption) applyCache(m *CacheMount) { m.sharing = SharingMode(o) }
