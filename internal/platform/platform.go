// Package platform is the one parser of platform strings that Larder's
// packages share: containerd's, stricter. containerd takes any word for an
// operating system or an architecture; a typo would only show when no
// builder runs it.
package platform

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/containerd/platforms"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// Form says how to write a platform, for messages.
const Form = `os/arch[/variant], such as linux/arm64`

// Parse parses s, given to the option or method named by what, as
// containerd's platforms package and BuildKit read it, and normalizes it.
func Parse(what, s string) (ocispecs.Platform, error) {
	switch {
	case strings.TrimSpace(s) == "":
		return ocispecs.Platform{}, fmt.Errorf("%s(%q): empty platform (want %s)", what, s, Form)
	case strings.TrimSpace(s) != s:
		return ocispecs.Platform{}, fmt.Errorf("%s(%q): spaces around the platform (remove them: %q; want %s)", what, s, strings.TrimSpace(s), Form)
	case strings.Contains(s, ","):
		var parts []string
		for _, p := range strings.Split(s, ",") {
			parts = append(parts, fmt.Sprintf("%q", strings.TrimSpace(p)))
		}
		return ocispecs.Platform{}, fmt.Errorf("%s(%q): one platform per argument: %s(%s) (want %s each)", what, s, what, strings.Join(parts, ", "), Form)
	}
	p, err := platforms.Parse(s)
	if err != nil {
		return ocispecs.Platform{}, fmt.Errorf("%s(%q): not a platform: %v (want %s)", what, s, err, Form)
	}
	if p.OSVersion != "" || len(p.OSFeatures) > 0 {
		return ocispecs.Platform{}, fmt.Errorf("%s(%q): an OS version or OS features are not supported (want %s)", what, s, Form)
	}
	p = platforms.Normalize(p)
	// containerd takes any word for an operating system or an
	// architecture when both are given; a typo would only show when no
	// builder runs it.
	switch {
	case !knownOS[p.OS]:
		return ocispecs.Platform{}, fmt.Errorf("%s(%q): unknown operating system %q (want %s; the operating systems are Go's GOOS values)", what, s, p.OS, Form)
	case !knownArch[p.Architecture]:
		return ocispecs.Platform{}, fmt.Errorf("%s(%q): unknown architecture %q (want %s; the architectures are Go's GOARCH values, such as amd64, arm64, arm, 386, ppc64le, s390x, riscv64)", what, s, p.Architecture, Form)
	case p.Variant != "" && !variantRE.MatchString(p.Variant):
		return ocispecs.Platform{}, fmt.Errorf("%s(%q): malformed variant %q (want %s; a variant such as v7 for arm, v8 for arm64, v2 for amd64)", what, s, p.Variant, Form)
	}
	return p, nil
}

// variantRE matches the variants of OCI platforms: v7, v8.2, rva22u64.
var variantRE = regexp.MustCompile(`^[a-z0-9]+(\.[a-z0-9]+)*$`)

// knownOS and knownArch are the values of GOOS and GOARCH, which OCI
// platforms use.
var (
	knownOS = setOf("aix", "android", "darwin", "dragonfly", "freebsd", "hurd", "illumos", "ios", "js", "linux", "nacl",
		"netbsd", "openbsd", "plan9", "solaris", "wasip1", "windows", "zos")
	knownArch = setOf("386", "amd64", "amd64p32", "arm", "armbe", "arm64", "arm64be", "loong64", "mips", "mipsle", "mips64",
		"mips64le", "mips64p32", "mips64p32le", "ppc", "ppc64", "ppc64le", "riscv", "riscv64", "s390", "s390x", "sparc",
		"sparc64", "wasm")
)

func setOf(words ...string) map[string]bool {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		m[w] = true
	}
	return m
}
