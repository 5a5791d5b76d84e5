package cache

import (
	"strings"
	"testing"
)

func FuzzPresetWarnings(f *testing.F) {
	for _, s := range []string{"pip install --no-cache-dir x", "rm -rf /var/lib/apt/lists/*", "cat <<EOF\nx\nEOF", "a 'b' \"$c\" `d` $(e)"} {
		f.Add(s)
	}
	presets := []*Preset{Apt(), Pip(), Npm(), Go(), Cargo()}
	f.Fuzz(func(t *testing.T, s string) {
		for _, p := range presets {
			p.Warnings([]string{"/bin/sh", "-c", s})
			p.Warnings(strings.Fields(s))
		}
	})
}
