package mounts

import (
	"errors"
	"fmt"
	"strings"
)

// Error is the error this package returns for a mount that cannot be used or
// for text that Parse or ParseSharing cannot read. It names the mount, the
// field at fault and its value, and says what to do. Match it with
// errors.As; Validate may join several into one error, and errors.As finds
// the first of them.
type Error struct {
	// Kind is the kind of mount: "cache", "bind", "tmpfs", "secret" or
	// "ssh". It is "" when the text given to Parse or ParseSharing could not
	// be read as a mount or a sharing mode.
	Kind string
	// Mount names the mount within its kind, as it was given: the target of
	// a cache, bind or tmpfs mount, the id of a secret or SSH mount.
	Mount string
	// Field is the option or Parse key at fault, such as "target", "id",
	// "sharing", "uid", "mode", "size" or "env".
	Field string
	// Value is the offending value, as text.
	Value string
	// Reason says what is wrong and what to do about it.
	Reason string
	// Input is the text given to Parse, or "" for an error that did not
	// come from Parse.
	Input string
}

// Error returns the message: "mounts: ", then `parsing "<Input>": ` for an
// error from Parse, then `<Kind> mount "<Mount>": ` when the kind is known,
// then the Reason.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("mounts: ")
	if e.Input != "" {
		fmt.Fprintf(&b, "parsing %q: ", e.Input)
	}
	if e.Kind != "" {
		fmt.Fprintf(&b, "%s mount %q: ", e.Kind, e.Mount)
	}
	b.WriteString(e.Reason)
	return b.String()
}

// checker gathers the problems of one mount.
type checker struct {
	kind, mount string
	errs        []*Error
}

func (c *checker) add(field, value, format string, args ...any) {
	c.errs = append(c.errs, &Error{
		Kind:   c.kind,
		Mount:  c.mount,
		Field:  field,
		Value:  value,
		Reason: fmt.Sprintf(format, args...),
	})
}

func (c *checker) err() error {
	return join(c.errs)
}

// join returns nil, the only error, or all of them joined.
func join[E error](errs []E) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	all := make([]error, len(errs))
	for i, e := range errs {
		all[i] = e
	}
	return errors.Join(all...)
}

// split lists the errors joined in err, in order.
func split(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, inner := range j.Unwrap() {
			out = append(out, split(inner)...)
		}
		return out
	}
	return []error{err}
}
