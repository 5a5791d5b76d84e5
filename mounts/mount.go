package mounts

import (
	"context"
	"fmt"
	"path"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/moby/buildkit/client/llb"
)

// Source is anything a mount can take its contents from: a build stage, or
// any llb.State wrapped by FromState. A Source that also has a method
// Name() string is written by that name in a mount's String (as from=NAME);
// Named gives any Source a name. Which Source a mount uses is part of the
// step's cache key.
type Source interface {
	// State returns the filesystem the mount shows.
	State() llb.State
}

// FromState wraps a raw llb.State as a Source. The Source has no name, so a
// mount using it is written as from=<unnamed> by String; use Named to give
// it one. Sources from FromState and Named are pointers, so they can be
// compared and used as map keys.
func FromState(s llb.State) Source {
	return &stateSource{st: s}
}

// Named returns src under a name, which a mount's String writes as
// from=NAME and which Parse resolves when the same name is given to
// WithStages. The name is only a label: it does not change the cache key.
// Named returns nil when src is nil, and src unchanged when name is "".
func Named(name string, src Source) Source {
	if isNil(src) {
		return nil
	}
	if name == "" {
		return src
	}
	return &namedSource{name: name, src: src}
}

type stateSource struct{ st llb.State }

func (s *stateSource) State() llb.State { return s.st }

type namedSource struct {
	name string
	src  Source
}

func (s *namedSource) State() llb.State { return s.src.State() }
func (s *namedSource) Name() string     { return s.name }

// contextSource is the build context, which a bind mount without from=
// shows in Parse.
type contextSource struct{}

func (contextSource) State() llb.State { return llb.Local("context") }

// unnamed is how String writes a Source that has no name.
const unnamed = "<unnamed>"

// sourceName returns the name String writes for src after from=, or "" for
// the build context.
func sourceName(src Source) string {
	if isNil(src) {
		return "<nil>"
	}
	switch s := src.(type) {
	case contextSource:
		return ""
	case interface{ Name() string }:
		if n := s.Name(); n != "" {
			return n
		}
	}
	return unnamed
}

// isNil reports whether src is nil or a nil pointer, map, slice, func or
// channel in an interface.
func isNil(src Source) bool {
	if src == nil {
		return true
	}
	v := reflect.ValueOf(src)
	switch v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan, reflect.Interface:
		return v.IsNil()
	}
	return false
}

// Mount is a mount for one build step: Cache, Bind, Tmpfs, Secret or SSH
// make one, Parse reads one. Mounts are immutable values. Every Mount is an
// llb.RunOption, so it can be passed to a raw llb.State.Run. An invalid
// Mount adds nothing to the step; instead it makes the step fail to marshal
// with the error its Validate method returns, so validate first to see the
// problem early.
type Mount interface {
	llb.RunOption
	// Target returns the cleaned absolute path where the mount appears in
	// the step, or the target as given when it is not a usable path. It is
	// "" for a secret exposed as an environment variable.
	Target() string
	// Validate returns nil when the mount is usable, and otherwise an
	// error that names the mount, the value at fault and what to do.
	Validate() error
	// String returns the mount in the syntax of a Dockerfile RUN --mount
	// flag, without the flag name; Parse reads it back to a mount with the
	// same String.
	String() string
}

// Validate checks the mounts of one step: each mount's own Validate, a nil
// Mount, and two mounts with the same target or two secrets exposed as the
// same environment variable. It returns nil when all of them are usable,
// and otherwise every problem found, joined: each is an *Error, except the
// errors that a Mount implemented outside this package returns, which are
// kept as they are.
func Validate(ms ...Mount) error {
	var errs []error
	targets := map[string]int{}
	envs := map[string]int{}
	for i, m := range ms {
		if m == nil {
			errs = append(errs, &Error{Field: "mount", Reason: fmt.Sprintf("mount %d of %d is nil; leave it out", i+1, len(ms))})
			continue
		}
		errs = append(errs, split(m.Validate())...)
		kind, name := describe(m)
		if t := m.Target(); path.IsAbs(t) {
			t = path.Clean(t)
			if j, ok := targets[t]; ok {
				errs = append(errs, &Error{Kind: kind, Mount: name, Field: "target", Value: t,
					Reason: fmt.Sprintf("target %q is also the target of %s (mounts %d and %d); give each mount its own target", t, label(ms[j]), j+1, i+1)})
			} else {
				targets[t] = i
			}
		}
		if s, ok := m.(*SecretMount); ok && s != nil && s.envSet {
			if j, ok := envs[s.env]; ok {
				errs = append(errs, &Error{Kind: kind, Mount: name, Field: "env", Value: s.env,
					Reason: fmt.Sprintf("environment variable %q is also set by secret %q (mounts %d and %d); give each secret its own variable", s.env, ms[j].(*SecretMount).id, j+1, i+1)})
			} else {
				envs[s.env] = i
			}
		}
	}
	return join(errs)
}

