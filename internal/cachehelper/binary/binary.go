// Package binary holds larder-cache-helper, the program of package
// cachehelper, built for linux/amd64 and linux/arm64, for Larder to copy
// into the build steps that restore and save cache mounts on a builder.
//
// The binaries are static (no cgo), stripped and reproducible: go generate
// builds them with gen and records the Go version in toolchain.txt, and the
// tests rebuild them to check that they come from this source.
package binary

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"fmt"
	"io"
	"sync"
)

//go:generate go run ./gen

//go:embed larder-cache-helper-linux-amd64.gz
var amd64gz []byte

//go:embed larder-cache-helper-linux-arm64.gz
var arm64gz []byte

// binaries decompress each embedded binary once.
var binaries = map[string]func() ([]byte, error){
	"amd64": sync.OnceValues(func() ([]byte, error) { return gunzip(amd64gz) }),
	"arm64": sync.OnceValues(func() ([]byte, error) { return gunzip(arm64gz) }),
}

// Linux returns larder-cache-helper built for linux/arch, where arch is a
// GOARCH value: "amd64" or "arm64"; any other is an error. Each call
// returns a new copy of the binary, which is decompressed once.
func Linux(arch string) ([]byte, error) {
	get, ok := binaries[arch]
	if !ok {
		return nil, fmt.Errorf("cachehelper/binary: no larder-cache-helper for linux/%s: the supported architectures are amd64 and arm64", arch)
	}
	b, err := get()
	if err != nil {
		return nil, fmt.Errorf("cachehelper/binary: linux/%s: %w", arch, err)
	}
	return bytes.Clone(b), nil
}

func gunzip(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}
