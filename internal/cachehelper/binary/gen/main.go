// Gen builds larder-cache-helper for every architecture package binary
// embeds, reproducibly, and writes each gzip-compressed, with the Go
// version that built them in toolchain.txt:
//
//	go run ./gen [-o DIR]
//
// go generate runs it in internal/cachehelper/binary; the tests of that
// package run it into a temporary directory to check that the committed
// binaries come from this source.
package main

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// pkg is the package of the helper command.
const pkg = "github.com/larder-build/larder/internal/cachehelper/cmd/larder-cache-helper"

// arches are the architectures built, GOARCH values.
var arches = []string{"amd64", "arm64"}

func main() {
	out := flag.String("o", ".", "the `directory` to write the binaries and toolchain.txt in")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintf(os.Stderr, "gen: %v\n", err)
		os.Exit(1)
	}
}

func run(out string) error {
	version, err := goCommand(env(""), "env", "GOVERSION")
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "larder-cache-helper-gen")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for _, arch := range arches {
		bin := filepath.Join(tmp, "larder-cache-helper-"+arch)
		if _, err := goCommand(env(arch), "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", bin, pkg); err != nil {
			return err
		}
		b, err := os.ReadFile(bin)
		if err != nil {
			return err
		}
		var z bytes.Buffer
		zw, err := gzip.NewWriterLevel(&z, gzip.BestCompression) // an empty header: no name, no time
		if err != nil {
			return err
		}
		if _, err := zw.Write(b); err != nil {
			return err
		}
		if err := zw.Close(); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(out, "larder-cache-helper-linux-"+arch+".gz"), z.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(out, "toolchain.txt"), []byte(version+"\n"), 0o644)
}

// env is the environment of a reproducible build for linux/arch: no cgo,
// the baseline instruction set, and none of the user's build flags or
// experiments. An empty arch leaves GOARCH as it is.
func env(arch string) []string {
	e := append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GOEXPERIMENT=", "GOAMD64=v1", "GOARM64=v8.0")
	if arch != "" {
		e = append(e, "GOOS=linux", "GOARCH="+arch)
	}
	return e
}

// goCommand runs the go command with args and returns its output, trimmed.
func goCommand(env []string, args ...string) (string, error) {
	cmd := exec.Command("go", args...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return strings.TrimSpace(string(b)), nil
}
