package cache

import "strconv"

// FormatOption is an option about the format of exported cache: its
// manifest, media types and layer compression. Only Registry and Local
// accept it; GHA and S3 always store gzip layers in their own format. It
// only affects export.
type FormatOption interface {
	RegistryOption
	LocalOption
}

// formatOption sets an option about the format of exported cache.
type formatOption func(*base, *formatConfig)

func (o formatOption) applyRegistry(r *registryBackend) { o(&r.base, &r.format) }
func (o formatOption) applyLocal(l *localBackend)       { o(&l.base, &l.format) }

var _ FormatOption = formatOption(nil)

// CompressionType is a layer compression algorithm for Compression.
type CompressionType string

// Compression algorithms.
const (
	// Gzip compresses layers with gzip, levels 0 to 9. It is the default.
	Gzip CompressionType = "gzip"
	// Zstd compresses layers with zstd, levels 0 to 22.
	Zstd CompressionType = "zstd"
	// Estargz writes seekable, lazily pullable gzip layers, levels 0 to 9.
	// It requires OCI media types.
	Estargz CompressionType = "estargz"
	// Uncompressed stores layers as plain tar archives; it takes no level.
	Uncompressed CompressionType = "uncompressed"
)

// maxLevel is the highest compression level of each algorithm that has one.
var maxLevel = map[CompressionType]int{Gzip: 9, Zstd: 22, Estargz: 9}

// ImageManifest makes an export store the cache as an OCI image manifest
// rather than an image index, which some registries require. When not set,
// the builder's default applies (true in BuildKit v0.33 unless
// OCIMediaTypes(false) is set). ImageManifest(true) requires OCI media
// types: combined with OCIMediaTypes(false) it is an error.
func ImageManifest(enabled bool) FormatOption {
	return formatOption(func(_ *base, f *formatConfig) { f.imageManifest = &enabled })
}

// OCIMediaTypes makes an export use OCI media types (true) or Docker media
// types (false). When not set, the builder's default applies (true in
// BuildKit v0.33).
func OCIMediaTypes(enabled bool) FormatOption {
	return formatOption(func(_ *base, f *formatConfig) { f.ociMediaTypes = &enabled })
}

// Compression selects the compression of exported layers: Gzip, Zstd,
// Estargz or Uncompressed. The default is Gzip. Other values are rejected.
func Compression(c CompressionType) FormatOption {
	return formatOption(func(b *base, f *formatConfig) {
		switch c {
		case Gzip, Zstd, Estargz, Uncompressed:
			f.compression = c
		case "":
			b.fail("compression", "", "must not be empty (use cache.Gzip, cache.Zstd, cache.Estargz or cache.Uncompressed)")
		default:
			b.fail("compression", string(c), "unknown compression (use cache.Gzip, cache.Zstd, cache.Estargz or cache.Uncompressed)")
		}
	})
}

// CompressionLevel sets the compression level of exported layers: 0 to 9
// for Gzip and Estargz, 0 to 22 for Zstd. Uncompressed takes no level. The
// default is the algorithm's own default level. The range is checked
// against the algorithm chosen with Compression, Gzip if none.
func CompressionLevel(level int) FormatOption {
	return formatOption(func(_ *base, f *formatConfig) { f.level = &level })
}

// ForceCompression recompresses layers that the builder already holds in
// another compression, so that every exported layer uses the algorithm of
// Compression. The default is false: existing layers are exported as they
// are.
func ForceCompression(force bool) FormatOption {
	return formatOption(func(_ *base, f *formatConfig) { f.force = &force })
}

type formatConfig struct {
	imageManifest *bool
	ociMediaTypes *bool
	compression   CompressionType
	level         *int
	force         *bool
}

// check reports options that conflict with each other.
func (f formatConfig) check(b *base) {
	dockerTypes := f.ociMediaTypes != nil && !*f.ociMediaTypes
	if dockerTypes && f.imageManifest != nil && *f.imageManifest {
		b.fail("image-manifest", "true", "requires OCI media types (drop cache.OCIMediaTypes(false) or use cache.ImageManifest(false))")
	}
	if dockerTypes && f.compression == Estargz {
		b.fail("compression", string(Estargz), "requires OCI media types (drop cache.OCIMediaTypes(false))")
	}
	if f.level != nil {
		c := f.compression
		if c == "" {
			c = Gzip
		}
		lvl := strconv.Itoa(*f.level)
		if c == Uncompressed {
			b.fail("compression-level", lvl, "not used with uncompressed layers (drop cache.CompressionLevel)")
		} else if hi, ok := maxLevel[c]; ok && (*f.level < 0 || *f.level > hi) {
			b.fail("compression-level", lvl, "out of range for "+string(c)+" (0-"+strconv.Itoa(hi)+")")
		}
	}
}

func (f formatConfig) attrs(m map[string]string) {
	setBool(m, "image-manifest", f.imageManifest)
	setBool(m, "oci-mediatypes", f.ociMediaTypes)
	if f.compression != "" {
		m["compression"] = string(f.compression)
	}
	if f.level != nil {
		m["compression-level"] = strconv.Itoa(*f.level)
	}
	setBool(m, "force-compression", f.force)
}
