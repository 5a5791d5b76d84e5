package mounts

import (
	"github.com/moby/buildkit/client/llb"
)

// SSHMount gives a step a socket to an SSH agent (or keys) the build
// forwards, made by SSH. It is an immutable value.
type SSHMount struct {
	id       string
	target   string
	uid, gid int
	mode     int
	required bool
}

var (
	_ llb.RunOption = (*SSHMount)(nil)
	_ Mount         = (*SSHMount)(nil)
)

// defaultSSHTarget is where the SSH socket goes when no Target is given.
const defaultSSHTarget = "/run/buildkit/ssh_agent.0"

// SSH gives a step a socket to the SSH agent the build forwards under an
// id, "default" unless ID gives another. The socket is at
// /run/buildkit/ssh_agent.0 unless Target gives another path, owned by uid
// 0 and gid 0 with mode 0o600. SSH_AUTH_SOCK is set to the socket of the
// first SSH mount given to the step, unless the step sets it. By default the mount is optional: when the build forwards no
// agent under the id, the step runs without the socket; Required makes the
// step fail instead.
//
// The id, target, owner, mode and Required are part of the step's cache
// key; the agent's keys are not. Two SSH mounts in one step need their own
// targets.
func SSH(opts ...SSHOption) Mount {
	m := &SSHMount{id: "default", target: defaultSSHTarget, mode: 0o600}
	for _, o := range opts {
		if o != nil {
			o.applySSH(m)
		}
	}
	return m
}

// ID returns the id of the forwarded agent.
func (m *SSHMount) ID() string {
	if m == nil {
		return ""
	}
	return m.id
}

// Target returns the cleaned path of the socket, or the target as given
// when it is not absolute.
func (m *SSHMount) Target() string {
	if m == nil {
		return ""
	}
	return cleanTarget(m.target)
}

// Validate returns nil when the mount is usable, and otherwise every
// problem with it, each an *Error.
func (m *SSHMount) Validate() error {
	if m == nil {
		return &Error{Kind: "ssh", Reason: "mount is nil; make one with SSH"}
	}
	c := &checker{kind: "ssh", mount: m.id}
	if m.id == "" {
		c.add("id", "", "id is empty; leave out ID to use \"default\"")
	}
	checkID(c, m.id)
	checkTarget(c, "target", m.target)
	checkOwner(c, m.uid, m.gid)
	checkMode(c, m.mode, 0o7777)
	return c.err()
}

// SetRunOption adds the SSH socket to a step. When the mount is not usable
// it adds nothing and makes the step fail to marshal with the error
// Validate returns.
func (m *SSHMount) SetRunOption(ei *llb.ExecInfo) {
	if err := m.Validate(); err != nil {
		poison(ei, err)
		return
	}
	opts := []llb.SSHOption{llb.SSHID(m.id), llb.SSHSocketOpt(m.Target(), m.uid, m.gid, m.mode)}
	if !m.required {
		opts = append(opts, llb.SSHOptional)
	}
	llb.AddSSHSocket(opts...).SetRunOption(ei)
}

// String returns the mount in RUN --mount syntax, leaving out values that
// are the defaults, for example "type=ssh" or "type=ssh,id=github,required".
func (m *SSHMount) String() string {
	if m == nil {
		return "<nil>"
	}
	f := fields{"type=ssh"}
	if m.id != "default" {
		f.add("id", m.id)
	}
	if t := m.Target(); t != defaultSSHTarget {
		f.add("target", t)
	}
	if m.required {
		f = append(f, "required")
	}
	if m.uid != 0 {
		f.addInt("uid", m.uid)
	}
	if m.gid != 0 {
		f.addInt("gid", m.gid)
	}
	if m.mode != 0o600 {
		f.add("mode", octal(m.mode))
	}
	return f.String()
}
