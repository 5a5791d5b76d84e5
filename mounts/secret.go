package mounts

import (
	"fmt"
	"path"
	"strings"
	"unicode/utf8"

	"github.com/moby/buildkit/client/llb"
)

// SecretMount gives a step a secret the build provides, as a file or as an
// environment variable, made by Secret. It is an immutable value.
type SecretMount struct {
	id        string
	target    string
	targetSet bool
	env       string
	envSet    bool
	ownerSet  bool
	uid, gid  int
	modeSet   bool
	mode      int
	required  bool
}

var (
	_ llb.RunOption = (*SecretMount)(nil)
	_ Mount         = (*SecretMount)(nil)
)

// secretDir is where a secret file goes when no Target is given.
const secretDir = "/run/secrets/"

// Secret gives a step the secret the build provides under id. By default it
// is a file at /run/secrets/ followed by the last element of id, owned by
// uid 0 and gid 0 with mode 0o400; Target, Owner and Mode change that, and
// Env makes it an environment variable instead. By default the secret is
// optional: when the build does not provide it, the step runs without it;
// Required makes the step fail instead.
//
// The id, target, variable name, owner, mode and Required are part of the
// step's cache key; the secret's value is not, and it never becomes part of
// the step's result. An empty id is an error.
func Secret(id string, opts ...SecretOption) Mount {
	m := &SecretMount{id: id, mode: 0o400}
	for _, o := range opts {
		if o != nil {
			o.applySecret(m)
		}
	}
	return m
}

// Env exposes a secret as the environment variable name instead of as a
// file. The default is a file. The name is part of the step's cache key. A
// name that is not letters, digits and underscores starting with a letter
// or underscore is an error, and so is Env together with Target, Owner or
// Mode, which apply to a file.
func Env(name string) SecretOption { return envOption(name) }

type envOption string

func (o envOption) applySecret(m *SecretMount) { m.env, m.envSet = string(o), true }

// ID returns the id of the secret.
func (m *SecretMount) ID() string {
	if m == nil {
		return ""
	}
	return m.id
}

// Env returns the name of the environment variable the secret is exposed
// as, or "" for a secret file.
func (m *SecretMount) Env() string {
	if m == nil {
		return ""
	}
	return m.env
}

// Target returns the cleaned path of the secret file, or the target as
// given when it is not absolute. It is "" for a secret exposed as an
// environment variable.
func (m *SecretMount) Target() string {
	switch {
	case m == nil:
		return ""
	case m.targetSet:
		return cleanTarget(m.target)
	case m.envSet:
		return ""
	}
	return m.defaultTarget()
}

func (m *SecretMount) defaultTarget() string {
	return cleanTarget(secretDir + path.Base(m.id))
}

// Validate returns nil when the mount is usable, and otherwise every
// problem with it, each an *Error.
func (m *SecretMount) Validate() error {
	if m == nil {
		return &Error{Kind: "secret", Reason: "mount is nil; make one with Secret"}
	}
	c := &checker{kind: "secret", mount: m.id}
	if m.id == "" {
		c.add("id", "", "id is empty; give the id under which the build provides the secret")
	}
	checkID(c, m.id)
	switch {
	case m.targetSet:
		checkTarget(c, "target", m.target)
	case !m.envSet && m.id != "" && utf8.ValidString(m.id):
		if base := path.Base(m.id); base == "." || base == ".." || base == "/" || strings.ContainsRune(base, 0) {
			c.add("id", m.id, "id %q names no file under %s; give Target", m.id, secretDir)
		}
	}
	if m.envSet {
		if !validEnvName(m.env) {
			c.add("env", m.env, "env %q is not a valid environment variable name: use letters, digits and underscores, starting with a letter or underscore", m.env)
		}
		if m.targetSet {
			c.add("env", m.env, "a secret goes to a file (Target %q) or to an environment variable (Env %q), not both; make two secret mounts", m.target, m.env)
		}
		if m.ownerSet {
			c.add("uid", fmt.Sprint(m.uid), "Owner applies to a secret file, not to environment variable %q; leave out Owner, or leave out Env to mount the secret as a file", m.env)
		}
		if m.modeSet {
			c.add("mode", octal(m.mode), "Mode applies to a secret file, not to environment variable %q; leave out Mode, or leave out Env to mount the secret as a file", m.env)
		}
	}
	if m.ownerSet {
		checkOwner(c, m.uid, m.gid)
	}
	if m.modeSet {
		checkMode(c, m.mode, 0o7777)
	}
	return c.err()
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// SetRunOption adds the secret to a step. When the mount is not usable it
// adds nothing and makes the step fail to marshal with the error Validate
// returns.
func (m *SecretMount) SetRunOption(ei *llb.ExecInfo) {
	if err := m.Validate(); err != nil {
		poison(ei, err)
		return
	}
	var opts []llb.SecretOption
	if !m.required {
		opts = append(opts, llb.SecretOptional)
	}
	if m.envSet {
		opts = append(opts, llb.SecretAsEnvName(m.env))
		llb.AddSecretWithDest(m.id, nil, opts...).SetRunOption(ei)
		return
	}
	target := m.Target()
	opts = append(opts, llb.SecretFileOpt(m.uid, m.gid, m.mode))
	llb.AddSecretWithDest(m.id, &target, opts...).SetRunOption(ei)
}

// String returns the mount in RUN --mount syntax, leaving out values that
// are the defaults, for example "type=secret,id=npmrc,target=/root/.npmrc,uid=1000"
// or "type=secret,id=token,env=TOKEN,required".
func (m *SecretMount) String() string {
	if m == nil {
		return "<nil>"
	}
	f := fields{"type=secret"}
	f.add("id", m.id)
	if m.targetSet && (m.envSet || cleanTarget(m.target) != m.defaultTarget()) {
		f.add("target", cleanTarget(m.target))
	}
	if m.envSet {
		f.add("env", m.env)
	}
	if m.required {
		f = append(f, "required")
	}
	if m.uid != 0 || (m.envSet && m.ownerSet) {
		f.addInt("uid", m.uid)
	}
	if m.gid != 0 {
		f.addInt("gid", m.gid)
	}
	if m.mode != 0o400 || (m.envSet && m.modeSet) {
		f.add("mode", octal(m.mode))
	}
	return f.String()
}
