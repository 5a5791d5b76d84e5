package remote

import (
	"errors"
	"testing"
)

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"tcp://user:pw@host:1234", "tcp://user:xxxxx@host:1234"},
		{"ssh://me:p@ss@builder.example/run/buildkit.sock", "ssh://me:xxxxx@builder.example/run/buildkit.sock"},
		{"tcp://user:pw@host:abc", "tcp://user:xxxxx@host:abc"}, // not a URL net/url parses
		{"tcp://user:p%zz@host:1", "tcp://user:xxxxx@host:1"},
		{"docker-container://u:pw@name?context=x", "docker-container://u:xxxxx@name?context=x"},
		{"tcp://user@host:1234", "tcp://user@host:1234"},
		{"tcp://user:@host:1234", "tcp://user:@host:1234"},
		{"unix:///run/a@b:c.sock", "unix:///run/a@b:c.sock"},
		{"tcp://host:1234/p?q=a:b@c", "tcp://host:1234/p?q=a:b@c"},
		{"not a url", "not a url"},
		{"", ""},
	} {
		if got := redact(tc.in); got != tc.want {
			t.Errorf("redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRedactedErrorsUnwrap(t *testing.T) {
	base := errors.New(`dial "x://me:s3cret@h": refused; me:s3cret@h again`)
	err := redactErr(base, "x://me:s3cret@h")
	if !errors.Is(err, base) {
		t.Error("the redacted error does not unwrap")
	}
	if want := `dial "x://me:xxxxx@h": refused; me:xxxxx@h again`; err.Error() != want {
		t.Errorf("redacted: %q, want %q", err, want)
	}
	if redactErr(base, "x://h") != base {
		t.Error("an address without a password changed the error")
	}
}
