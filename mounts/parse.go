package mounts

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math/big"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/moby/buildkit/client/llb"
)

// ParseOption configures Parse: WithStages.
type ParseOption interface{ applyParse(*parseConfig) }

type parseConfig struct {
	stages map[string]Source
}

// WithStages gives Parse the stages that from=NAME may name, by name. The
// names match exactly. A name that is not among them is read as an image
// reference, except "scratch", the empty filesystem. By default no stage
// is known. When WithStages is given more than once, the maps are merged
// and later names win. The stage a mount takes is part of the step's cache
// key.
func WithStages(stages map[string]Source) ParseOption {
	copied := make(map[string]Source, len(stages))
	for k, v := range stages {
		copied[k] = v
	}
	return stagesOption(copied)
}

type stagesOption map[string]Source

func (o stagesOption) applyParse(c *parseConfig) {
	if c.stages == nil {
		c.stages = map[string]Source{}
	}
	for k, v := range o {
		c.stages[k] = v
	}
}

// keyNames maps each key Parse reads, in lower case, to the name it is
// checked under.
var keyNames = map[string]string{
	"type":        "type",
	"target":      "target",
	"dst":         "target",
	"destination": "target",
	"id":          "id",
	"sharing":     "sharing",
	"uid":         "uid",
	"gid":         "gid",
	"mode":        "mode",
	"from":        "from",
	"source":      "source",
	"src":         "source",
	"readonly":    "access",
	"ro":          "access",
	"readwrite":   "access",
	"rw":          "access",
	"size":        "size",
	"required":    "required",
	"env":         "env",
}

// knownKeys lists the keys Parse reads, for messages.
var knownKeys = []string{"type", "target", "dst", "destination", "id", "sharing", "uid", "gid", "mode",
	"from", "source", "src", "readonly", "ro", "readwrite", "rw", "size", "required", "env"}

// kinds lists the mount types in the order messages name them.
var kinds = []string{"bind", "cache", "tmpfs", "secret", "ssh"}

// keysFor says which checked key names apply to each mount type.
var keysFor = map[string]map[string]bool{
	"cache":  set("type", "target", "id", "sharing", "uid", "gid", "mode", "from", "source", "access"),
	"bind":   set("type", "target", "from", "source", "access"),
	"tmpfs":  set("type", "target", "size"),
	"secret": set("type", "target", "id", "source", "uid", "gid", "mode", "required", "env"),
	"ssh":    set("type", "target", "id", "uid", "gid", "mode", "required"),
}

