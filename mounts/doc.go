// Package mounts describes what a build step sees besides its root
// filesystem: persistent cache directories (Cache), other stages, images or
// the build context (Bind), scratch memory (Tmpfs), secrets (Secret) and SSH
// agent sockets (SSH).
//
// Each constructor returns a Mount, an immutable value. Required arguments
// are positional and everything else is an option; when an option is given
// twice, the last one wins. Constructors never fail, so mounts can be
// written inline: a mistake such as a relative target, an empty id or an
// unknown sharing mode is kept in the value and reported by its Validate
// method, or by Validate for all the mounts of a step, which also finds two
// mounts with the same target. Every error is an *Error, which names the
// mount, the field at fault and its value, and says what to do.
//
// # Mounts and llb
//
// Every Mount is an llb.RunOption, so mounts work on a raw llb.State.Run as
// well as on the steps of a build:
//
//	st.Run(llb.Shlex("go build ./..."),
//		mounts.Cache("/root/.cache/go-build", mounts.ID("go-build")),
//		mounts.Bind("/src", mounts.FromState(llb.Local("context"))))
//
// The same mount always gives a byte-identical definition. An invalid
// Mount adds nothing to a step; instead the step fails to marshal with the
// error Validate reports, so call Validate first to see the problem before
// the graph is built.
//
// Parse reads the value of a RUN --mount flag, and String writes one, so
// mounts can be logged, stored and read back: Parse(m.String()) gives a
// mount with the same String as m.
//
// # Defaults
//
//   - Cache: the id is the cleaned target path; sharing is Shared; the
//     mount is read-write; a new cache is empty.
//   - Bind: read-only; the whole of the source.
//   - Tmpfs: the kernel's size limit.
//   - Secret: a file at /run/secrets/<last element of the id>, uid 0, gid
//     0, mode 0o400; optional, so a step runs without a secret the build
//     does not provide.
//   - SSH: id "default", a socket at /run/buildkit/ssh_agent.0, uid 0, gid
//     0, mode 0o600; optional.
//
// # Cache keys
//
// Everything a mount holds is part of the definition of its step. Nearly
// all of it is part of the step's cache key too: target, access, source and
// source path, owner, mode, size, variable name, and whether it is
// required. A cache mount's id and sharing are not: BuildKit leaves them
// out of the key (unless the id is the target path and sharing is Shared),
// so a step that changes only its cache id comes from cache. The contents
// of a cache, a secret's value and an agent's keys are not part of the key
// either. Names given to sources with Named or WithStages are labels for
// String and do not change the key.
package mounts
