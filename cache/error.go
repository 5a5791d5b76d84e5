package cache

import (
	"errors"
	"strconv"
	"strings"
)

// Error reports a cache backend option that is invalid, conflicts with
// another, or is missing. Every error returned by this package is an
// *Error, possibly several joined with errors.Join; use errors.As to reach
// it. An Error never contains a credential.
type Error struct {
	// Backend is the backend's type ("registry", "local", "inline", "gha",
	// "s3"); it is empty for errors not tied to a backend, such as those
	// from ParseMode.
	Backend string
	// Option is what is at fault: for a backend, the attribute by
	// BuildKit's name for it ("mode", "ref", "compression-level"); for a
	// preset or a MountStore, the option by its Go name ("Home", "Sharing",
	// "RegistryStore"). It is empty when the value as a whole is at fault.
	Option string
	// Value is the rejected value as given. It is empty when the value is
	// empty, absent or a credential.
	Value string
	// Reason says what is wrong and how to fix it.
	Reason string
	// Err is the underlying error, if any.
	Err error
}

// Error formats the error as
// `cache: <backend> backend: <option> "<value>": <reason>`, leaving out the
// parts that are empty.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("cache: ")
	if e.Backend != "" {
		b.WriteString(e.Backend)
		b.WriteString(" backend: ")
	}
	if e.Option != "" {
		b.WriteString(e.Option)
		if e.Value != "" {
			b.WriteByte(' ')
			b.WriteString(strconv.Quote(e.Value))
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns e.Err.
func (e *Error) Unwrap() error { return e.Err }

// joinErrs returns nil, the only error in errs, or all of them joined.
func joinErrs(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return errors.Join(errs...)
}
