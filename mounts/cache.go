package mounts

import (
	"encoding/csv"
	"os"
	"path"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/moby/buildkit/client/llb"
)

// CacheMount is a persistent cache directory, made by Cache. It is an
// immutable value.
type CacheMount struct {
	target   string
	id       string
	idSet    bool
	sharing  SharingMode
	readOnly bool
	ownerSet bool
	uid, gid int
	modeSet  bool
	mode     int
	seed     Source
	seedSet  bool
	seedPath string
	regen    []string
}

var (
	_ llb.RunOption = (*CacheMount)(nil)
	_ Mount         = (*CacheMount)(nil)
)

// Cache mounts a persistent cache directory at target, an absolute path.
// What a step writes there stays on the builder for later steps and builds
// that use the same cache id; it never becomes part of the step's result.
//
// The default id is the cleaned target path, so two mounts at the same path
// share a cache; give ID to share a cache between paths or to keep two
// apart. The default sharing is Shared, and the mount is read-write. The
// target, access, owner, mode and seed are part of the step's cache key;
// the cache's contents are not, and neither are the id and sharing:
// BuildKit leaves them out of the key (unless the id is the target path
// and sharing is Shared, as for a Dockerfile's default cache mount), so a
// step that changes only its cache id comes from cache.
func Cache(target string, opts ...CacheOption) Mount {
	m := &CacheMount{target: target, mode: 0o755, seedPath: "/"}
	for _, o := range opts {
		if o != nil {
			o.applyCache(m)
		}
	}
	return m
}

// SeedFrom fills a new cache with the directory at path inside src, so the
// first step to use the cache starts from it. The default is an empty
// cache. The seed is part of the step's cache key, and a seeded cache is
// kept apart from an unseeded one with the same id. path is relative to the
// root of src; "" and "/" are the root. SeedFrom cannot be combined with
// Owner or Mode: the cache takes its owner and mode from the seed.
func SeedFrom(src Source, path string) CacheOption {
	return seedOption{src: src, path: path}
}

type seedOption struct {
	src  Source
	path string
}

func (o seedOption) applyCache(m *CacheMount) {
	m.seed, m.seedSet, m.seedPath = o.src, true, o.path
}

// Regenerable names files in the cache, relative to its root (such as
// "pkgcache.bin"), that the tool rebuilds on its own from the rest of the
// cache when they are missing. A persisted cache (build.PersistCacheMounts)
// leaves them out of what it saves, so that a rebuilt index neither grows
// the stored cache nor counts as a change. The default is none. They are
// not part of the step's definition or cache key, and String does not
// write them. Each call adds to the files of earlier ones.
func Regenerable(files ...string) CacheOption {
	return regenOption(files)
}

type regenOption []string

func (o regenOption) applyCache(m *CacheMount) {
	m.regen = append(m.regen[:len(m.regen):len(m.regen)], o...)
}

// Regenerable returns the files given to [Regenerable], in order. Each
// call returns a new slice.
func (m *CacheMount) Regenerable() []string {
	if m == nil || len(m.regen) == 0 {
		return nil
	}
	return append([]string(nil), m.regen...)
}

// Target returns the cleaned target path, or the target as given when it
// is not absolute.
func (m *CacheMount) Target() string {
	if m == nil {
		return ""
	}
	return cleanTarget(m.target)
}

// ID returns the id of the cache: the one given to ID, or else the cleaned
// target path.
func (m *CacheMount) ID() string {
	if m == nil {
		return ""
	}
	if m.idSet {
		return m.id
	}
	return path.Clean(m.target)
}

// Sharing returns how steps that run at the same time use the cache.
func (m *CacheMount) Sharing() SharingMode {
	if m == nil {
		return Shared
	}
	return m.sharing
}

