package build_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/larder-build/larder/build"
)

// Settings that change only the image's configuration leave the definition,
// and so every cache key, as it is.
func TestUnitConfigOnlySettingsKeepTheDefinition(t *testing.T) {
	base := build.Image("alpine:3.20").Run("make")
	want := marshalBytes(t, base)
	for name, s := range map[string]build.Stage{
		"Expose":      base.Expose("8080", "53/udp"),
		"Volume":      base.Volume("/data"),
		"Healthcheck": base.Healthcheck(build.Health{Test: []string{"CMD-SHELL", "true"}, Interval: time.Second}),
		"StopSignal":  base.StopSignal("SIGINT"),
		"Cmd":         base.Cmd("app"),
		"Entrypoint":  base.Entrypoint("/app"),
		"Label":       base.Label("a", "b"),
	} {
		if got := marshalBytes(t, s); !bytes.Equal(got, want) {
			t.Errorf("%s changed the definition", name)
		}
	}
}

func marshalBytes(t *testing.T, s build.Stage) []byte {
	t.Helper()
	def, err := s.Marshal(context.Background(), "linux/amd64")
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Join(def.Def, nil)
}
