package build

import (
	"context"
	"fmt"

	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
)

// pushIndex pushes one index of the platforms' images, which were pushed by
// digest to the repository of refs[0], under each of refs, with credentials
// from k.
func pushIndex(ctx context.Context, refs []string, results []PlatformResult, k authn.Keychain) (digest.Digest, error) {
	named, _ := reference.ParseNormalizedNamed(refs[0])
	ropts := []ggcrremote.Option{ggcrremote.WithContext(ctx), ggcrremote.WithAuthFromKeychain(k)}
	var idx v1.ImageIndex = empty.Index
	for i, r := range results {
		dref, err := name.NewDigest(named.Name() + "@" + r.Digest.String())
		if err != nil {
			return "", fmt.Errorf("index: %w", err)
		}
		desc, err := ggcrremote.Get(dref, ropts...)
		if err != nil {
			return "", fmt.Errorf("index: reading %s: %w", dref, err)
		}
		if i == 0 {
			idx = mutate.IndexMediaType(idx, types.OCIImageIndex)
			if desc.MediaType == types.DockerManifestSchema2 {
				idx = mutate.IndexMediaType(idx, types.DockerManifestList)
			}
		}
		img, err := desc.Image()
		if err != nil {
			return "", fmt.Errorf("index: %s: %w", dref, err)
		}
		pl, _ := platforms.Parse(r.Platform)
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add: img,
			Descriptor: v1.Descriptor{
				MediaType: desc.MediaType,
				Platform:  &v1.Platform{OS: pl.OS, Architecture: pl.Architecture, Variant: pl.Variant},
			},
		})
	}
	for _, ref := range refs {
		tag, err := name.ParseReference(ref)
		if err != nil {
			return "", fmt.Errorf("index: %w", err)
		}
		if err := ggcrremote.WriteIndex(tag, idx, ropts...); err != nil {
			return "", fmt.Errorf("pushing the index to %s: %w", ref, err)
		}
	}
	d, err := idx.Digest()
	if err != nil {
		return "", err
	}
	return digest.Digest(d.String()), nil
}
