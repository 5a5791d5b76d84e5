package cache

// inlineBackend is the Backend Inline returns.
type inlineBackend struct{}

// Inline embeds cache metadata in the image the build exports, so that
// pushing the image also pushes its cache. It records only the layers of
// the image (ModeMin) and takes no options.
//
// Inline cache is export only: to import it, use Registry with the pushed
// image's reference. ImportAttrs returns an error that says so.
func Inline() Backend { return inlineBackend{} }

func (inlineBackend) Type() string { return typeInline }

func (inlineBackend) ExportAttrs() (map[string]string, error) {
	return map[string]string{}, nil
}

func (inlineBackend) ImportAttrs() (map[string]string, error) {
	return nil, &Error{Backend: typeInline,
		Reason: "cannot be imported: inline cache travels in the pushed image (import it with cache.Registry(imageRef))"}
}

func (inlineBackend) String() string { return "type=" + typeInline }
