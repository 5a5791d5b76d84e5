package cache

import (
	"errors"
	"maps"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// fzMask replaces a credential with another of the same length, so that
// an output that depends on the credential's value, not only on whether
// it is given, shows up as a difference.
func fzMask(s string) string { return strings.Repeat("#", len(s)) }

// fzSeen is what a backend or a store shows of itself: String, the
// messages of its errors, and its attributes without the credentials.
type fzSeen struct {
	str, exportErr, importErr string
	export, imp               map[string]string
}

func fzLook(b Backend) fzSeen {
	var s fzSeen
	s.str = b.String()
	exp, err := b.ExportAttrs()
	if err != nil {
		s.exportErr = err.Error()
	}
	imp, err := b.ImportAttrs()
	if err != nil {
		s.importErr = err.Error()
	}
	s.export, s.imp = maps.Clone(exp), maps.Clone(imp)
	for k := range secretAttrs {
		delete(s.export, k)
		delete(s.imp, k)
	}
	return s
}

func (s fzSeen) equal(o fzSeen) bool {
	return s.str == o.str && s.exportErr == o.exportErr && s.importErr == o.importErr &&
		maps.Equal(s.export, o.export) && maps.Equal(s.imp, o.imp)
}

// fzCheckErr fails unless err is nil or made only of *Error values.
func fzCheckErr(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var stack = []error{err}
	for len(stack) > 0 {
		e := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			stack = append(stack, j.Unwrap()...)
			continue
		}
		var ce *Error
		if !errors.As(e, &ce) {
			t.Errorf("%s: error %q (%T) is not a *cache.Error", what, e, e)
		}
	}
}

// fzURLSecret returns the password a URL holds in its user information,
// when it is long enough, and found nowhere else in the URL or in others,
// to tell whether an output shows it.
func fzURLSecret(u string, others ...string) string {
	p, err := url.Parse(u)
	if err != nil || p.User == nil {
		return ""
	}
	pw, ok := p.User.Password()
	if !ok || len(pw) < 6 {
		return ""
	}
	rest := strings.Replace(u, p.User.String()+"@", "", 1)
	if strings.Contains(rest, pw) {
		return ""
	}
	for _, o := range others {
		if strings.Contains(o, pw) {
			return ""
		}
	}
	return pw
}