// Validate returns nil when the mount is usable, and otherwise every
// problem with it, each an *Error.
func (m *CacheMount) Validate() error {
	if m == nil {
		return &Error{Kind: "cache", Reason: "mount is nil; make one with Cache"}
	}
	c := &checker{kind: "cache", mount: m.target}
	checkTarget(c, "target", m.target)
	if m.idSet && m.id == "" {
		c.add("id", "", "id is empty; leave out ID to use the target path as the id")
	}
	checkID(c, m.id)
	if !m.sharing.known() {
		c.add("sharing", m.sharing.String(), "sharing mode %s is unknown; use Shared, Private or Locked", m.sharing)
	}
	if m.ownerSet {
		checkOwner(c, m.uid, m.gid)
	}
	if m.modeSet {
		checkMode(c, m.mode, 0o777)
	}
	for _, f := range m.regen {
		switch {
		case f == "" || f == "." || path.IsAbs(f) || hasDotDot(f) || path.Clean(f) != f:
			c.add("regenerable", f, "regenerable file %q must be a clean path relative to the cache's root, such as \"pkgcache.bin\"", f)
		case !utf8.ValidString(f) || strings.ContainsRune(f, 0):
			c.add("regenerable", f, "regenerable file %q is not valid UTF-8 or contains a NUL byte; %s, relative to the cache's root, such as \"pkgcache.bin\"", f, givePath)
		}
	}
	if m.seedSet {
		if isNil(m.seed) {
			c.add("from", "<nil>", "SeedFrom source is nil; pass the stage to seed the cache from")
		}
		checkSourcePath(c, "source", m.seedPath)
		switch {
		case m.ownerSet:
			c.add("uid", "", "Owner cannot be combined with SeedFrom: a seeded cache takes its owner from the seed directory; leave out Owner and set the owner of that directory in the seed stage")
		case m.modeSet:
			c.add("mode", octal(m.mode), "Mode cannot be combined with SeedFrom: a seeded cache takes its mode from the seed directory; leave out Mode and set the mode of that directory in the seed stage")
		}
	}
	return c.err()
}

// SetRunOption adds the cache mount to a step. When the mount is not
// usable it adds nothing and makes the step fail to marshal with the error
// Validate returns.
func (m *CacheMount) SetRunOption(ei *llb.ExecInfo) {
	if err := m.Validate(); err != nil {
		poison(ei, err)
		return
	}
	st := llb.Scratch()
	opts := []llb.MountOption{llb.AsPersistentCacheDir(m.ID(), m.sharing.llb())}
	if m.readOnly {
		opts = append(opts, llb.Readonly)
	}
	switch {
	case m.seedSet:
		st = m.seed.State()
		if p := cleanSourcePath(m.seedPath); p != "/" {
			opts = append(opts, llb.SourcePath(p))
		}
	case m.ownerSet || m.modeSet:
		st = st.File(llb.Mkdir("/cache", os.FileMode(m.mode), llb.WithUIDGID(m.uid, m.gid)),
			llb.WithCustomName("[internal] setting cache mount permissions"))
		opts = append(opts, llb.SourcePath("/cache"))
	}
	llb.AddMount(m.Target(), st, opts...).SetRunOption(ei)
}

// String returns the mount in RUN --mount syntax, leaving out values that
// are the defaults, for example
// "type=cache,target=/root/.cache,id=go-build,sharing=locked".
func (m *CacheMount) String() string {
	if m == nil {
		return "<nil>"
	}
	f := fields{"type=cache", "target=" + m.Target()}
	if id := m.ID(); m.idSet && id != path.Clean(m.target) {
		f.add("id", id)
	}
	if m.sharing != Shared {
		f.add("sharing", m.sharing.String())
	}
	if m.seedSet {
		f.add("from", sourceName(m.seed))
		if p := cleanSourcePath(m.seedPath); p != "/" {
			f.add("source", p)
		}
	}
	if m.readOnly {
		f = append(f, "ro")
	}
	if m.ownerSet {
		f.addInt("uid", m.uid)
		f.addInt("gid", m.gid)
	}
	if m.modeSet {
		f.add("mode", octal(m.mode))
	}
	return f.String()
}

// fields are the key=value fields of a mount's String.
type fields []string

func (f *fields) add(key, value string) { *f = append(*f, key+"="+value) }

func (f *fields) addInt(key string, v int) { f.add(key, strconv.Itoa(v)) }

// String joins the fields as one CSV record, quoting the fields that need
// it, as Parse reads them.
func (f fields) String() string {
	var b strings.Builder
	w := csv.NewWriter(&b)
	if err := w.Write(f); err != nil {
		return strings.Join(f, ",")
	}
	w.Flush()
	return strings.TrimSuffix(b.String(), "\n")
}
