package mounts

import (
	"fmt"

	"github.com/moby/buildkit/client/llb"
)

// TmpfsMount is an empty in-memory filesystem for one step, made by Tmpfs.
// It is an immutable value.
type TmpfsMount struct {
	target string
	size   int64
}

var (
	_ llb.RunOption = (*TmpfsMount)(nil)
	_ Mount         = (*TmpfsMount)(nil)
)

// Tmpfs mounts an empty in-memory filesystem at target, an absolute path.
// What the step writes there is gone when it ends. The default size limit
// is the kernel's (half of the memory); Size sets another. The target and
// size are part of the step's cache key.
func Tmpfs(target string, opts ...TmpfsOption) Mount {
	m := &TmpfsMount{target: target}
	for _, o := range opts {
		if o != nil {
			o.applyTmpfs(m)
		}
	}
	return m
}

// Size limits a tmpfs mount to bytes. The default, 0, leaves the kernel's
// limit. It is part of the step's cache key. A negative size is an error.
func Size(bytes int64) TmpfsOption { return sizeOption(bytes) }

type sizeOption int64

func (o sizeOption) applyTmpfs(m *TmpfsMount) { m.size = int64(o) }

// Target returns the cleaned target path, or the target as given when it
// is not absolute.
func (m *TmpfsMount) Target() string {
	if m == nil {
		return ""
	}
	return cleanTarget(m.target)
}

// Size returns the size limit in bytes; 0 is the kernel's limit.
func (m *TmpfsMount) Size() int64 {
	if m == nil {
		return 0
	}
	return m.size
}

// Validate returns nil when the mount is usable, and otherwise every
// problem with it, each an *Error.
func (m *TmpfsMount) Validate() error {
	if m == nil {
		return &Error{Kind: "tmpfs", Reason: "mount is nil; make one with Tmpfs"}
	}
	c := &checker{kind: "tmpfs", mount: m.target}
	checkTarget(c, "target", m.target)
	if m.size < 0 {
		c.add("size", fmt.Sprint(m.size), "size %d is negative; use 0 for the kernel's limit or a number of bytes", m.size)
	}
	return c.err()
}

// SetRunOption adds the tmpfs mount to a step. When the mount is not
// usable it adds nothing and makes the step fail to marshal with the error
// Validate returns.
func (m *TmpfsMount) SetRunOption(ei *llb.ExecInfo) {
	if err := m.Validate(); err != nil {
		poison(ei, err)
		return
	}
	llb.AddMount(m.Target(), llb.Scratch(), llb.Tmpfs(llb.TmpfsSize(m.size))).SetRunOption(ei)
}

// String returns the mount in RUN --mount syntax, for example
// "type=tmpfs,target=/tmp,size=64m". The size is written with the largest
// binary unit (k, m, g, t, p) that divides it, or in bytes.
func (m *TmpfsMount) String() string {
	if m == nil {
		return "<nil>"
	}
	f := fields{"type=tmpfs", "target=" + m.Target()}
	if m.size != 0 {
		f.add("size", formatSize(m.size))
	}
	return f.String()
}
