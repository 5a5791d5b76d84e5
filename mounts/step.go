package mounts

import (
	"strings"

	"github.com/moby/buildkit/client/llb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// StepOption is an llb.RunOption that describes itself to the build step it
// is given to. Every Mount made by this package is one, and so is every
// cache.Preset; an option of another package becomes one by implementing
// these methods.
//
// The build package's Stage.Run takes any llb.RunOption. For a StepOption
// it checks, before any builder is contacted, the option's own Validate and
// then the mounts of all the step's options together with [Validate], so
// that two options mounting one target, or two secrets set as one
// variable, are found; it asks for Warnings with the step's command; and
// each time the graph is marshalled it adds ForStep's result to the step
// instead of the option. A raw llb.State.Run uses only SetRunOption.
type StepOption interface {
	llb.RunOption
	// Validate returns nil when the option is usable, and otherwise every
	// problem with it.
	Validate() error
	// Mounts returns the mounts the option adds to a step, as values of
	// this package: a Mount returns itself, a preset its caches and files.
	// The build package checks them with [Validate]. Each call returns a
	// new slice.
	Mounts() []Mount
	// ForStep returns the option as it applies to the step s: a preset
	// names its caches for the step's platform. A Mount returns itself.
	ForStep(s Step) StepOption
	// Warnings returns what the command args (a step's argv) does that
	// defeats the option, one message each, such as pip's --no-cache-dir
	// under a pip cache; nil when nothing does. It never changes the step.
	Warnings(args []string) []string
}

// Step is what a build step tells its options when its graph is
// marshalled. Fields may be added; a StepOption reads the ones it needs.
type Step struct {
	// Args is the step's command as argv, such as
	// ["/bin/sh", "-c", "apt-get update"].
	Args []string
	// Platform is the platform the step runs for.
	Platform ocispecs.Platform
	// Env is the step's environment, "NAME=value": the image's, then what
	// the stage sets. Without a builder the image's is not known.
	Env []string
	// User is the user the step runs as, as the image or the stage sets it
	// (a name, uid, or uid:gid); "" for root.
	User string
	// UID and GID are User's numeric ids; -1 when they are not known (a
	// name that no passwd entry Larder read holds). Root is 0 and 0.
	UID, GID int
	// Home is User's home directory: $HOME of Env when set, else User's
	// passwd entry; "" when it is not known.
	Home string
}

// Getenv returns the value of the variable name in s.Env, "" when it is
// not set.
func (s Step) Getenv(name string) string {
	v := ""
	for _, kv := range s.Env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == name {
			v = val
		}
	}
	return v
}

var (
	_ StepOption = (*CacheMount)(nil)
	_ StepOption = (*BindMount)(nil)
	_ StepOption = (*TmpfsMount)(nil)
	_ StepOption = (*SecretMount)(nil)
	_ StepOption = (*SSHMount)(nil)
)

// Mounts returns m alone.
func (m *CacheMount) Mounts() []Mount { return []Mount{m} }

// ForStep returns m: a cache mount is the same for every step.
func (m *CacheMount) ForStep(Step) StepOption { return m }

// Warnings returns nil: a cache mount does not read its step's command.
func (m *CacheMount) Warnings([]string) []string { return nil }

// Mounts returns m alone.
func (m *BindMount) Mounts() []Mount { return []Mount{m} }

// ForStep returns m: a bind mount is the same for every step.
func (m *BindMount) ForStep(Step) StepOption { return m }

// Warnings returns nil: a bind mount does not read its step's command.
func (m *BindMount) Warnings([]string) []string { return nil }

// Mounts returns m alone.
func (m *TmpfsMount) Mounts() []Mount { return []Mount{m} }

// ForStep returns m: a tmpfs mount is the same for every step.
func (m *TmpfsMount) ForStep(Step) StepOption { return m }

// Warnings returns nil: a tmpfs mount does not read its step's command.
func (m *TmpfsMount) Warnings([]string) []string { return nil }

// Mounts returns m alone.
func (m *SecretMount) Mounts() []Mount { return []Mount{m} }

// ForStep returns m: a secret mount is the same for every step.
func (m *SecretMount) ForStep(Step) StepOption { return m }

// Warnings returns nil: a secret mount does not read its step's command.
func (m *SecretMount) Warnings([]string) []string { return nil }

// Mounts returns m alone.
func (m *SSHMount) Mounts() []Mount { return []Mount{m} }

// ForStep returns m: an SSH mount is the same for every step.
func (m *SSHMount) ForStep(Step) StepOption { return m }

// Warnings returns nil: an SSH mount does not read its step's command.
func (m *SSHMount) Warnings([]string) []string { return nil }
