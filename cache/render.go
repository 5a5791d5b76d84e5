package cache

import (
	"maps"
	"slices"
	"strings"
)

// redacted replaces credentials in String.
const redacted = "<redacted>"

// secretAttrs are the attributes String replaces with "<redacted>".
var secretAttrs = map[string]bool{
	"token":             true,
	"ghtoken":           true,
	"access_key_id":     true,
	"secret_access_key": true,
	"session_token":     true,
}

// urlAttrs are the attributes whose user information String removes.
var urlAttrs = map[string]bool{"url": true, "url_v2": true, "endpoint_url": true}

// leadingAttrs come first in String, in this order; the rest follow sorted.
var leadingAttrs = []string{"ref", "dest", "src", "bucket", "region", "scope", "mode"}

// render formats a backend of type typ with attrs for String: leadingAttrs
// first, the rest sorted, credentials redacted and URLs without user
// information.
func render(typ string, attrs map[string]string) string {
	keys := slices.SortedFunc(maps.Keys(attrs), func(a, b string) int {
		ia, ib := slices.Index(leadingAttrs, a), slices.Index(leadingAttrs, b)
		switch {
		case ia >= 0 && ib >= 0:
			return ia - ib
		case ia >= 0:
			return -1
		case ib >= 0:
			return 1
		}
		return strings.Compare(a, b)
	})
	var b strings.Builder
	b.WriteString("type=" + typ)
	for _, k := range keys {
		v := attrs[k]
		switch {
		case secretAttrs[k] && v != "":
			v = redacted
		case urlAttrs[k]:
			v = displayURL(v)
		}
		b.WriteByte(',')
		writeField(&b, k+"="+v)
	}
	return b.String()
}

// writeField writes a CSV field, quoting it if it needs quotes.
func writeField(b *strings.Builder, f string) {
	if !strings.ContainsAny(f, ",\"\r\n") {
		b.WriteString(f)
		return
	}
	b.WriteByte('"')
	b.WriteString(strings.ReplaceAll(f, `"`, `""`))
	b.WriteByte('"')
}
