package main

import (
	"os"
	"strings"
	"testing"

	"github.com/larder-build/larder/buildtest"
)

// base returns the image the recipe starts from, or skips the test.
func base(t *testing.T) string {
	ref := os.Getenv("LARDER_BUSYBOX_IMAGE")
	if ref == "" {
		t.Skip("LARDER_BUSYBOX_IMAGE is unset: set it to a busybox image the builder can pull")
	}
	return ref
}

func TestGreetsByName(t *testing.T) {
	t.Parallel()
	img := buildtest.Build(t, greeter(base(t)))
	r := img.Run(t, "greet", "Ada Lovelace")
	if r.ExitCode != 0 || r.Stdout != "hello, Ada Lovelace\n" {
		t.Fatalf("greet 'Ada Lovelace' = %+v", r)
	}
}

func TestNeedsOneName(t *testing.T) {
	t.Parallel()
	img := buildtest.Build(t, greeter(base(t)))
	r := img.Run(t, "greet")
	if r.ExitCode != 2 || !strings.Contains(r.Stderr, "usage: greet NAME") || r.Stdout != "" {
		t.Fatalf("greet without a name = %+v, want exit code 2 and the usage on stderr", r)
	}
}

func TestConfiguresTheGreeting(t *testing.T) {
	t.Parallel()
	conf := buildtest.ReadFile(t, greeter(base(t)), "/etc/greet.conf")
	if string(conf) != "greeting=hello\n" {
		t.Fatalf("/etc/greet.conf = %q", conf)
	}
}