// FuzzBackends checks the strings a user gives the cache backends and
// stores: Registry, Local with Tag and Digest, GHA with its options and
// the environment it reads, S3 with its options, ParseMode, RegistryStore,
// DirStore, S3Store and MountKey. None may panic; every error is a *Error;
// nothing a backend or store shows (String, errors, the attributes other
// than the credentials' own) depends on a credential's value, nor shows
// the password of a URL; an accepted value's attributes hold it as given;
// and MountKey always makes a key ValidKey accepts.
func FuzzBackends(f *testing.F) {
	type seed struct {
		a, b, c, d, e string
		n             int
	}
	for _, s := range []seed{
		{"registry.example.com/team/app:buildcache", "max", "app", "ghs_token123456", "secret/key+value", 2},
		{"localhost:5000/a/b@sha256:" + strings.Repeat("a", 64), "min", "latest", "AKIAEXAMPLE", "wJalrXUtnFEMI", 1},
		{"https://cache.example.com/", "https://results.example.com/", "buildkit", "tok", "gh", 0},
		{"http://minio:9000", "us-east-1", "prefix/", "AKIA", "SECRET", 0},
		{"https://user:hunter2hunter2@cache.example.com/", "ftp://user:pa55word99@results.example.com/", "a,b", "", "", 3},
		{"", "", "", "", "", -1},
		{"App:cache", "MAX", "-x", "tok", "", 1},
		{"http://reg/app", "maxx", "sha256:abc", "t", "g", 2},
		{"bucket/app", "eu west 1", "a;b", "", "secret", 0},
		{"a..b/c", "true", ".", "x", "y", 1},
		{"/var/cache/larder", "owner/name", "sha512:" + strings.Repeat("f", 128), "k", "s", 2},
		{"[::1]:5000/app:t", "1", "\x00", "\xff", "\n", 1},
	} {
		f.Add(s.a, s.b, s.c, s.d, s.e, s.n)
	}
	f.Fuzz(func(t *testing.T, a, b, c, d, e string, n int) {
		// GHA reads the environment through lookupEnv: here it gives the
		// fuzzed strings.
		env := map[string]string{envCacheURL: a, envResultsURL: b, envServiceV2: c, envToken: d}
		saved := lookupEnv
		lookupEnv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
		defer func() { lookupEnv = saved }()

		// secrets returns the passwords that the URLs among the inputs
		// hold, as given and as escaped in a URL.
		all := []string{a, b, c, d, e}
		secrets := func(urls ...string) []string {
			var out []string
			for _, u := range urls {
				if s := fzURLSecret(u, all...); s != "" {
					out = append(out, s, url.UserPassword("", s).String()[1:])
				}
			}
			return out
		}
		// check makes a backend with the credentials d and e (also the
		// token GHA reads from the environment), and again with others
		// of their length, and compares what each shows. urls are the
		// inputs the backend takes as URLs, whose passwords it must not
		// show.
		check := func(what string, urls []string, newBackend func(d, e string) Backend) {
			t.Helper()
			defer func() { env[envToken] = d }()
			bk := newBackend(d, e)
			seen := fzLook(bk)
			fzCheckErr(t, what+" ExportAttrs", func() error { _, err := bk.ExportAttrs(); return err }())
			fzCheckErr(t, what+" ImportAttrs", func() error { _, err := bk.ImportAttrs(); return err }())
			env[envToken] = fzMask(d)
			if other := fzLook(newBackend(fzMask(d), fzMask(e))); !seen.equal(other) {
				t.Errorf("%s shows the credentials %q and %q:\n\t%+v\nwith others of their length:\n\t%+v", what, d, e, seen, other)
			}
			for _, s := range secrets(urls...) {
				for _, out := range []string{seen.str, seen.exportErr, seen.importErr} {
					if strings.Contains(out, s) {
						t.Errorf("%s shows the password %q of a URL: %s", what, s, out)
					}
				}
			}
		}

		// Registry.
		check("Registry", nil, func(string, string) Backend { return Registry(a, Mode(b)) })
		if attrs, err := Registry(a).ImportAttrs(); err == nil {
			if attrs["ref"] != a {
				t.Errorf("Registry(%q) imports ref %q", a, attrs["ref"])
			}
		} else if a != "" && !strings.Contains(err.Error(), strconv.Quote(a)) {
			t.Errorf("Registry(%q): the error does not name the ref: %v", a, err)
		}

		// ParseMode.
		m, err := ParseMode(a)
		fzCheckErr(t, "ParseMode", err)
		switch {
		case err == nil && m != ModeMin && m != ModeMax:
			t.Errorf("ParseMode(%q) = %q", a, m)
		case err != nil && (a == "min" || a == "max"):
			t.Errorf("ParseMode(%q): %v", a, err)
		case err != nil && a != "" && !strings.Contains(err.Error(), strconv.Quote(a)):
			t.Errorf("ParseMode(%q): the error does not name the mode: %v", a, err)
		}

		// Local.
		check("Local", nil, func(string, string) Backend { return Local(a, Tag(b), Digest(c)) })
		if attrs, err := Local(a, Tag(b), Digest(c)).ImportAttrs(); err == nil {
			if attrs["src"] != a || attrs["tag"] != b || attrs["digest"] != c {
				t.Errorf("Local(%q, Tag(%q), Digest(%q)) imports %v", a, b, c, attrs)
			}
		}

		// GHA, from options and from the environment.
		check("GHA", []string{a}, func(d, e string) Backend {
			return GHA(URL(a), Scope(c), Token(d), Version(n), GitHubAPI(c, e))
		})
		check("GHA v2", []string{b}, func(d, e string) Backend { return GHA(URLV2(b), Scope(c), Token(d), Version(n)) })
		check("GHA from the environment", []string{a, b}, func(string, string) Backend { return GHA() })
		check("GHA token from the environment", []string{a}, func(string, string) Backend { return GHA(URL(a), Scope(c)) })

		// S3.
		check("S3", []string{a}, func(d, e string) Backend {
			return S3(b, c, Prefix(c), Name(c, b), Endpoint(a), Credentials(d, e, d+e))
		})
		check("S3 without credentials", []string{a}, func(string, string) Backend {
			return S3(c, b, Endpoint(a), ManifestsPrefix(c), BlobsPrefix(b), UploadParallelism(n), PathStyle(n%2 == 0), TouchRefresh(0))
		})

		// Stores.
		rs := RegistryStore(a)
		fzCheckErr(t, "RegistryStore", rs.Validate())
		if err := rs.Validate(); err == nil && rs.String() != "registry "+a {
			t.Errorf("RegistryStore(%q).String() = %q", a, rs.String())
		}
		ds := DirStore(a)
		fzCheckErr(t, "DirStore", ds.Validate())
		if (ds.Validate() == nil) != (a != "") {
			t.Errorf("DirStore(%q).Validate() = %v", a, ds.Validate())
		}
		s3Store := func(d, e string) MountStore {
			return S3Store(b, c, Prefix(c), Endpoint(a), Credentials(d, e, ""))
		}
		ss := s3Store(d, e)
		fzCheckErr(t, "S3Store", ss.Validate())
		other := s3Store(fzMask(d), fzMask(e))
		errText := func(err error) string {
			if err == nil {
				return ""
			}
			return err.Error()
		}
		if ss.String() != other.String() || errText(ss.Validate()) != errText(other.Validate()) {
			t.Errorf("S3Store shows the credentials %q and %q: %q, %v; with others: %q, %v", d, e, ss.String(), ss.Validate(), other.String(), other.Validate())
		}
		for _, s := range secrets(a) {
			if strings.Contains(ss.String(), s) || strings.Contains(errText(ss.Validate()), s) {
				t.Errorf("S3Store shows the password %q of a URL: %s, %v", s, ss.String(), ss.Validate())
			}
		}

		// MountKey.
		for _, args := range [][3]string{{a, b, c}, {d, e, a}, {"", "", ""}, {a, "", ""}} {
			k := MountKey(args[0], args[1], args[2])
			if k != MountKey(args[0], args[1], args[2]) {
				t.Errorf("MountKey(%q, %q, %q) is not deterministic", args[0], args[1], args[2])
			}
			if !ValidKey(k) {
				t.Errorf("MountKey(%q, %q, %q) = %q, which ValidKey rejects", args[0], args[1], args[2], k)
			}
		}
	})
}
