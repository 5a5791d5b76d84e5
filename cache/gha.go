package cache

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// GHAOption configures GHA. Mode, ExportOption, Scope, URL, URLV2, Token,
// Version, Timeout and GitHubAPI values are GHAOptions.
type GHAOption interface {
	applyGHA(*ghaBackend)
}

// ghaOption sets an option that only GHA understands.
type ghaOption func(*ghaBackend)

func (o ghaOption) applyGHA(g *ghaBackend) { o(g) }

// lookupEnv reads the environment. GHA reads it each time its attributes are
// computed.
var lookupEnv = os.LookupEnv

// Environment variables a GitHub Actions runner provides to actions.
const (
	envCacheURL   = "ACTIONS_CACHE_URL"
	envResultsURL = "ACTIONS_RESULTS_URL"
	envToken      = "ACTIONS_RUNTIME_TOKEN"
	envServiceV2  = "ACTIONS_CACHE_SERVICE_V2"
)

// ghaBackend is the Backend GHA returns.
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
			g.fail("scope", "", `must not be empty (leave out cache.Scope to use "buildkit", or give one such as "app-linux-amd64")`)
		case strings.Contains(scope, ","):
			g.fail("scope", scope, "must not contain a comma, which GitHub Actions cache keys cannot hold (use '-' instead, as in "+
				strconv.Quote(strings.ReplaceAll(scope, ",", "-"))+")")
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
		if reason := urlProblem(u, "leave out cache.URL to read "+envCacheURL+" or "+envResultsURL+
			`, or give the cache service's URL, such as "https://cache.example.com/"`); reason != "" {
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
		if reason := urlProblem(u, "leave out cache.URLV2 to read "+envResultsURL+
			`, or give the results service's URL, such as "https://results.example.com/"`); reason != "" {
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
			g.fail("token", "", "must not be empty (leave out cache.Token to read "+envToken+", or give the runner's token)")
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
			g.fail("ghtoken", "", "must not be empty (give a GitHub token that can read the repository's Actions cache, such as the workflow's GITHUB_TOKEN)")
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
			if reason := urlProblem(v, ""); reason != "" {
				fail("url_v2", displayURL(v), "from "+envResultsURL+": "+reason)
			}
			urlV2 = v
		}
	}
	u := g.url
	if u == "" && urlV2 == "" {
		for _, key := range []string{envCacheURL, envResultsURL} {
			if v := env(key); v != "" {
				if reason := urlProblem(v, ""); reason != "" {
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
