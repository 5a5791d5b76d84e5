package mounts

// CacheOption configures a mount made by Cache: ID, Sharing, Owner, Mode,
// SeedFrom, ReadOnly and ReadWrite.
type CacheOption interface{ applyCache(*CacheMount) }

// BindOption configures a mount made by Bind: SourcePath, ReadWrite and
// ReadOnly.
type BindOption interface{ applyBind(*BindMount) }

// TmpfsOption configures a mount made by Tmpfs: Size.
type TmpfsOption interface{ applyTmpfs(*TmpfsMount) }

// SecretOption configures a mount made by Secret: Target, Env, Owner, Mode
// and Required.
type SecretOption interface{ applySecret(*SecretMount) }

// SSHOption configures a mount made by SSH: ID, Target, Owner, Mode and
// Required.
type SSHOption interface{ applySSH(*SSHMount) }

// IDOption is the option ID returns; it applies to Cache and SSH mounts.
// The zero IDOption changes nothing.
type IDOption struct {
	id  string
	set bool
}

// ID names the cache a Cache mount uses, or the SSH agent or key an SSH
// mount forwards. Mounts with the same cache id share one cache, across
// steps and across builds on the same builder. The default for a cache is
// its cleaned target path; for SSH it is "default". An SSH id is part of
// the step's cache key; a cache id is not, as BuildKit leaves it out (see
// Cache). An empty id is an error.
func ID(id string) IDOption { return IDOption{id: id, set: true} }

func (o IDOption) applyCache(m *CacheMount) {
	if o.set {
		m.id, m.idSet = o.id, true
	}
}

func (o IDOption) applySSH(m *SSHMount) {
	if o.set {
		m.id = o.id
	}
}

// FileOption is the option Owner and Mode return; it applies to Cache,
// Secret and SSH mounts. The zero FileOption changes nothing.
type FileOption struct {
	kind     uint8 // 0 nothing, 1 owner, 2 mode
	uid, gid int
	mode     int
}

// Owner sets the numeric owner of the cache directory, the secret file or
// the SSH socket a mount puts in the step. The default is uid 0 and gid 0.
// Owner is part of the step's cache key. Ids must be 0 to 4294967295.
//
// A cache mount has no owner of its own: Owner (like Mode) makes the mount
// show the /cache directory of a small scratch stage that creates it with
// that owner, so the first use of the cache starts from that directory.
// A cache mount without Owner or Mode does not have that stage. Owner
// cannot be combined with SeedFrom.
func Owner(uid, gid int) FileOption { return FileOption{kind: 1, uid: uid, gid: gid} }

// Mode sets the permission bits of the cache directory, the secret file or
// the SSH socket a mount puts in the step, given in octal such as 0o755.
// The defaults are 0o755 for a cache directory made with Owner or Mode,
// 0o400 for a secret file and 0o600 for an SSH socket. Mode is part of the
// step's cache key. It must be 0 to 0o7777, and 0 to 0o777 for a cache
// directory. On a cache mount it works as Owner does.
func Mode(mode int) FileOption { return FileOption{kind: 2, mode: mode} }

func (o FileOption) applyCache(m *CacheMount) {
	switch o.kind {
	case 1:
		m.ownerSet, m.uid, m.gid = true, o.uid, o.gid
	case 2:
		m.modeSet, m.mode = true, o.mode
	}
}

func (o FileOption) applySecret(m *SecretMount) {
	switch o.kind {
	case 1:
		m.ownerSet, m.uid, m.gid = true, o.uid, o.gid
	case 2:
		m.modeSet, m.mode = true, o.mode
	}
}

func (o FileOption) applySSH(m *SSHMount) {
	switch o.kind {
	case 1:
		m.uid, m.gid = o.uid, o.gid
	case 2:
		m.mode = o.mode
	}
}

// TargetOption is the option Target returns; it applies to Secret and SSH
// mounts. The zero TargetOption changes nothing.
type TargetOption struct {
	target string
	set    bool
}

// Target sets the absolute path of the secret file or the SSH socket. The
// default for a secret is /run/secrets/ followed by the last element of its
// id; for SSH it is /run/buildkit/ssh_agent.0, so two SSH mounts in one step
// need their own targets. The target is part of the step's cache key. A
// secret given both Target and Env is an error.
func Target(path string) TargetOption { return TargetOption{target: path, set: true} }

func (o TargetOption) applySecret(m *SecretMount) {
	if o.set {
		m.target, m.targetSet = o.target, true
	}
}

func (o TargetOption) applySSH(m *SSHMount) {
	if o.set {
		m.target = o.target
	}
}

// RequiredOption is the option Required returns; it applies to Secret and
// SSH mounts. The zero RequiredOption changes nothing.
type RequiredOption struct{ set bool }

// Required makes the step fail when the build does not provide the secret
// or the SSH agent. By default a mount is optional: without what it names,
// the step runs without the file or socket (or the environment variable).
// Required is part of the step's cache key.
func Required() RequiredOption { return RequiredOption{set: true} }

func (o RequiredOption) applySecret(m *SecretMount) {
	if o.set {
		m.required = true
	}
}

func (o RequiredOption) applySSH(m *SSHMount) {
	if o.set {
		m.required = true
	}
}

// AccessOption is the option ReadOnly and ReadWrite return; it applies to
// Cache and Bind mounts. The zero AccessOption changes nothing.
type AccessOption struct {
	readOnly bool
	set      bool
}

// ReadOnly makes the step unable to write to the mount. Bind mounts are
// read-only by default; cache mounts are read-write by default, and a
// read-only cache mount sees the cache without changing it. Access is part
// of the step's cache key. When ReadOnly and ReadWrite are both given, the
// last one wins.
func ReadOnly() AccessOption { return AccessOption{readOnly: true, set: true} }

// ReadWrite lets the step write to the mount. For a bind mount the writes
// are thrown away when the step ends: they change neither the source nor
// the step's result. Cache mounts are read-write by default. Access is part
// of the step's cache key. When ReadOnly and ReadWrite are both given, the
// last one wins.
func ReadWrite() AccessOption { return AccessOption{readOnly: false, set: true} }

func (o AccessOption) applyCache(m *CacheMount) {
	if o.set {
		m.readOnly = o.readOnly
	}
}

func (o AccessOption) applyBind(m *BindMount) {
	if o.set {
		m.readOnly = o.readOnly
	}
}