// describe returns the kind and name an *Error uses for m.
func describe(m Mount) (kind, name string) {
	switch m := m.(type) {
	case *CacheMount:
		return "cache", m.Target()
	case *BindMount:
		return "bind", m.Target()
	case *TmpfsMount:
		return "tmpfs", m.Target()
	case *SecretMount:
		if m == nil {
			return "secret", ""
		}
		return "secret", m.id
	case *SSHMount:
		if m == nil {
			return "ssh", ""
		}
		return "ssh", m.id
	}
	return "", m.Target()
}

// label names m in a message, such as `cache mount "/root/.cache"`.
func label(m Mount) string {
	kind, name := describe(m)
	if kind == "" {
		return fmt.Sprintf("mount %q", name)
	}
	return fmt.Sprintf("%s mount %q", kind, name)
}

// poison makes the step fail to marshal with err, for a mount that is not
// usable.
func poison(ei *llb.ExecInfo, err error) {
	ei.State = ei.State.Async(func(context.Context, llb.State, *llb.Constraints) (llb.State, error) {
		return llb.State{}, err
	})
}

// givePath says what to give instead of a path that is not valid UTF-8 or
// holds a NUL byte.
const givePath = "give a path of valid UTF-8 without NUL bytes"

// checkTarget adds a problem when raw is not a usable absolute mount target.
func checkTarget(c *checker, field, raw string) {
	switch {
	case raw == "":
		c.add(field, raw, "%s is empty; give the absolute path where the mount appears in the step", field)
	case !utf8.ValidString(raw):
		c.add(field, raw, "%s %q is not valid UTF-8; %s", field, raw, givePath)
	case strings.ContainsRune(raw, 0):
		c.add(field, raw, "%s %q contains a NUL byte; %s", field, raw, givePath)
	case !path.IsAbs(raw):
		if s := path.Clean("/" + raw); s != "/" {
			c.add(field, raw, "%s must be an absolute path (did you mean %q?)", field, s)
		} else {
			c.add(field, raw, "%s must be an absolute path", field)
		}
	case hasDotDot(raw):
		if s := path.Clean(raw); s != "/" {
			c.add(field, raw, "%s must not contain \"..\" (did you mean %q?)", field, s)
		} else {
			c.add(field, raw, "%s must not contain \"..\"", field)
		}
	case path.Clean(raw) == "/":
		c.add(field, raw, "%s %q would cover the step's root filesystem; mount at a directory below it", field, raw)
	}
}

// checkSourcePath adds a problem when raw is not a usable path inside a
// source.
func checkSourcePath(c *checker, field, raw string) {
	switch {
	case !utf8.ValidString(raw):
		c.add(field, raw, "%s %q is not valid UTF-8; %s", field, raw, givePath)
	case strings.ContainsRune(raw, 0):
		c.add(field, raw, "%s %q contains a NUL byte; %s", field, raw, givePath)
	case hasDotDot(raw):
		c.add(field, raw, "%s %q must not contain \"..\", which would leave the source (did you mean %q?)", field, raw, cleanSourcePath(raw))
	}
}

// checkID adds a problem when a non-empty id cannot be sent to a builder.
func checkID(c *checker, id string) {
	if !utf8.ValidString(id) {
		c.add("id", id, "id %q is not valid UTF-8; give an id of valid UTF-8, such as %q", id, idExamples[c.kind])
	}
}

// idExamples are ids that messages give as examples, by kind of mount.
var idExamples = map[string]string{
	"cache":  "go-build",
	"secret": "npmrc",
	"ssh":    "github",
}

// cleanSourcePath returns raw as a clean absolute path; "" is "/".
func cleanSourcePath(raw string) string {
	return path.Join("/", raw)
}

func hasDotDot(p string) bool {
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return true
		}
	}
	return false
}

// cleanTarget returns raw cleaned when it is absolute, and raw otherwise.
func cleanTarget(raw string) string {
	if path.IsAbs(raw) {
		return path.Clean(raw)
	}
	return raw
}

// maxID is the largest uid or gid.
const maxID = 1<<32 - 1

func checkOwner(c *checker, uid, gid int) {
	for _, f := range []struct {
		name string
		v    int
	}{{"uid", uid}, {"gid", gid}} {
		switch {
		case f.v < 0:
			c.add(f.name, fmt.Sprint(f.v), "%s %d is negative; use 0 to %d", f.name, f.v, int64(maxID))
		case int64(f.v) > maxID:
			c.add(f.name, fmt.Sprint(f.v), "%s %d is larger than %d; use 0 to %d, such as 1000", f.name, f.v, int64(maxID), int64(maxID))
		}
	}
}

func checkMode(c *checker, mode, max int) {
	if mode < 0 || mode > max {
		c.add("mode", octal(mode), "mode %s is outside 0 to %s", octal(mode), octal(max))
	}
}

// octal writes a mode the way Parse reads it.
func octal(mode int) string {
	return fmt.Sprintf("%#o", mode)
}
