package cache

import (
	"net/url"
	"strings"
)

// urlProblem says what is wrong with a service URL, "" if nothing. ifEmpty
// says what to do instead of giving an empty URL.
func urlProblem(s, ifEmpty string) string {
	if s == "" {
		return "must not be empty (" + ifEmpty + ")"
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
