package remote

import (
	"testing"

	"github.com/containerd/platforms"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

func parseAll(t *testing.T, ss ...string) []ocispecs.Platform {
	t.Helper()
	out := make([]ocispecs.Platform, len(ss))
	for i, s := range ss {
		out[i] = platforms.MustParse(s)
	}
	return out
}

func TestMatchPlatform(t *testing.T) {
	// What daemons on an amd64 host with binfmt for arm64 list, as seen
	// from buildkitd v0.33.1.
	amd64Listed := []string{"linux/amd64", "linux/amd64/v2", "linux/amd64/v3", "linux/amd64/v4", "linux/arm64"}
	arm64Listed := []string{"linux/arm64", "linux/amd64", "linux/amd64/v2", "linux/amd64/v3", "linux/amd64/v4", "linux/386"}
	for _, tc := range []struct {
		native []string
		listed []string
		p      string
		want   Match
	}{
		{[]string{"linux/amd64"}, amd64Listed, "linux/amd64", Native},
		{[]string{"linux/amd64"}, amd64Listed, "linux/386", Compatible},
		{[]string{"linux/amd64"}, amd64Listed, "linux/amd64/v3", Compatible},
		{[]string{"linux/amd64"}, amd64Listed, "linux/arm64", Emulated},
		{[]string{"linux/amd64"}, amd64Listed, "linux/arm/v7", Emulated}, // arm64 listed runs arm/v7
		{[]string{"linux/amd64"}, amd64Listed, "linux/riscv64", 0},
		{[]string{"linux/amd64"}, amd64Listed, "windows/amd64", 0},

		{[]string{"linux/arm64"}, arm64Listed, "linux/arm64", Native},
		{[]string{"linux/arm64"}, arm64Listed, "linux/arm64/v8", Native},
		{[]string{"linux/arm64"}, arm64Listed, "linux/arm/v7", Compatible},
		{[]string{"linux/arm64"}, arm64Listed, "linux/arm/v6", Compatible},
		{[]string{"linux/arm64"}, arm64Listed, "linux/amd64", Emulated},
		{[]string{"linux/arm64"}, arm64Listed, "linux/386", Emulated},

		// Strict means the exact variant: an arm/v7 builder runs arm/v6
		// compatibly, and does not run arm/v8 at all.
		{[]string{"linux/arm/v7"}, []string{"linux/arm/v7"}, "linux/arm/v7", Native},
		{[]string{"linux/arm/v7"}, []string{"linux/arm/v7"}, "linux/arm/v6", Compatible},
		{[]string{"linux/arm/v7"}, []string{"linux/arm/v7"}, "linux/arm/v8", 0},
		{[]string{"linux/arm/v7"}, []string{"linux/arm/v7"}, "linux/arm64", 0},

		// Declared natives beyond the first listed platform.
		{[]string{"linux/amd64", "linux/arm64"}, amd64Listed, "linux/arm64", Native},
	} {
		got := matchPlatform(parseAll(t, tc.native...), parseAll(t, tc.listed...), platforms.MustParse(tc.p))
		if got != tc.want {
			t.Errorf("native %v: %s is %v, want %v", tc.native, tc.p, got, tc.want)
		}
	}
}

func TestBuilderNativeIsDeclaredElseFirstListed(t *testing.T) {
	b := &Builder{platforms: parseAll(t, "linux/arm64", "linux/amd64")}
	if got := formatPlatforms(b.Native()); len(got) != 1 || got[0] != "linux/arm64" {
		t.Errorf("Native() = %v, want [linux/arm64], the first listed", got)
	}
	if m := b.Match(platforms.MustParse("linux/amd64")); m != Emulated {
		t.Errorf("amd64 on a builder listing it second is %v, want emulated", m)
	}
	b.declared = parseAll(t, "linux/arm64", "linux/amd64")
	if m := b.Match(platforms.MustParse("linux/amd64")); m != Native {
		t.Errorf("amd64 declared native is %v, want native", m)
	}
}

func TestMatchString(t *testing.T) {
	for m, want := range map[Match]string{Native: "native", Compatible: "compatible", Emulated: "emulated", 0: "none"} {
		if m.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(m), m.String(), want)
		}
	}
}
