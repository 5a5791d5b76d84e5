package build

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/platforms"
	"github.com/moby/buildkit/client"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// errFzReached is what fzBuilder's Acquire returns.
var errFzReached = errors.New("fzBuilder: reached")

// fzBuilder is a Builder that records the platform it is asked for and
// goes no further.
type fzBuilder struct{ got []ocispecs.Platform }

func (*fzBuilder) Platforms() []ocispecs.Platform {
	return []ocispecs.Platform{{OS: "linux", Architecture: "amd64"}}
}

func (b *fzBuilder) Acquire(_ context.Context, p ocispecs.Platform, _ string) (*client.Client, string, func(error), error) {
	b.got = append(b.got, p)
	return nil, "", nil, errFzReached
}

// samePlatform reports whether a and b are the same platform, field by
// field.
func samePlatform(a, b ocispecs.Platform) bool {
	return a.OS == b.OS && a.Architecture == b.Architecture && a.Variant == b.Variant &&
		a.OSVersion == b.OSVersion && slices.Equal(a.OSFeatures, b.OSFeatures)
}

// parsedPlatforms parses s the three ways a user gives a platform: the
// Platforms solve option, the Platform source option of Image, and
// Stage.Platform. Each returns the platform it keeps, or its error.
func parsedPlatforms(s string) (names []string, got []*ocispecs.Platform, errs []error) {
	var o solveOptions
	err := Platforms(s)(&o)
	var p *ocispecs.Platform
	if err == nil {
		p = &o.platforms[0]
	}
	names, got, errs = append(names, "Platforms"), append(got, p), append(errs, err)

	var so sourceOptions
	err = Platform(s).applySource("image", &so)
	names, got, errs = append(names, "Platform"), append(got, so.platform), append(errs, err)

	st := Scratch().Platform(s)
	err = st.mistakes()
	names, got, errs = append(names, "Stage.Platform"), append(got, st.cfg().platform), append(errs, err)
	return names, got, errs
}

// FuzzPlatforms checks the platform strings a user writes: Platforms, the
// Platform source option, Stage.Platform and Stage.Marshal never panic and
// agree on what they accept; a rejection names the string and says what
// to write; an accepted platform has an OS and an architecture, formats
// to a string that each of them accepts again as the same platform, and is
// the platform Solve asks the builder for.
func FuzzPlatforms(f *testing.F) {
	for _, s := range []string{
		// Good.
		"linux/amd64", "linux/arm64", "linux/arm64/v8", "linux/arm/v7", "linux/arm/v6", "linux/arm",
		"linux/386", "linux/riscv64", "linux/ppc64le", "linux/s390x", "linux/mips64le", "linux/amd64/v3",
		"darwin/arm64", "windows/amd64", "freebsd/amd64", "amd64", "arm64", "linux",
		"LINUX/AMD64", "Linux/Arm64/V8", "linux/aarch64", "linux/x86_64", "linux/x86-64", "linux/armhf", "linux/armel",
		"windows(10.0.17763)/amd64", "linux(+gpu)/amd64", "windows(10.0.26100+win32k)/amd64",
		// Bad.
		"", "/", "//", "linux/", "/amd64", "linux//v7", "linux/amd64/", "linux/amd64/v2/extra",
		"bad!", "linux/am d64", " linux/amd64", "linux/amd64\n", "linux\x00/amd64", "ü/amd64",
		"windows(10.0/amd64", "linux()/amd64", "linux(+)/amd64", "(1)/amd64",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		names, got, errs := parsedPlatforms(s)
		_, merr := Scratch().Marshal(context.Background(), s)
		accepted := errs[0] == nil
		for i := range names {
			if (errs[i] == nil) != accepted {
				t.Fatalf("%q: Platforms says %v but %s says %v", s, errs[0], names[i], errs[i])
			}
		}
		if (merr == nil) != accepted {
			t.Fatalf("%q: Platforms says %v but Marshal says %v", s, errs[0], merr)
		}
		if !accepted {
			for i, err := range append(errs, merr) {
				name := "Marshal"
				if i < len(names) {
					name = names[i]
				}
				msg := err.Error()
				if !strings.Contains(msg, fmt.Sprintf("%q", s)) || !strings.Contains(msg, "want os/arch[/variant], such as linux/arm64") {
					t.Errorf("%s(%q): the message does not name the string and say what to write: %s", name, s, msg)
				}
			}
			return
		}

		p := *got[0]
		for i := range names {
			if got[i] == nil || !samePlatform(*got[i], p) {
				t.Fatalf("%q: Platforms keeps %+v but %s keeps %+v", s, p, names[i], got[i])
			}
		}
		if p.OS == "" || p.Architecture == "" {
			t.Fatalf("%q: accepted as %+v, without an OS or an architecture", s, p)
		}

		// A platform Larder writes with platforms.Format must read back:
		// no OS version or features, no "." or ".." components.
		if p.OSVersion != "" || len(p.OSFeatures) > 0 {
			t.Fatalf("%q: accepted with an OS version or OS features, which platforms.Format drops", s)
		}
		if slices.ContainsFunc([]string{p.OS, p.Architecture, p.Variant}, func(c string) bool { return c == "." || c == ".." }) {
			t.Fatalf("%q: accepted with a component \".\" or \"..\", which platforms.Format cleans away", s)
		}

		// The platform's own string reads back as the same platform.
		formatted := platforms.Format(p)
		names2, got2, errs2 := parsedPlatforms(formatted)
		for i := range names2 {
			if errs2[i] != nil {
				t.Fatalf("%q is accepted as %+v, whose string %q %s rejects: %v", s, p, formatted, names2[i], errs2[i])
			}
			if !samePlatform(*got2[i], p) {
				t.Fatalf("%q is accepted as %+v, whose string %q %s reads as %+v", s, p, formatted, names2[i], *got2[i])
			}
		}
		// ... so both given to Platforms are one platform given twice.
		var o solveOptions
		if err := Platforms(s, formatted)(&o); err == nil || !strings.Contains(err.Error(), "given twice") {
			t.Fatalf("Platforms(%q, %q) = %v, want the platform given twice", s, formatted, err)
		}

		// Solve asks the builder for that platform.
		b := &fzBuilder{}
		if _, err := Solve(context.Background(), b, Scratch(), Platforms(s)); !errors.Is(err, errFzReached) {
			t.Fatalf("Solve with Platforms(%q) = %v, want it to reach the builder", s, err)
		}
		if len(b.got) != 1 || !samePlatform(b.got[0], p) {
			t.Fatalf("Solve with Platforms(%q) asked the builder for %+v, want %+v", s, b.got, p)
		}
	})
}
