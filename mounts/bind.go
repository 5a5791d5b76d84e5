package mounts

import (
	"github.com/moby/buildkit/client/llb"
)

// BindMount shows a directory of another stage, an image or the build
// context inside a step, made by Bind. It is an immutable value.
type BindMount struct {
	target     string
	from       Source
	sourcePath string
	readOnly   bool
}

var (
	_ llb.RunOption = (*BindMount)(nil)
	_ Mount         = (*BindMount)(nil)
)

// Bind shows the filesystem of from at target, an absolute path, for one
// step. The mount is read-only by default; ReadWrite lets the step write to
// it, and the writes are thrown away when the step ends. The whole of from
// is shown unless SourcePath picks a directory inside it. The target,
// source, source path and access are all part of the step's cache key. A
// nil from is an error.
func Bind(target string, from Source, opts ...BindOption) Mount {
	m := &BindMount{target: target, from: from, sourcePath: "/", readOnly: true}
	for _, o := range opts {
		if o != nil {
			o.applyBind(m)
		}
	}
	return m
}

// SourcePath picks the directory (or file) inside the source to show,
// relative to its root; "" and "/" are the root, which is the default. It is
// part of the step's cache key. A path with ".." is an error.
func SourcePath(path string) BindOption { return sourcePathOption(path) }

type sourcePathOption string

func (o sourcePathOption) applyBind(m *BindMount) { m.sourcePath = string(o) }

// Target returns the cleaned target path, or the target as given when it
// is not absolute.
func (m *BindMount) Target() string {
	if m == nil {
		return ""
	}
	return cleanTarget(m.target)
}

// Validate returns nil when the mount is usable, and otherwise every
// problem with it, each an *Error.
func (m *BindMount) Validate() error {
	if m == nil {
		return &Error{Kind: "bind", Reason: "mount is nil; make one with Bind"}
	}
	c := &checker{kind: "bind", mount: m.target}
	checkTarget(c, "target", m.target)
	if isNil(m.from) {
		c.add("from", "<nil>", "source is nil; pass the stage to mount, or FromState(llb.Local(\"context\")) for the build context")
	}
	checkSourcePath(c, "source", m.sourcePath)
	return c.err()
}

// SetRunOption adds the bind mount to a step. When the mount is not usable
// it adds nothing and makes the step fail to marshal with the error
// Validate returns.
func (m *BindMount) SetRunOption(ei *llb.ExecInfo) {
	if err := m.Validate(); err != nil {
		poison(ei, err)
		return
	}
	var opts []llb.MountOption
	if m.readOnly {
		opts = append(opts, llb.Readonly)
	} else {
		opts = append(opts, llb.ForceNoOutput)
	}
	if p := cleanSourcePath(m.sourcePath); p != "/" {
		opts = append(opts, llb.SourcePath(p))
	}
	llb.AddMount(m.Target(), m.from.State(), opts...).SetRunOption(ei)
}

// String returns the mount in RUN --mount syntax, leaving out values that
// are the defaults, for example "type=bind,target=/src,from=builder,source=/out,rw".
// A bind of the build context has no from; a source with no name is written
// as from=<unnamed>.
func (m *BindMount) String() string {
	if m == nil {
		return "<nil>"
	}
	f := fields{"type=bind", "target=" + m.Target()}
	if name := sourceName(m.from); name != "" {
		f.add("from", name)
	}
	if p := cleanSourcePath(m.sourcePath); p != "/" {
		f.add("source", p)
	}
	if !m.readOnly {
		f = append(f, "rw")
	}
	return f.String()
}
