package remote

import (
	"fmt"
	"strings"
)

// AddressError reports a builder address that can't be dialed as written.
type AddressError struct {
	Address string
	Reason  string
}

func (e *AddressError) Error() string {
	return fmt.Sprintf("remote: address %q: %s", e.Address, e.Reason)
}

// UnreachableError reports a builder that did not answer in time.
type UnreachableError struct {
	Address string
	Err     error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("remote: builder at %s did not answer: %v", e.Address, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// UnsupportedPlatformError reports a platform that no worker of a builder runs.
type UnsupportedPlatformError struct {
	Builder  string
	Platform string
	Have     []string // the platforms the builder runs
}

func (e *UnsupportedPlatformError) Error() string {
	return fmt.Sprintf("remote: builder %s does not run %s (it runs %s)", e.Builder, e.Platform, strings.Join(e.Have, ", "))
}

// StartError reports a local daemon that could not be started, with what is
// missing.
type StartError struct {
	Reason string
	Err    error
	Log    string // the last lines the daemon wrote, if it ran
}

func (e *StartError) Error() string {
	var b strings.Builder
	b.WriteString("remote: cannot start buildkitd: ")
	b.WriteString(e.Reason)
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if e.Log != "" {
		b.WriteString("\nbuildkitd log:\n")
		b.WriteString(e.Log)
	}
	return b.String()
}

func (e *StartError) Unwrap() error { return e.Err }
