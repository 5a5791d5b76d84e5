package cache

import (
	"maps"
	"regexp"
)

// LocalOption configures Local. Mode, ExportOption, FormatOption, Tag,
// Digest and Reset values are LocalOptions.
type LocalOption interface {
	applyLocal(*localBackend)
}

// localOption sets an option that only Local understands.
type localOption func(*localBackend)

func (o localOption) applyLocal(l *localBackend) { o(l) }

// localBackend is the Backend Local returns.
type localBackend struct {
	base
	dir    string
	tag    string
	digest string
	reset  *bool
	export exportConfig
	format formatConfig
}

// Local stores cache in dir, a directory on the client's file system laid
// out as an OCI image layout. Export writes to dir (BuildKit's "dest"),
// creating it if needed; import reads from it (BuildKit's "src"). A relative
// dir is relative to the working directory of the process that solves.
//
// Local accepts Mode, ExportOption, FormatOption, Tag, Digest and Reset.
func Local(dir string, opts ...LocalOption) Backend {
	l := &localBackend{base: base{backend: typeLocal}, dir: dir}
	if dir == "" {
		l.fail("dir", "", `must not be empty (give the directory on the client that holds the cache, such as "/var/cache/buildkit")`)
	}
	for _, o := range opts {
		if o == nil {
			l.nilOption()
			continue
		}
		o.applyLocal(l)
	}
	l.format.check(&l.base)
	return l
}

var (
	tagPattern    = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)
	digestPattern = regexp.MustCompile(`^(sha256:[a-f0-9]{64}|sha384:[a-f0-9]{96}|sha512:[a-f0-9]{128})$`)
)

// Tag names the cache in the directory's index.json: export records the
// cache under it and import looks it up, unless Digest is given. The default
// is "latest". A tag is 1 to 128 letters, digits, '_', '.' and '-', not
// starting with '.' or '-'.
func Tag(tag string) LocalOption {
	return localOption(func(l *localBackend) {
		switch {
		case tag == "":
			l.fail("tag", "", `must not be empty (leave out cache.Tag to use "latest", or give one such as "buildcache")`)
		case !tagPattern.MatchString(tag):
			l.fail("tag", tag, "invalid tag (use 1 to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-')")
		default:
			l.tag = tag
		}
	})
}

// Digest makes import read the cache manifest with this digest
// ("sha256:<64 hex digits>") instead of looking up Tag in index.json. It
// does not affect export. By default the digest is looked up by tag.
func Digest(digest string) LocalOption {
	return localOption(func(l *localBackend) {
		switch {
		case digest == "":
			l.fail("digest", "", `must not be empty (leave out cache.Digest to look the cache up by tag, or give one such as "sha256:" and 64 lowercase hex digits)`)
		case !digestPattern.MatchString(digest):
			l.fail("digest", digest, "invalid digest (want sha256:, sha384: or sha512: and lowercase hex)")
		default:
			l.digest = digest
		}
	})
}

// Reset makes an export delete the blobs in the directory that no manifest
// in its index.json references any more, so the directory does not grow
// with every export. The default is false: old blobs are kept.
func Reset(reset bool) LocalOption {
	return localOption(func(l *localBackend) { l.reset = &reset })
}

func (l *localBackend) Type() string { return typeLocal }

func (l *localBackend) ExportAttrs() (map[string]string, error) {
	if err := l.err(); err != nil {
		return nil, err
	}
	return l.exportAttrs(), nil
}

func (l *localBackend) ImportAttrs() (map[string]string, error) {
	if err := l.err(); err != nil {
		return nil, err
	}
	return l.importAttrs(), nil
}

func (l *localBackend) exportAttrs() map[string]string {
	m := map[string]string{"dest": l.dir}
	if l.tag != "" {
		m["tag"] = l.tag
	}
	setBool(m, "reset", l.reset)
	l.export.attrs(m)
	l.format.attrs(m)
	return m
}

func (l *localBackend) importAttrs() map[string]string {
	m := map[string]string{"src": l.dir}
	if l.tag != "" {
		m["tag"] = l.tag
	}
	if l.digest != "" {
		m["digest"] = l.digest
	}
	return m
}

func (l *localBackend) String() string {
	m := l.exportAttrs()
	maps.Copy(m, l.importAttrs())
	return render(typeLocal, m)
}
