package cache

import "strconv"

// Mode selects which cache records an export writes. It is an option itself:
// cache.Registry(ref, cache.ModeMax). The default is ModeMin, as in
// BuildKit. Mode only affects export. Modes other than ModeMin and ModeMax,
// including the zero Mode, are rejected; if given more than once, the last
// wins.
type Mode string

const (
	// ModeMin exports cache only for the layers of the final result. It
	// is the default.
	ModeMin Mode = "min"
	// ModeMax exports cache for every step, including those of stages
	// that do not end up in the result.
	ModeMax Mode = "max"
)

const modeHint = "(use cache.ModeMin or cache.ModeMax)"

// ParseMode parses "min" or "max" into a Mode. Any other string, including
// the empty one and other spellings, is an error: BuildKit would silently
// fall back to "min".
func ParseMode(s string) (Mode, error) {
	if reason := Mode(s).problem(); reason != "" {
		return "", &Error{Option: "mode", Value: s, Reason: reason}
	}
	return Mode(s), nil
}

func (m Mode) problem() string {
	switch m {
	case ModeMin, ModeMax:
		return ""
	case "":
		return "must not be empty " + modeHint
	}
	return "unknown mode " + modeHint
}

func (m Mode) apply(b *base, e *exportConfig) {
	if reason := m.problem(); reason != "" {
		b.fail("mode", string(m), reason)
		return
	}
	e.mode = m
}

func (m Mode) applyRegistry(r *registryBackend) { m.apply(&r.base, &r.export) }
func (m Mode) applyLocal(l *localBackend)       { m.apply(&l.base, &l.export) }
func (m Mode) applyGHA(g *ghaBackend)           { m.apply(&g.base, &g.export) }
func (m Mode) applyS3(s *s3Backend)             { m.apply(&s.base, &s.export) }

// ExportOption is an option that every backend with options accepts:
// Registry, Local, GHA and S3. It only affects export.
type ExportOption interface {
	RegistryOption
	LocalOption
	GHAOption
	S3Option
}

// exportOption sets an option that every exporting backend understands.
type exportOption func(*base, *exportConfig)

func (o exportOption) applyRegistry(r *registryBackend) { o(&r.base, &r.export) }
func (o exportOption) applyLocal(l *localBackend)       { o(&l.base, &l.export) }
func (o exportOption) applyGHA(g *ghaBackend)           { o(&g.base, &g.export) }
func (o exportOption) applyS3(s *s3Backend)             { o(&s.base, &s.export) }

var (
	_ ExportOption = ModeMin
	_ ExportOption = exportOption(nil)
)

// IgnoreError makes a failed cache export a warning instead of failing the
// build. The default is false: a failed export fails the build.
func IgnoreError(ignore bool) ExportOption {
	return exportOption(func(_ *base, e *exportConfig) { e.ignoreError = &ignore })
}

type exportConfig struct {
	mode        Mode
	ignoreError *bool
}

func (e exportConfig) attrs(m map[string]string) {
	mode := e.mode
	if mode == "" {
		mode = ModeMin
	}
	m["mode"] = string(mode)
	if e.ignoreError != nil {
		m["ignore-error"] = strconv.FormatBool(*e.ignoreError)
	}
}
