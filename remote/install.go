package remote

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/larder-build/larder/internal/daemon"
)

// BuildKitVersion is the version of BuildKit Larder is built with and
// [Install] builds.
const BuildKitVersion = "v0.33.1"

// The module Install builds buildkitd and buildctl in: it requires
// BuildKit at BuildKitVersion, with every module's checksum pinned, and is
// kept apart from Larder's own so that the library's users never inherit
// the daemon's dependencies.
var (
	//go:embed installdata/buildkit.mod.txt
	installMod []byte
	//go:embed installdata/buildkit.sum.txt
	installSum []byte
)

const installTools = `//go:build tools

package buildkit

import (
	_ "github.com/moby/buildkit/cmd/buildctl"
	_ "github.com/moby/buildkit/cmd/buildkitd"
)
`

// Install builds buildkitd and buildctl of [BuildKitVersion] with the Go
// toolchain (go in PATH, and the Go module proxy) into dir, or into the bin
// directory of Larder's cache directory ($LARDER_CACHE, else
// ~/.cache/larder) when dir is "", and returns the directory. It does
// nothing when dir already holds that version. It takes a few minutes the
// first time, and writes what the go command says to w (nil discards it).
// [Start] and [Auto] look for the binaries there after PATH, so a program
// that imports Larder needs no other setup than
//
//	go run github.com/larder-build/larder/cmd/larder-install@latest
//
// or a call to Install.
func Install(ctx context.Context, dir string, w io.Writer) (string, error) {
	if dir == "" {
		cache, err := daemon.CacheDir()
		if err != nil {
			return "", fmt.Errorf("remote: Install: %w (give a directory)", err)
		}
		dir = filepath.Join(cache, "bin")
	}
	if w == nil {
		w = io.Discard
	}
	if out, err := exec.CommandContext(ctx, filepath.Join(dir, "buildkitd"), "--version").Output(); err == nil &&
		bytes.Contains(out, []byte(" "+BuildKitVersion+" ")) {
		if _, err := os.Stat(filepath.Join(dir, "buildctl")); err == nil {
			return dir, nil
		}
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("remote: Install: the Go toolchain is not in PATH (install Go 1.25 or newer, or get buildkitd and buildctl %s another way): %w", BuildKitVersion, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("remote: Install: %w", err)
	}
	mod, err := os.MkdirTemp("", "larder-install-")
	if err != nil {
		return "", fmt.Errorf("remote: Install: %w", err)
	}
	defer os.RemoveAll(mod)
	for name, b := range map[string][]byte{"go.mod": installMod, "go.sum": installSum, "tools.go": []byte(installTools)} {
		if err := os.WriteFile(filepath.Join(mod, name), b, 0o644); err != nil {
			return "", fmt.Errorf("remote: Install: %w", err)
		}
	}
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", dir+string(filepath.Separator),
		"-ldflags", "-X github.com/moby/buildkit/version.Version="+BuildKitVersion,
		"github.com/moby/buildkit/cmd/buildkitd", "github.com/moby/buildkit/cmd/buildctl")
	cmd.Dir = mod
	var tail bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.MultiWriter(w, &tail), io.MultiWriter(w, &tail)
	// The module's go.sum pins every checksum; -mod=mod lets go write
	// nothing new but what the build needs. GOFLAGS of the caller's own
	// project do not apply here.
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off", "CGO_ENABLED=0")
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(tail.String())
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 && len(msg)-i < 400 {
			msg = msg[i+1:]
		}
		return "", fmt.Errorf("remote: Install: building buildkitd and buildctl %s: %w: %s", BuildKitVersion, err, msg)
	}
	if _, err := os.Stat(filepath.Join(dir, "buildkitd")); err != nil {
		return "", errors.Join(errors.New("remote: Install: go build wrote no buildkitd"), err)
	}
	return dir, nil
}
