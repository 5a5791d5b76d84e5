package cache

import (
	"errors"
	"maps"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
)

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

// Error reports a cache backend option that is invalid, conflicts with
// another, or is missing. Every error returned by this package is an
// *Error, possibly several joined with errors.Join; use errors.As to reach
// it. An Error never contains a credential.
type Error struct {
	// Backend is the backend's type ("registry", "local", "inline", "gha",
	// "s3"); it is empty for errors not tied to a backend, such as those
	// from ParseMode.
	Backend string
	// Option is what is at fault: for a backend, the attribute by
	// BuildKit's name for it ("mode", "ref", "compression-level"); for a
	// preset or a MountStore, the option by its Go name ("Home", "Sharing",
	// "RegistryStore"). It is empty when the value as a whole is at fault.
	Option string
	// Value is the rejected value as given. It is empty when the value is
	// empty, absent or a credential.
	Value string
	// Reason says what is wrong and how to fix it.
	Reason string
	// Err is the underlying error, if any.
	Err error
}

// Error formats the error as
// `cache: <backend> backend: <option> "<value>": <reason>`, leaving out the
// parts that are empty.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("cache: ")
	if e.Backend != "" {
		b.WriteString(e.Backend)
		b.WriteString(" backend: ")
	}
	if e.Option != "" {
		b.WriteString(e.Option)
		if e.Value != "" {
			b.WriteByte(' ')
			b.WriteString(strconv.Quote(e.Value))
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns e.Err.
func (e *Error) Unwrap() error { return e.Err }

// Backend types, as BuildKit names them.
const (
	typeRegistry = "registry"
	typeLocal    = "local"
	typeInline   = "inline"
	typeGHA      = "gha"
	typeS3       = "s3"
)

// lookupEnv reads the environment. GHA reads it each time its attributes are
// computed.
var lookupEnv = os.LookupEnv

// redacted replaces credentials in String.
const redacted = "<redacted>"

// ---------------------------------------------------------------------------
// Options

// RegistryOption configures Registry. Mode, ExportOption, FormatOption and
// Insecure values are RegistryOptions.
type RegistryOption interface {
	applyRegistry(*registryBackend)
}

// LocalOption configures Local. Mode, ExportOption, FormatOption, Tag,
// Digest and Reset values are LocalOptions.
type LocalOption interface {
	applyLocal(*localBackend)
}

// GHAOption configures GHA. Mode, ExportOption, Scope, URL, URLV2, Token,
// Version, Timeout and GitHubAPI values are GHAOptions.
type GHAOption interface {
	applyGHA(*ghaBackend)
}

// S3Option configures S3. Mode, ExportOption, Prefix, ManifestsPrefix,
// BlobsPrefix, Name, Endpoint, PathStyle, Credentials, UploadParallelism and
// TouchRefresh values are S3Options.
type S3Option interface {
	applyS3(*s3Backend)
}

// ExportOption is an option that every backend with options accepts:
// Registry, Local, GHA and S3. It only affects export.
type ExportOption interface {
	RegistryOption
	LocalOption
	GHAOption
	S3Option
}

// FormatOption is an option about the format of exported cache: its
// manifest, media types and layer compression. Only Registry and Local
// accept it; GHA and S3 always store gzip layers in their own format. It
// only affects export.
type FormatOption interface {
	RegistryOption
	LocalOption
}

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
	b.fail("", "", "nil option")
}

// err returns the reported errors: nil, the only one, or all of them joined.
func (b *base) err() error {
	return joinErrs(b.errs)
}

func joinErrs(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return errors.Join(errs...)
}

// exportOption sets an option that every exporting backend understands.
type exportOption func(*base, *exportConfig)

func (o exportOption) applyRegistry(r *registryBackend) { o(&r.base, &r.export) }
func (o exportOption) applyLocal(l *localBackend)       { o(&l.base, &l.export) }
func (o exportOption) applyGHA(g *ghaBackend)           { o(&g.base, &g.export) }
func (o exportOption) applyS3(s *s3Backend)             { o(&s.base, &s.export) }

// formatOption sets an option about the format of exported cache.
type formatOption func(*base, *formatConfig)

func (o formatOption) applyRegistry(r *registryBackend) { o(&r.base, &r.format) }
func (o formatOption) applyLocal(l *localBackend)       { o(&l.base, &l.format) }

type registryOption func(*registryBackend)

func (o registryOption) applyRegistry(r *registryBackend) { o(r) }

type localOption func(*localBackend)

func (o localOption) applyLocal(l *localBackend) { o(l) }

type ghaOption func(*ghaBackend)

func (o ghaOption) applyGHA(g *ghaBackend) { o(g) }

type s3Option func(*s3Backend)

func (o s3Option) applyS3(s *s3Backend) { o(s) }

var (
	_ ExportOption = ModeMin
	_ ExportOption = exportOption(nil)
	_ FormatOption = formatOption(nil)
)

// ---------------------------------------------------------------------------
// Mode and the options every exporting backend accepts

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

// ---------------------------------------------------------------------------
// Format options: Registry and Local

// CompressionType is a layer compression algorithm for Compression.
type CompressionType string

// Compression algorithms.
const (
	// Gzip compresses layers with gzip, levels 0 to 9. It is the default.
	Gzip CompressionType = "gzip"
	// Zstd compresses layers with zstd, levels 0 to 22.
	Zstd CompressionType = "zstd"
	// Estargz writes seekable, lazily pullable gzip layers, levels 0 to 9.
	// It requires OCI media types.
	Estargz CompressionType = "estargz"
	// Uncompressed stores layers as plain tar archives; it takes no level.
	Uncompressed CompressionType = "uncompressed"
)

// maxLevel is the highest compression level of each algorithm that has one.
var maxLevel = map[CompressionType]int{Gzip: 9, Zstd: 22, Estargz: 9}

// ImageManifest makes an export store the cache as an OCI image manifest
// rather than an image index, which some registries require. When not set,
// the builder's default applies (true in BuildKit v0.33 unless
// OCIMediaTypes(false) is set). ImageManifest(true) requires OCI media
// types: combined with OCIMediaTypes(false) it is an error.
func ImageManifest(enabled bool) FormatOption {
	return formatOption(func(_ *base, f *formatConfig) { f.imageManifest = &enabled })
}

// OCIMediaTypes makes an export use OCI media types (true) or Docker media
// types (false). When not set, the builder's default applies (true in
// BuildKit v0.33).
func OCIMediaTypes(enabled bool) FormatOption {
	return formatOption(func(_ *base, f *formatConfig) { f.ociMediaTypes = &enabled })
}

// Compression selects the compression of exported layers: Gzip, Zstd,
// Estargz or Uncompressed. The default is Gzip. Other values are rejected.
func Compression(c CompressionType) FormatOption {
	return formatOption(func(b *base, f *formatConfig) {
		switch c {
		case Gzip, Zstd, Estargz, Uncompressed:
			f.compression = c
		case "":
			b.fail("compression", "", "must not be empty (use cache.Gzip, cache.Zstd, cache.Estargz or cache.Uncompressed)")
		default:
			b.fail("compression", string(c), "unknown compression (use cache.Gzip, cache.Zstd, cache.Estargz or cache.Uncompressed)")
		}
	})
}

// CompressionLevel sets the compression level of exported layers: 0 to 9
// for Gzip and Estargz, 0 to 22 for Zstd. Uncompressed takes no level. The
// default is the algorithm's own default level. The range is checked
// against the algorithm chosen with Compression, Gzip if none.
func CompressionLevel(level int) FormatOption {
	return formatOption(func(_ *base, f *formatConfig) { f.level = &level })
}

// ForceCompression recompresses layers that the builder already holds in
// another compression, so that every exported layer uses the algorithm of
// Compression. The default is false: existing layers are exported as they
// are.
func ForceCompression(force bool) FormatOption {
	return formatOption(func(_ *base, f *formatConfig) { f.force = &force })
}

type formatConfig struct {
	imageManifest *bool
	ociMediaTypes *bool
	compression   CompressionType
	level         *int
	force         *bool
}

// check reports options that conflict with each other.
func (f formatConfig) check(b *base) {
	dockerTypes := f.ociMediaTypes != nil && !*f.ociMediaTypes
	if dockerTypes && f.imageManifest != nil && *f.imageManifest {
		b.fail("image-manifest", "true", "requires OCI media types (drop cache.OCIMediaTypes(false) or use cache.ImageManifest(false))")
	}
	if dockerTypes && f.compression == Estargz {
		b.fail("compression", string(Estargz), "requires OCI media types (drop cache.OCIMediaTypes(false))")
	}
	if f.level != nil {
		c := f.compression
		if c == "" {
			c = Gzip
		}
		lvl := strconv.Itoa(*f.level)
		if c == Uncompressed {
			b.fail("compression-level", lvl, "not used with uncompressed layers (drop cache.CompressionLevel)")
		} else if hi, ok := maxLevel[c]; ok && (*f.level < 0 || *f.level > hi) {
			b.fail("compression-level", lvl, "out of range for "+string(c)+" (0-"+strconv.Itoa(hi)+")")
		}
	}
}

func (f formatConfig) attrs(m map[string]string) {
	setBool(m, "image-manifest", f.imageManifest)
	setBool(m, "oci-mediatypes", f.ociMediaTypes)
	if f.compression != "" {
		m["compression"] = string(f.compression)
	}
	if f.level != nil {
		m["compression-level"] = strconv.Itoa(*f.level)
	}
	setBool(m, "force-compression", f.force)
}

func setBool(m map[string]string, key string, v *bool) {
	if v != nil {
		m[key] = strconv.FormatBool(*v)
	}
}

// ---------------------------------------------------------------------------
// Registry

type registryBackend struct {
	base
	ref       string
	digestRef bool
	insecure  *bool
	export    exportConfig
	format    formatConfig
}

// Registry stores cache in an image registry under ref, for example
// "registry.example.com/team/app:buildcache". The ref is validated but
// passed to BuildKit as given; a ref without a registry means Docker Hub and
// one without a tag means "latest", as for images. A digest ref can be
// imported from but not exported to.
//
// Registry accepts Mode, ExportOption, FormatOption and Insecure. The
// registry's credentials come from the build session, not from the Backend.
func Registry(ref string, opts ...RegistryOption) Backend {
	r := &registryBackend{base: base{backend: typeRegistry}, ref: ref}
	r.checkRef()
	for _, o := range opts {
		if o == nil {
			r.nilOption()
			continue
		}
		o.applyRegistry(r)
	}
	r.format.check(&r.base)
	return r
}

func (r *registryBackend) checkRef() {
	if r.ref == "" {
		r.fail("ref", "", "must not be empty")
		return
	}
	parsed, err := name.ParseReference(r.ref)
	if err != nil {
		// name.ParseReference's own message only repeats the ref; the
		// tag or digest parser says what is wrong with it.
		var detail error
		if strings.Contains(r.ref, "@") {
			_, detail = name.NewDigest(r.ref)
		} else {
			_, detail = name.NewTag(r.ref)
		}
		if detail == nil {
			detail = err
		}
		r.failErr("ref", r.ref, "invalid reference", detail)
		return
	}
	if err := checkRefParts(parsed); err != nil {
		r.failErr("ref", r.ref, "invalid reference", err)
		return
	}
	_, r.digestRef = parsed.(name.Digest)
}

var (
	pathComponentPattern = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
	hostPattern          = regexp.MustCompile(`^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$`)
)

// checkRefParts rejects what name.ParseReference lets through but BuildKit's
// reference grammar does not: malformed host names, path components and
// tags.
func checkRefParts(ref name.Reference) error {
	repo := ref.Context()
	if host := repo.RegistryStr(); !hostPattern.MatchString(host) {
		return errors.New("registry " + strconv.Quote(host) + " is not a valid host name")
	}
	for _, c := range strings.Split(repo.RepositoryStr(), "/") {
		if !pathComponentPattern.MatchString(c) {
			return errors.New("path component " + strconv.Quote(c) +
				" must be lowercase letters and digits separated by '.', '_', '__' or '-'")
		}
	}
	if t, ok := ref.(name.Tag); ok && !tagPattern.MatchString(t.TagStr()) {
		return errors.New("tag " + strconv.Quote(t.TagStr()) +
			" must be 1 to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'")
	}
	return nil
}

// Insecure makes the builder reach the registry over plain HTTP and without
// TLS verification, as for a local test registry. The default is false.
func Insecure(insecure bool) RegistryOption {
	return registryOption(func(r *registryBackend) { r.insecure = &insecure })
}

func (r *registryBackend) Type() string { return typeRegistry }

func (r *registryBackend) ExportAttrs() (map[string]string, error) {
	if err := r.err(); err != nil {
		return nil, err
	}
	if r.digestRef {
		return nil, &Error{Backend: typeRegistry, Option: "ref", Value: r.ref,
			Reason: "cannot export to a digest reference (use a tag, such as app:buildcache)"}
	}
	return r.exportAttrs(), nil
}

func (r *registryBackend) ImportAttrs() (map[string]string, error) {
	if err := r.err(); err != nil {
		return nil, err
	}
	return r.importAttrs(), nil
}

func (r *registryBackend) importAttrs() map[string]string {
	m := map[string]string{"ref": r.ref}
	setBool(m, "registry.insecure", r.insecure)
	return m
}

func (r *registryBackend) exportAttrs() map[string]string {
	m := r.importAttrs()
	r.export.attrs(m)
	r.format.attrs(m)
	return m
}

func (r *registryBackend) String() string {
	return render(typeRegistry, r.exportAttrs())
}

// ---------------------------------------------------------------------------
// Local

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
		l.fail("dir", "", "must not be empty")
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
			l.fail("tag", "", "must not be empty")
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
			l.fail("digest", "", "must not be empty")
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

// ---------------------------------------------------------------------------
// Inline

type inlineBackend struct{}

// Inline embeds cache metadata in the image the build exports, so that
// pushing the image also pushes its cache. It records only the layers of
// the image (ModeMin) and takes no options.
//
// Inline cache is export only: to import it, use Registry with the pushed
// image's reference. ImportAttrs returns an error that says so.
func Inline() Backend { return inlineBackend{} }

func (inlineBackend) Type() string { return typeInline }

func (inlineBackend) ExportAttrs() (map[string]string, error) {
	return map[string]string{}, nil
}

func (inlineBackend) ImportAttrs() (map[string]string, error) {
	return nil, &Error{Backend: typeInline,
		Reason: "cannot be imported: inline cache travels in the pushed image (import it with cache.Registry(imageRef))"}
}

func (inlineBackend) String() string { return "type=" + typeInline }

// ---------------------------------------------------------------------------
// GitHub Actions

// Environment variables a GitHub Actions runner provides to actions.
const (
	envCacheURL   = "ACTIONS_CACHE_URL"
	envResultsURL = "ACTIONS_RESULTS_URL"
	envToken      = "ACTIONS_RUNTIME_TOKEN"
	envServiceV2  = "ACTIONS_CACHE_SERVICE_V2"
)

type ghaBackend struct {
	base
	scope      string
	url        string
	urlV2      string
	token      string
	version    int
	timeout    time.Duration
	repository string
	ghToken    string
	export     exportConfig
}

// GHA stores cache in the GitHub Actions cache service. Settings not given
// as options are read from the environment each time the attributes are
// computed, as a GitHub Actions runner provides it to actions:
//
//   - the protocol version: 2 if ACTIONS_CACHE_SERVICE_V2 is true, else the
//     builder picks one from the URL;
//   - URLV2: ACTIONS_RESULTS_URL, with protocol version 2;
//   - URL: ACTIONS_CACHE_URL, else ACTIONS_RESULTS_URL, when there is no
//     URLV2;
//   - Token: ACTIONS_RUNTIME_TOKEN.
//
// Given URL or URLV2, no URL is read from the environment. Empty variables
// count as unset. A missing token or URL is an error that
// names the variable to set: a plain `run:` step does not see these
// variables unless a previous step exports them.
//
// GHA accepts Mode, ExportOption, Scope, URL, URLV2, Token, Version, Timeout
// and GitHubAPI.
func GHA(opts ...GHAOption) Backend {
	g := &ghaBackend{base: base{backend: typeGHA}}
	for _, o := range opts {
		if o == nil {
			g.nilOption()
			continue
		}
		o.applyGHA(g)
	}
	if g.version == 1 && g.urlV2 != "" {
		g.fail("url_v2", displayURL(g.urlV2), "not used with cache.Version(1) (drop one of them)")
	}
	return g
}

// Scope names the cache entry within the repository's Actions cache, so that
// several images built in one workflow keep separate caches. The default is
// "buildkit". A scope must not be empty or contain a comma.
func Scope(scope string) GHAOption {
	return ghaOption(func(g *ghaBackend) {
		switch {
		case scope == "":
			g.fail("scope", "", "must not be empty")
		case strings.Contains(scope, ","):
			g.fail("scope", scope, "must not contain a comma (GitHub Actions cache keys cannot)")
		default:
			g.scope = scope
		}
	})
}

// URL sets the address of the version 1 cache service. The default is
// $ACTIONS_CACHE_URL, else $ACTIONS_RESULTS_URL. It must be an absolute
// http or https URL.
func URL(u string) GHAOption {
	return ghaOption(func(g *ghaBackend) {
		if reason := urlProblem(u); reason != "" {
			g.fail("url", displayURL(u), reason)
			return
		}
		g.url = u
	})
}

// URLV2 sets the address of the version 2 cache service; when given, the
// builder speaks version 2 unless Version(1) is set, which is an error. The
// default is $ACTIONS_RESULTS_URL when $ACTIONS_CACHE_SERVICE_V2 is true or
// Version(2) is set. It must be an absolute http or https URL.
func URLV2(u string) GHAOption {
	return ghaOption(func(g *ghaBackend) {
		if reason := urlProblem(u); reason != "" {
			g.fail("url_v2", displayURL(u), reason)
			return
		}
		g.urlV2 = u
	})
}

// Token sets the token for the cache service. The default is
// $ACTIONS_RUNTIME_TOKEN. The token never appears in String or in errors.
func Token(token string) GHAOption {
	return ghaOption(func(g *ghaBackend) {
		if token == "" {
			g.fail("token", "", "must not be empty")
			return
		}
		g.token = token
	})
}

// Version selects the cache service protocol, 1 or 2. By default it is 2 if
// $ACTIONS_CACHE_SERVICE_V2 is true; otherwise the builder picks version 2
// for a URLV2 or a results-service URL and version 1 for other URLs.
func Version(v int) GHAOption {
	return ghaOption(func(g *ghaBackend) {
		if v != 1 && v != 2 {
			g.fail("version", strconv.Itoa(v), "unknown cache service version (use 1 or 2)")
			return
		}
		g.version = v
	})
}

// Timeout bounds how long an import or export may take. The default is the
// builder's, 10 minutes in BuildKit v0.33. It must be positive.
func Timeout(d time.Duration) GHAOption {
	return ghaOption(func(g *ghaBackend) {
		if d <= 0 {
			g.fail("timeout", d.String(), "must be positive")
			return
		}
		g.timeout = d
	})
}

var repositoryPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$`)

// GitHubAPI lets an export check existing cache entries through the GitHub
// REST API of repository ("owner/name") with token, a GitHub token that can
// read the repository's Actions cache, instead of the cache service, whose
// rate limit large exports can hit. By default the cache service is used.
// The token never appears in String or in errors.
func GitHubAPI(repository, token string) GHAOption {
	return ghaOption(func(g *ghaBackend) {
		ok := true
		if !repositoryPattern.MatchString(repository) {
			g.fail("repository", repository, `invalid repository (use "owner/name")`)
			ok = false
		}
		if token == "" {
			g.fail("ghtoken", "", "must not be empty")
			ok = false
		}
		if ok {
			g.repository, g.ghToken = repository, token
		}
	})
}

func (g *ghaBackend) Type() string { return typeGHA }

func (g *ghaBackend) ExportAttrs() (map[string]string, error) {
	if err := g.err(); err != nil {
		return nil, err
	}
	m, errs := g.resolve()
	if err := joinErrs(errs); err != nil {
		return nil, err
	}
	g.addExport(m)
	return m, nil
}

func (g *ghaBackend) ImportAttrs() (map[string]string, error) {
	if err := g.err(); err != nil {
		return nil, err
	}
	m, errs := g.resolve()
	if err := joinErrs(errs); err != nil {
		return nil, err
	}
	return m, nil
}

func (g *ghaBackend) String() string {
	m, _ := g.resolve()
	g.addExport(m)
	return render(typeGHA, m)
}

func (g *ghaBackend) addExport(m map[string]string) {
	g.export.attrs(m)
	if g.repository != "" {
		m["repository"] = g.repository
		m["ghtoken"] = g.ghToken
	}
}

// env returns the value of an environment variable, "" if it is unset.
func env(key string) string {
	v, _ := lookupEnv(key)
	return v
}

// resolve computes the attributes both directions share, filling settings
// not given as options from the environment, and reports what is still
// missing or invalid.
func (g *ghaBackend) resolve() (map[string]string, []error) {
	var errs []error
	fail := func(option, value, reason string) {
		errs = append(errs, &Error{Backend: typeGHA, Option: option, Value: value, Reason: reason})
	}

	m := map[string]string{"scope": "buildkit"}
	if g.scope != "" {
		m["scope"] = g.scope
	}
	if g.version != 0 {
		m["version"] = strconv.Itoa(g.version)
	}
	if g.timeout != 0 {
		m["timeout"] = g.timeout.String()
	}

	v2 := g.version == 2
	if g.version == 0 {
		b, err := strconv.ParseBool(env(envServiceV2))
		v2 = err == nil && b
	}

	// URLs come from the options or from the environment, never both.
	urlV2 := g.urlV2
	if urlV2 == "" && g.url == "" && v2 {
		if v := env(envResultsURL); v != "" {
			if reason := urlProblem(v); reason != "" {
				fail("url_v2", displayURL(v), "from "+envResultsURL+": "+reason)
			}
			urlV2 = v
		}
	}
	u := g.url
	if u == "" && urlV2 == "" {
		for _, key := range []string{envCacheURL, envResultsURL} {
			if v := env(key); v != "" {
				if reason := urlProblem(v); reason != "" {
					fail("url", displayURL(v), "from "+key+": "+reason)
				}
				u = v
				break
			}
		}
	}
	switch {
	case u == "" && urlV2 == "" && v2:
		fail("url", "", "not set (use cache.URLV2 or set "+envResultsURL+")")
	case u == "" && urlV2 == "":
		fail("url", "", "not set (use cache.URL or set "+envCacheURL+" or "+envResultsURL+")")
	}
	if urlV2 != "" {
		m["url_v2"] = urlV2
	}
	if u != "" {
		m["url"] = u
	}

	token := g.token
	if token == "" {
		token = env(envToken)
	}
	if token == "" {
		fail("token", "", "not set (use cache.Token or set "+envToken+")")
	} else {
		m["token"] = token
	}
	return m, errs
}

// ---------------------------------------------------------------------------
// S3

type s3Backend struct {
	base
	bucket            string
	region            string
	prefix            string
	manifestsPrefix   *string
	blobsPrefix       *string
	names             []string
	endpoint          string
	pathStyle         *bool
	accessKeyID       string
	secretAccessKey   string
	sessionToken      string
	uploadParallelism int
	touchRefresh      *time.Duration
	export            exportConfig
}

// S3 stores cache in an Amazon S3 bucket, or in a bucket of an S3-compatible
// service with Endpoint. Both bucket and region are required; a bucket must
// not contain '/' (use Prefix for a folder within it). Without Credentials
// the builder uses its own AWS credentials (its environment, profile or
// instance role).
//
// S3 accepts Mode, ExportOption, Prefix, ManifestsPrefix, BlobsPrefix, Name,
// Endpoint, PathStyle, Credentials, UploadParallelism and TouchRefresh.
func S3(bucket, region string, opts ...S3Option) Backend {
	s := &s3Backend{base: base{backend: typeS3}, bucket: bucket, region: region}
	switch {
	case bucket == "":
		s.fail("bucket", "", "must not be empty")
	case strings.Contains(bucket, "/"):
		s.fail("bucket", bucket, "must not contain '/' (use cache.Prefix for a folder within the bucket)")
	case strings.ContainsFunc(bucket, isSpace):
		s.fail("bucket", bucket, "must not contain spaces")
	}
	switch {
	case region == "":
		s.fail("region", "", "must not be empty")
	case strings.ContainsFunc(region, isSpace):
		s.fail("region", region, "must not contain spaces")
	}
	for _, o := range opts {
		if o == nil {
			s.nilOption()
			continue
		}
		o.applyS3(s)
	}
	return s
}

func isSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f'
}

// Prefix is prepended to the key of every object the cache stores, like a
// folder within the bucket ("app/"). The default is "" (the bucket's root).
func Prefix(prefix string) S3Option {
	return s3Option(func(s *s3Backend) { s.prefix = prefix })
}

// ManifestsPrefix is the folder, under Prefix, that holds the cache
// manifests. The default is "manifests/".
func ManifestsPrefix(prefix string) S3Option {
	return s3Option(func(s *s3Backend) { s.manifestsPrefix = &prefix })
}

// BlobsPrefix is the folder, under Prefix, that holds the cache layers. The
// default is "blobs/".
func BlobsPrefix(prefix string) S3Option {
	return s3Option(func(s *s3Backend) { s.blobsPrefix = &prefix })
}

// Name names the cache manifest. Export writes the manifest under every
// name; import reads the first. The default is "buildkit". Names must not be
// empty or contain ';'.
func Name(names ...string) S3Option {
	names = slices.Clone(names)
	return s3Option(func(s *s3Backend) {
		if len(names) == 0 {
			s.fail("name", "", "needs at least one name")
			return
		}
		for _, n := range names {
			switch {
			case n == "":
				s.fail("name", "", "must not be empty")
				return
			case strings.Contains(n, ";"):
				s.fail("name", n, "must not contain ';' (give several names as separate arguments)")
				return
			}
		}
		s.names = names
	})
}

// Endpoint sets the address of an S3-compatible service such as MinIO
// ("http://minio:9000"). The default is AWS's endpoint for the region. It
// must be an absolute http or https URL.
func Endpoint(u string) S3Option {
	return s3Option(func(s *s3Backend) {
		if reason := urlProblem(u); reason != "" {
			s.fail("endpoint_url", displayURL(u), reason)
			return
		}
		s.endpoint = u
	})
}

// PathStyle addresses the bucket in the URL path (endpoint/bucket/key)
// rather than as a subdomain (bucket.endpoint/key), as many S3-compatible
// services need. The default is false.
func PathStyle(enabled bool) S3Option {
	return s3Option(func(s *s3Backend) { s.pathStyle = &enabled })
}

// Credentials sets the AWS credentials the builder uses; sessionToken may be
// empty for long-term keys. By default the builder uses its own AWS
// credentials. None of the three values ever appears in String or in
// errors.
func Credentials(accessKeyID, secretAccessKey, sessionToken string) S3Option {
	return s3Option(func(s *s3Backend) {
		ok := true
		if accessKeyID == "" {
			s.fail("access_key_id", "", "must not be empty")
			ok = false
		}
		if secretAccessKey == "" {
			s.fail("secret_access_key", "", "must not be empty")
			ok = false
		}
		if ok {
			s.accessKeyID, s.secretAccessKey, s.sessionToken = accessKeyID, secretAccessKey, sessionToken
		}
	})
}

// UploadParallelism sets how many layers an export uploads at once. The
// default is 4. It must be positive.
func UploadParallelism(n int) S3Option {
	return s3Option(func(s *s3Backend) {
		if n <= 0 {
			s.fail("upload_parallelism", strconv.Itoa(n), "must be positive")
			return
		}
		s.uploadParallelism = n
	})
}

// TouchRefresh sets how old a stored layer that an export would write again
// must be before the export refreshes its modification time, which keeps
// bucket lifecycle rules from expiring layers still in use. The default is
// 24 hours; 0 refreshes on every export. It must not be negative.
func TouchRefresh(d time.Duration) S3Option {
	return s3Option(func(s *s3Backend) {
		if d < 0 {
			s.fail("touch_refresh", d.String(), "must not be negative")
			return
		}
		s.touchRefresh = &d
	})
}

func (s *s3Backend) Type() string { return typeS3 }

func (s *s3Backend) ExportAttrs() (map[string]string, error) {
	if err := s.err(); err != nil {
		return nil, err
	}
	return s.exportAttrs(), nil
}

func (s *s3Backend) ImportAttrs() (map[string]string, error) {
	if err := s.err(); err != nil {
		return nil, err
	}
	return s.importAttrs(), nil
}

func (s *s3Backend) importAttrs() map[string]string {
	m := map[string]string{"bucket": s.bucket, "region": s.region}
	if s.prefix != "" {
		m["prefix"] = s.prefix
	}
	if s.manifestsPrefix != nil {
		m["manifests_prefix"] = *s.manifestsPrefix
	}
	if s.blobsPrefix != nil {
		m["blobs_prefix"] = *s.blobsPrefix
	}
	if len(s.names) > 0 {
		m["name"] = strings.Join(s.names, ";")
	}
	if s.endpoint != "" {
		m["endpoint_url"] = s.endpoint
	}
	setBool(m, "use_path_style", s.pathStyle)
	if s.accessKeyID != "" {
		m["access_key_id"] = s.accessKeyID
		m["secret_access_key"] = s.secretAccessKey
		if s.sessionToken != "" {
			m["session_token"] = s.sessionToken
		}
	}
	return m
}

func (s *s3Backend) exportAttrs() map[string]string {
	m := s.importAttrs()
	if s.uploadParallelism != 0 {
		m["upload_parallelism"] = strconv.Itoa(s.uploadParallelism)
	}
	if s.touchRefresh != nil {
		m["touch_refresh"] = s.touchRefresh.String()
	}
	s.export.attrs(m)
	return m
}

func (s *s3Backend) String() string {
	return render(typeS3, s.exportAttrs())
}

// ---------------------------------------------------------------------------
// Rendering

// secretAttrs are the attributes String replaces with "<redacted>".
var secretAttrs = map[string]bool{
	"token":             true,
	"ghtoken":           true,
	"access_key_id":     true,
	"secret_access_key": true,
	"session_token":     true,
}

// urlAttrs are the attributes whose user information String removes.
var urlAttrs = map[string]bool{"url": true, "url_v2": true, "endpoint_url": true}

// leadingAttrs come first in String, in this order; the rest follow sorted.
var leadingAttrs = []string{"ref", "dest", "src", "bucket", "region", "scope", "mode"}

func render(typ string, attrs map[string]string) string {
	keys := slices.SortedFunc(maps.Keys(attrs), func(a, b string) int {
		ia, ib := slices.Index(leadingAttrs, a), slices.Index(leadingAttrs, b)
		switch {
		case ia >= 0 && ib >= 0:
			return ia - ib
		case ia >= 0:
			return -1
		case ib >= 0:
			return 1
		}
		return strings.Compare(a, b)
	})
	var b strings.Builder
	b.WriteString("type=" + typ)
	for _, k := range keys {
		v := attrs[k]
		switch {
		case secretAttrs[k] && v != "":
			v = redacted
		case urlAttrs[k]:
			v = displayURL(v)
		}
		b.WriteByte(',')
		writeField(&b, k+"="+v)
	}
	return b.String()
}

// writeField writes a CSV field, quoting it if it needs quotes.
func writeField(b *strings.Builder, f string) {
	if !strings.ContainsAny(f, ",\"\r\n") {
		b.WriteString(f)
		return
	}
	b.WriteByte('"')
	b.WriteString(strings.ReplaceAll(f, `"`, `""`))
	b.WriteByte('"')
}

// urlProblem says what is wrong with a service URL, "" if nothing.
func urlProblem(s string) string {
	if s == "" {
		return "must not be empty"
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "must be an absolute http:// or https:// URL"
	}
	return ""
}

// displayURL returns s with any user information in it masked, for String
// and errors. Strings that might hold user information but do not parse as
// a URL with a host are replaced entirely.
func displayURL(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" {
		return redacted
	}
	if u.User == nil {
		return s
	}
	u.User = url.User("redacted")
	return u.String()
}
