package binary

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestLinuxRejectsOtherArchitectures(t *testing.T) {
	for _, arch := range []string{"", "386", "riscv64", "arm64/v8", "AMD64"} {
		_, err := Linux(arch)
		if err == nil || !strings.Contains(err.Error(), "amd64 and arm64") {
			t.Errorf("Linux(%q): %v; want an error naming the supported architectures", arch, err)
		}
	}
}

func TestLinuxReturnsELFBinaries(t *testing.T) {
	machines := map[string]uint16{"amd64": 62, "arm64": 183} // EM_X86_64, EM_AARCH64
	for arch, machine := range machines {
		b, err := Linux(arch)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) < 20 || !bytes.HasPrefix(b, []byte("\x7fELF")) || uint16(b[18])|uint16(b[19])<<8 != machine {
			t.Errorf("Linux(%q) is not an ELF binary for machine %d", arch, machine)
		}
		b[0] = 0 // a copy: the next call is unharmed
		if again, _ := Linux(arch); again[0] != 0x7f {
			t.Errorf("Linux(%q) returned the cached binary, not a copy", arch)
		}
	}
}

// The committed binaries are those this source builds: gen, run into a
// temporary directory, gives the same bytes.
func TestBinariesComeFromThisSource(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the helper twice")
	}
	want, err := os.ReadFile("toolchain.txt")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "env", "GOVERSION")
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	got, err := cmd.Output()
	if err != nil {
		t.Fatalf("go env GOVERSION: %v", err)
	}
	if g, w := strings.TrimSpace(string(got)), strings.TrimSpace(string(want)); g != w {
		msg := "the helper binaries were built with " + w + ", and this is " + g + ": run go generate ./internal/cachehelper/binary to rebuild them"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}

	dir := t.TempDir()
	gen := exec.Command("go", "run", "./gen", "-o", dir)
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("go run ./gen: %v\n%s", err, out)
	}
	for arch := range binaries {
		name := "larder-cache-helper-linux-" + arch + ".gz"
		gz, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		built, err := gunzip(gz)
		if err != nil {
			t.Fatal(err)
		}
		embedded, err := Linux(arch)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(built, embedded) {
			t.Errorf("linux/%s: the embedded binary (%d bytes) is not the one this source builds (%d bytes): run go generate ./internal/cachehelper/binary", arch, len(embedded), len(built))
		}
	}
}
