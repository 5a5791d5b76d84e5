package cache

import (
	"errors"
	"regexp"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// RegistryOption configures Registry. Mode, ExportOption, FormatOption and
// Insecure values are RegistryOptions.
type RegistryOption interface {
	applyRegistry(*registryBackend)
}

// registryOption sets an option that only Registry understands.
type registryOption func(*registryBackend)

func (o registryOption) applyRegistry(r *registryBackend) { o(r) }

// registryBackend is the Backend Registry returns.
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
		r.fail("ref", "", `must not be empty (give the cache's reference, such as "registry.example.com/team/app:buildcache")`)
		return
	}
	if err := schemeProblem(r.ref); err != nil {
		// name.ParseReference's own message points at name.Insecure, which
		// Larder users do not call.
		r.failErr("ref", r.ref, "invalid reference", err)
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
		return errors.New("registry " + strconv.Quote(host) + " is not a valid host name" +
			" (want dot-separated labels of letters, digits and '-', with an optional :port, such as registry.example.com or localhost:5000)")
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

// schemeProblem says how to fix a ref that starts with a URL scheme, and
// returns nil for one that does not.
func schemeProblem(ref string) error {
	for _, scheme := range []string{"http://", "https://"} {
		if len(ref) < len(scheme) || !strings.EqualFold(ref[:len(scheme)], scheme) {
			continue
		}
		hint := "drop " + strconv.Quote(ref[:len(scheme)])
		if rest := ref[len(scheme):]; rest != "" {
			hint += " (give " + strconv.Quote(rest) + ")"
		}
		if scheme == "http://" {
			hint += " and add cache.Insecure(true) for a plain-HTTP registry"
		}
		return errors.New("must not contain a URL scheme: " + hint)
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