func set(keys ...string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

// Parse reads a mount in the syntax of a Dockerfile RUN --mount flag, with
// or without the leading "--mount=": comma-separated key=value fields,
// quoted as CSV where a value holds a comma or a quote. Keys are read in any
// case and in any order, and each may be given once. They are:
//
//   - type: bind (the default), cache, tmpfs, secret or ssh.
//   - target, dst, destination: the absolute path in the step. Required for
//     bind, cache and tmpfs; for a secret without id, its last element is
//     the id.
//   - id: the cache id, secret id or SSH id.
//   - sharing (cache): shared, private or locked.
//   - uid, gid (cache, secret, ssh): decimal numbers; the one not given is 0.
//   - mode (cache, secret, ssh): an octal number such as 0755.
//   - from (bind, cache): a stage given to WithStages, "scratch", or else an
//     image reference. A bind without from shows the build context,
//     llb.Local("context"); a cache with from is seeded from it (SeedFrom).
//   - source, src: the path inside from (bind, cache), or the secret id.
//   - readonly, ro, readwrite, rw (bind, cache): alone or with =true/false.
//   - size (tmpfs): bytes, or a number with a binary unit: k, m, g, t or p,
//     optionally followed by i and b, in any case and after one optional
//     space; "64m", "1.5g" and "512 MiB" are read, and a fraction of a byte
//     is dropped.
//   - required (secret, ssh): alone or with =true/false.
//   - env (secret): the environment variable to expose the secret as.
//
// An unknown key, a key that does not apply to the type, a bad value and a
// mount that Validate rejects are errors of type *Error naming the key or
// value and the text. Parse is therefore stricter than a Dockerfile: it
// rejects relative targets, keys given twice, keys that do not apply to the
// type, a secret with both target and env, and uid, gid or mode on a cache
// with from. Parse(m.String()) gives a mount with the same String as m.
func Parse(s string, opts ...ParseOption) (Mount, error) {
	var cfg parseConfig
	for _, o := range opts {
		if o != nil {
			o.applyParse(&cfg)
		}
	}
	p := parser{input: s, cfg: cfg}
	m, err := p.parse(strings.TrimPrefix(s, "--mount="))
	if err != nil {
		return nil, err
	}
	if errs := split(m.Validate()); len(errs) > 0 {
		for i, err := range errs {
			if e, ok := err.(*Error); ok {
				c := *e
				c.Input = s
				errs[i] = &c
			}
		}
		return nil, join(errs)
	}
	return m, nil
}

// quoteHint says how to quote a field, for text the CSV reader rejects
// for its quotes.
const quoteHint = `to quote a field, wrap the whole field in double quotes and double each quote inside it, as in "target=/a,b"`

type parser struct {
	input string
	cfg   parseConfig
}

func (p *parser) fail(field, value, format string, args ...any) error {
	return &Error{Field: field, Value: value, Reason: fmt.Sprintf(format, args...), Input: p.input}
}

type entry struct {
	key      string // as written, in lower case
	name     string // checked name
	value    string
	hasValue bool
}

func (p *parser) parse(text string) (Mount, error) {
	r := csv.NewReader(strings.NewReader(text))
	r.FieldsPerRecord = -1
	record, err := r.Read()
	if err == io.EOF {
		return nil, p.fail("", "", "no mount given; write key=value fields such as type=cache,target=/root/.cache")
	}
	if err != nil {
		if errors.Is(err, csv.ErrQuote) || errors.Is(err, csv.ErrBareQuote) {
			return nil, p.fail("", "", "not comma-separated key=value fields: %v; %s", err, quoteHint)
		}
		return nil, p.fail("", "", "not comma-separated key=value fields: %v", err)
	}
	if _, err := r.Read(); err != io.EOF {
		return nil, p.fail("", "", "more than one line; give one mount")
	}

	kind := "bind"
	seen := map[string]string{}
	var entries []entry
	for _, field := range record {
		key, value, hasValue := strings.Cut(field, "=")
		lower := strings.ToLower(key)
		name, known := keyNames[lower]
		switch {
		case field == "":
			return nil, p.fail("", "", "empty field; separate key=value fields with one comma")
		case !known:
			reason := fmt.Sprintf("unknown key %q", key)
			if s := suggest(lower, knownKeys); s != "" {
				reason += fmt.Sprintf(" (did you mean %q?)", s)
			} else {
				reason += "; known keys are " + strings.Join(knownKeys, ", ")
			}
			return nil, p.fail(lower, value, "%s", reason)
		}
		if prev, dup := seen[name]; dup {
			if prev == lower {
				return nil, p.fail(lower, value, "%q is given twice; give it once", lower)
			}
			return nil, p.fail(lower, value, "%q and %q set the same thing; give one of them", prev, lower)
		}
		seen[name] = lower
		if !hasValue && name != "access" && name != "required" {
			return nil, p.fail(lower, "", "%q needs a value, as in %s=...", lower, lower)
		}
		if name == "type" {
			kind = strings.ToLower(value)
			if keysFor[kind] == nil {
				reason := fmt.Sprintf("type %q is not one of %s", value, strings.Join(kinds, ", "))
				if s := suggest(kind, kinds); s != "" {
					reason += fmt.Sprintf(" (did you mean %q?)", s)
				}
				return nil, p.fail("type", value, "%s", reason)
			}
		}
		entries = append(entries, entry{key: lower, name: name, value: value, hasValue: hasValue})
	}

	var v values
	for _, e := range entries {
		if !keysFor[kind][e.name] {
			return nil, p.fail(e.key, e.value, "%q does not apply to a %s mount; it applies to %s", e.key, kind, appliesTo(e.name))
		}
		if err := p.read(&v, e); err != nil {
			return nil, err
		}
	}
	return p.build(kind, &v)
}

// values are what the fields of one mount say.
type values struct {
	target, id, source, from, env string
	targetSet, idSet, sourceSet   bool
	fromSet, envSet               bool
	sharing                       SharingMode
	uid, gid                      int
	ownerSet                      bool
	mode                          int
	modeSet                       bool
	access                        AccessOption
	size                          int64
	required                      bool
}

func (p *parser) read(v *values, e entry) error {
	switch e.name {
	case "type":
	case "target":
		v.target, v.targetSet = e.value, true
	case "id":
		v.id, v.idSet = e.value, true
	case "source":
		v.source, v.sourceSet = e.value, true
	case "from":
		if e.value == "" {
			return p.fail("from", "", "from is empty; name a stage or an image, or leave out from")
		}
		v.from, v.fromSet = e.value, true
	case "env":
		v.env, v.envSet = e.value, true
	case "sharing":
		s, err := ParseSharing(e.value)
		if err != nil {
			return p.fail("sharing", e.value, "%s", err.(*Error).Reason)
		}
		v.sharing = s
	case "uid", "gid":
		n, err := strconv.ParseUint(e.value, 10, 32)
		if err != nil {
			return p.fail(e.key, e.value, "%s %q is not a decimal number from 0 to %d", e.key, e.value, int64(maxID))
		}
		if e.key == "uid" {
			v.uid = int(n)
		} else {
			v.gid = int(n)
		}
		v.ownerSet = true
	case "mode":
		n, err := strconv.ParseUint(e.value, 8, 32)
		if err != nil {
			return p.fail("mode", e.value, "mode %q is not an octal number such as 0755", e.value)
		}
		v.mode, v.modeSet = int(n), true
	case "access":
		b := true
		if e.hasValue {
			var err error
			if b, err = strconv.ParseBool(e.value); err != nil {
				return p.fail(e.key, e.value, "%s %q is not true or false", e.key, e.value)
			}
		}
		if e.key == "readwrite" || e.key == "rw" {
			b = !b
		}
		if b {
			v.access = ReadOnly()
		} else {
			v.access = ReadWrite()
		}
	case "size":
		n, ok := parseSize(e.value)
		if !ok {
			return p.fail("size", e.value, "size %q is not a size such as 64m or 1048576", e.value)
		}
		v.size = n
	case "required":
		b := true
		if e.hasValue {
			var err error
			if b, err = strconv.ParseBool(e.value); err != nil {
				return p.fail("required", e.value, "required %q is not true or false", e.value)
			}
		}
		v.required = b
	}
	return nil
}

func (p *parser) build(kind string, v *values) (Mount, error) {
	if !v.targetSet && (kind == "cache" || kind == "bind" || kind == "tmpfs") {
		return nil, p.fail("target", "", "a %s mount needs target=, the absolute path where it appears in the step", kind)
	}
	var file []FileOption
	if v.ownerSet {
		file = append(file, Owner(v.uid, v.gid))
	}
	if v.modeSet {
		file = append(file, Mode(v.mode))
	}
	var required RequiredOption
	if v.required {
		required = Required()
	}

	switch kind {
	case "cache":
		opts := []CacheOption{Sharing(v.sharing), v.access}
		if v.idSet {
			opts = append(opts, ID(v.id))
		}
		for _, o := range file {
			opts = append(opts, o)
		}
		if v.fromSet {
			src, err := p.resolve(v.from)
			if err != nil {
				return nil, err
			}
			opts = append(opts, SeedFrom(src, v.source))
		} else if v.sourceSet {
			return nil, p.fail("source", v.source, "source on a cache mount needs from=, the stage or image to seed the cache from")
		}
		return Cache(v.target, opts...), nil

	case "bind":
		var src Source = contextSource{}
		if v.fromSet {
			var err error
			if src, err = p.resolve(v.from); err != nil {
				return nil, err
			}
		}
		return Bind(v.target, src, SourcePath(v.source), v.access), nil

	case "tmpfs":
		return Tmpfs(v.target, Size(v.size)), nil

	case "secret":
		id := v.id
		switch {
		case v.idSet && v.sourceSet:
			return nil, p.fail("source", v.source, "id and source both name the secret; give one of them")
		case v.sourceSet:
			id = v.source
		case !v.idSet && v.targetSet:
			id = path.Base(v.target)
		case !v.idSet:
			return nil, p.fail("id", "", "a secret mount needs id=, the id under which the build provides the secret")
		}
		opts := []SecretOption{required}
		if v.targetSet {
			opts = append(opts, Target(v.target))
		}
		if v.envSet {
			opts = append(opts, Env(v.env))
		}
		for _, o := range file {
			opts = append(opts, o)
		}
		return Secret(id, opts...), nil
	}

	// ssh
	opts := []SSHOption{required}
	if v.idSet {
		opts = append(opts, ID(v.id))
	}
	if v.targetSet {
		opts = append(opts, Target(v.target))
	}
	for _, o := range file {
		opts = append(opts, o)
	}
	return SSH(opts...), nil
}

// resolve returns the Source that from=name names.
func (p *parser) resolve(name string) (Source, error) {
	if src, ok := p.cfg.stages[name]; ok {
		if isNil(src) {
			return nil, p.fail("from", name, "stage %q given to WithStages is nil; map it to the stage to mount, such as FromState(st), or leave it out of WithStages to read from=%s as an image", name, name)
		}
		return Named(name, src), nil
	}
	if name == "scratch" {
		return Named(name, FromState(llb.Scratch())), nil
	}
	st := llb.Image(name)
	if err := st.Validate(context.Background(), &llb.Constraints{}); err != nil {
		return nil, p.fail("from", name, "from %q is neither a stage given to WithStages nor an image reference: %v", name, err)
	}
	return Named(name, FromState(st)), nil
}

// appliesTo names the mount types a checked key name applies to.
func appliesTo(name string) string {
	var out []string
	for _, k := range kinds {
		if keysFor[k][name] {
			out = append(out, k)
		}
	}
	switch len(out) {
	case 1:
		return out[0] + " mounts"
	case 2:
		return out[0] + " and " + out[1] + " mounts"
	}
	return strings.Join(out[:len(out)-1], ", ") + " and " + out[len(out)-1] + " mounts"
}

var sizeRE = regexp.MustCompile(`^(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$`)

// parseSize reads a size as Parse documents it.
func parseSize(s string) (int64, bool) {
	m := sizeRE.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	r, ok := new(big.Rat).SetString(m[1])
	if !ok {
		return 0, false
	}
	if m[2] != "" {
		shift := 10 * uint(1+strings.IndexByte("kmgtp", strings.ToLower(m[2])[0]))
		r.Mul(r, new(big.Rat).SetInt(new(big.Int).Lsh(big.NewInt(1), shift)))
	}
	n := new(big.Int).Quo(r.Num(), r.Denom())
	if !n.IsInt64() {
		return 0, false
	}
	return n.Int64(), true
}

// formatSize writes n with the largest binary unit that divides it.
func formatSize(n int64) string {
	if n > 0 {
		for i, unit := range "ptgmk" {
			shift := uint(10 * (5 - i))
			if n%(1<<shift) == 0 {
				return strconv.FormatInt(n>>shift, 10) + string(unit)
			}
		}
	}
	return strconv.FormatInt(n, 10)
}

// suggest returns the candidate closest to word when it is close enough
// to be a likely typo, or "".
func suggest(word string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if d := distance(word, c); d < bestDist && d < len(c) {
			best, bestDist = c, d
		}
	}
	return best
}

// distance is the Levenshtein distance between a and b, in bytes.
func distance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
