package remote

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/moby/buildkit/cmd/buildkitd/config"
)

// What Start writes is what buildkitd reads: the TOML, decoded by
// BuildKit's own loader, is the configuration Start built, for every
// combination of the options that go into it.
func TestDaemonConfigIsWhatBuildkitdReads(t *testing.T) {
	storage := [][]StartOption{nil, {MaxStorage("5GB")}, {MaxStorage("10%")}, {MaxStorage("1.5GiB")}}
	platforms := [][]StartOption{nil, {WorkerPlatforms("linux/amd64")}, {WorkerPlatforms("linux/arm64", "linux/arm/v7", "linux/arm64")}}
	registries := [][]StartOption{nil, {InsecureRegistry("127.0.0.1:5000")}, {InsecureRegistry("localhost:5000"), InsecureRegistry("registry.example.com"), InsecureRegistry("[::1]:5000")}}
	for _, s := range storage {
		for _, p := range platforms {
			for _, r := range registries {
				opts := append(append(append([]StartOption(nil), s...), p...), r...)
				o, err := makeStartOptions(opts)
				if err != nil {
					t.Fatal(err)
				}
				want := daemonConfig(o)
				text, err := marshalDaemonConfig(want)
				if err != nil {
					t.Fatal(err)
				}
				got, err := config.Load(bytes.NewReader(text))
				if err != nil {
					t.Fatalf("buildkitd's loader refuses\n%s: %v", text, err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("buildkitd reads\n%s as\n%+v\nwant\n%+v", text, got, want)
				}
			}
		}
	}
}

// The configuration holds only what Start sets.
func TestDaemonConfigText(t *testing.T) {
	o, err := makeStartOptions([]StartOption{InsecureRegistry("127.0.0.1:5000"), WorkerPlatforms("linux/arm64"), MaxStorage("10%")})
	if err != nil {
		t.Fatal(err)
	}
	text, err := marshalDaemonConfig(daemonConfig(o))
	if err != nil {
		t.Fatal(err)
	}
	const want = `[registry]
[registry.'127.0.0.1:5000']
http = true
insecure = true

[worker]
[worker.containerd]
enabled = false

[worker.oci]
enabled = true
gc = true
platforms = ['linux/arm64']

[[worker.oci.gcpolicy]]
all = true

[worker.oci.gcpolicy.maxUsedSpace]
Percentage = 10
`
	if string(text) != want {
		t.Errorf("configuration:\n%s\nwant:\n%s", text, want)
	}
}
