package cache

import "strconv"

// Backend is a typed cache import/export backend: where BuildKit reads build
// cache from before a build and writes it to after one. Registry, Local,
// Inline, GHA and S3 return Backends. Values are immutable and safe for
// concurrent use; the same Backend may be given for both import and export.
//
// A Backend never changes the cache key of a step: it only decides where
// cache records and layers are stored.
//
// Other packages may implement Backend for backends this package does not
// cover; Type, ExportAttrs and ImportAttrs are then passed to BuildKit as
// they are.
type Backend interface {
	// Type returns BuildKit's name for the backend: "registry", "local",
	// "inline", "gha" or "s3".
	Type() string

	// ExportAttrs returns the attributes BuildKit's cache exporter reads,
	// or an error if the backend is misconfigured or cannot export. Every
	// call returns a new map that the caller may modify.
	ExportAttrs() (map[string]string, error)

	// ImportAttrs returns the attributes BuildKit's cache importer reads,
	// or an error if the backend is misconfigured or cannot import.
	// Options that only apply to export are left out. Every call returns a
	// new map that the caller may modify.
	ImportAttrs() (map[string]string, error)

	// String renders the backend as comma-separated key=value fields, as
	// on a buildctl command line ("type=registry,ref=…,mode=max"), with
	// credentials replaced by "<redacted>". It covers the attributes of
	// both directions and does not report errors.
	String() string
}

// Backend types, as BuildKit names them.
const (
	typeRegistry = "registry"
	typeLocal    = "local"
	typeInline   = "inline"
	typeGHA      = "gha"
	typeS3       = "s3"
)

// base holds what every configurable backend has: its type and the errors
// its options reported.
type base struct {
	backend string
	errs    []error
}

func (b *base) fail(option, value, reason string) {
	b.errs = append(b.errs, &Error{Backend: b.backend, Option: option, Value: value, Reason: reason})
}

func (b *base) failErr(option, value, reason string, err error) {
	b.errs = append(b.errs, &Error{Backend: b.backend, Option: option, Value: value, Reason: reason, Err: err})
}

func (b *base) nilOption() {
	b.fail("", "", "nil option (leave it out of the list)")
}

// err returns the reported errors: nil, the only one, or all of them joined.
func (b *base) err() error {
	return joinErrs(b.errs)
}

// setBool sets the attribute key to v, unless v is nil (not given).
func setBool(m map[string]string, key string, v *bool) {
	if v != nil {
		m[key] = strconv.FormatBool(*v)
	}
}
