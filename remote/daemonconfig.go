package remote

import (
	"reflect"
	"slices"
	"strings"

	"github.com/moby/buildkit/cmd/buildkitd/config"
	resolverconfig "github.com/moby/buildkit/util/resolver/config"
	"github.com/pelletier/go-toml/v2"
)

// daemonConfig returns the configuration Start gives buildkitd, in
// BuildKit's own types: the ones buildkitd reads its --config into.
func daemonConfig(o startOptions) config.Config {
	on, off := true, false
	var c config.Config
	c.Workers.OCI.Enabled = &on
	c.Workers.OCI.GC = &on
	c.Workers.OCI.Platforms = slices.Clone(o.platforms)
	// One policy over every record: cache mounts are evicted by the same
	// rule as layers, not first.
	c.Workers.OCI.GCPolicy = []config.GCPolicy{{All: true, MaxUsedSpace: o.maxStorage}}
	c.Workers.Containerd.Enabled = &off
	for _, h := range o.insecure {
		if c.Registries == nil {
			c.Registries = map[string]resolverconfig.RegistryConfig{}
		}
		c.Registries[h] = resolverconfig.RegistryConfig{PlainHTTP: &on, Insecure: &on}
	}
	return c
}

// marshalDaemonConfig renders c as TOML with go-toml (v2), the library
// buildkitd decodes its configuration with. Only the settings c sets are
// written: a field at its zero value is left out, as buildkitd reads a
// missing key as the zero value; a pointer that is not nil is written even
// when it points to a zero value (enabled = false).
func marshalDaemonConfig(c config.Config) ([]byte, error) {
	tree, _ := tomlValue(reflect.ValueOf(c))
	return toml.Marshal(tree)
}

// tomlValue returns v as go-toml would see it, with the fields of structs
// that are not set left out, and whether v itself is set: not its zero
// value, or a pointer that is not nil.
func tomlValue(v reflect.Value) (any, bool) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil, false
		}
		x, _ := tomlValue(v.Elem())
		return x, true
	case reflect.Struct:
		t := map[string]any{}
		addFields(t, v)
		return t, len(t) > 0
	case reflect.Slice, reflect.Array:
		out := make([]any, v.Len())
		for i := range out {
			out[i], _ = tomlValue(v.Index(i))
		}
		return out, len(out) > 0
	case reflect.Map:
		t := map[string]any{}
		iter := v.MapRange()
		for iter.Next() {
			t[iter.Key().String()], _ = tomlValue(iter.Value())
		}
		return t, len(t) > 0
	}
	return v.Interface(), !v.IsZero()
}

// addFields adds to t the fields of the struct v that are set, named as
// go-toml names them: by their toml tag, else their Go name; the fields of
// an embedded struct without a tag count as v's own.
func addFields(t map[string]any, v reflect.Value) {
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("toml")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		fv := v.Field(i)
		if f.Anonymous && tag == "" && fv.Kind() == reflect.Struct {
			addFields(t, fv)
			continue
		}
		if name == "" {
			name = f.Name
		}
		if x, ok := tomlValue(fv); ok {
			t[name] = x
		}
	}
}
