package build

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tonistiigi/fsutil"
	"github.com/tonistiigi/fsutil/types"

	"github.com/larder-build/larder/internal/cachehelper/binary"
)

// Restoring and saving persisted cache mounts run Larder's helper, a
// static program of its own (internal/cachehelper), in a root filesystem
// that holds nothing else: they need no shell or tools in the user's
// images, and nothing read from a store ever reaches a shell. The helper
// is built into Larder for linux/amd64 and linux/arm64, sent to the builder
// through the client session like a local directory (BuildKit keeps it, so
// a builder receives it once), and runs on the builder's own platform,
// whatever platform the graph is built for: a cache mount is the same
// cache whatever the platform of the step that mounts it.

// helperName is the helper's file name, and the name of the local
// directory that holds it.
const helperName = "larder-cache-helper"

// helper is the helper for one builder.
type helper struct {
	platform ocispecs.Platform // the builder's own
	fs       fsutil.FS
	id       string // the local source's shared key: the binary's digest
}

// newHelper returns the helper for the builder of c, which runs its first
// worker's first platform natively.
func newHelper(ctx context.Context, c *client.Client) (*helper, error) {
	ws, err := c.ListWorkers(ctx)
	if err != nil {
		return nil, fmt.Errorf("asking the builder for its platform: %w", err)
	}
	if len(ws) == 0 || len(ws[0].Platforms) == 0 {
		return nil, fmt.Errorf("the builder lists no worker platform")
	}
	p := ws[0].Platforms[0]
	if p.OS != "linux" {
		return nil, fmt.Errorf("the builder runs %s, and Larder's cache helper runs on linux only", p.OS)
	}
	bin, err := binary.Linux(p.Architecture)
	if err != nil {
		return nil, fmt.Errorf("the builder runs linux/%s: %w", p.Architecture, err)
	}
	return &helper{
		platform: ocispecs.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant},
		fs:       &oneFile{name: helperName, data: bin, mode: 0o755},
		id:       digest.FromBytes(bin).Encoded()[:16],
	}, nil
}

// root returns the helper's root filesystem.
func (h *helper) root() llb.State {
	return llb.Local(helperName, llb.SharedKeyHint(helperName+"-"+h.id), llb.WithCustomName("[persist] cache helper"))
}

// oneFile is a directory that holds one regular file, as an fsutil.FS.
type oneFile struct {
	name string
	data []byte
	mode os.FileMode
}

func (f *oneFile) Walk(ctx context.Context, target string, fn fs.WalkDirFunc) error {
	st := &types.Stat{Path: f.name, Mode: uint32(f.mode), Size: int64(len(f.data)), ModTime: time.Unix(0, 0).UnixNano()}
	return fn(f.name, fs.FileInfoToDirEntry(&statInfo{st}), nil)
}

func (f *oneFile) Open(p string) (io.ReadCloser, error) {
	if p != f.name {
		return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
	}
	return io.NopCloser(bytes.NewReader(f.data)), nil
}

// statInfo is an fs.FileInfo whose Sys is the *types.Stat fsutil sends.
type statInfo struct{ *types.Stat }

func (s *statInfo) Name() string       { return s.Path }
func (s *statInfo) Size() int64        { return s.Stat.Size }
func (s *statInfo) Mode() fs.FileMode  { return fs.FileMode(s.Stat.Mode) }
func (s *statInfo) ModTime() time.Time { return time.Unix(0, s.Stat.ModTime) }
func (s *statInfo) IsDir() bool        { return s.Mode().IsDir() }
func (s *statInfo) Sys() any           { return s.Stat }
