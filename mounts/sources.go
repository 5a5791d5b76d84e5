package mounts

// SourceMapper is a Mount that reads from a Source: a Bind, or a Cache
// seeded with SeedFrom. A graph builder that marshals its stages itself,
// such as the build package, uses it to put the mount's source into the
// same marshalling as the step, so that the source is resolved for the
// step's platform and shared with the rest of the graph.
type SourceMapper interface {
	Mount
	// MapSources returns a copy of the mount whose source is f(source). A
	// source wrapped by Named keeps its name; f sees what it wraps. f is
	// not called when the mount has no source.
	MapSources(f func(Source) Source) Mount
}

var (
	_ SourceMapper = (*BindMount)(nil)
	_ SourceMapper = (*CacheMount)(nil)
)

// MapSources returns a copy of m reading from f(its source).
func (m *BindMount) MapSources(f func(Source) Source) Mount {
	c := *m
	c.from = mapSource(m.from, f)
	return &c
}

// MapSources returns a copy of m seeded from f(its seed), or m itself when
// it has no seed.
func (m *CacheMount) MapSources(f func(Source) Source) Mount {
	if !m.seedSet {
		return m
	}
	c := *m
	c.seed = mapSource(m.seed, f)
	return &c
}

func mapSource(src Source, f func(Source) Source) Source {
	if isNil(src) {
		return src
	}
	if n, ok := src.(*namedSource); ok {
		return &namedSource{name: n.name, src: mapSource(n.src, f)}
	}
	return f(src)
}
