package build

import (
	"bytes"
	"slices"
	"strings"
)

// masked is what a secret's value is replaced with.
const masked = "***"

// minSecret is the length below which a value is not masked: shorter ones
// ("1", "yes") would mask ordinary output everywhere.
const minSecret = 4

// masker replaces the secrets a solve was given with "***" in everything
// Larder shows of the solve: progress, events, step errors and the report.
// A nil *masker masks nothing.
type masker struct {
	secrets [][]byte // longest first
	longest int
}

// newMasker returns a masker of every value of secrets, and of each line
// of a value that has several, leaving out those shorter than minSecret; nil
// when none is left.
func newMasker(secrets map[string][]byte) *masker {
	var all [][]byte
	add := func(b []byte) {
		if len(b) >= minSecret && !slices.ContainsFunc(all, func(s []byte) bool { return bytes.Equal(s, b) }) {
			all = append(all, bytes.Clone(b))
		}
	}
	for _, v := range secrets {
		// Not v itself when it ends a line: masking would take the line's
		// end with it.
		add(bytes.TrimRight(v, "\r\n"))
		for _, line := range bytes.Split(v, []byte("\n")) {
			add(bytes.TrimRight(line, "\r"))
		}
	}
	if len(all) == 0 {
		return nil
	}
	slices.SortFunc(all, func(a, b []byte) int { return len(b) - len(a) })
	return &masker{secrets: all, longest: len(all[0])}
}

// mask returns b with every secret in it replaced; b itself when none is.
func (m *masker) mask(b []byte) []byte {
	if m == nil {
		return b
	}
	for _, s := range m.secrets {
		if bytes.Contains(b, s) {
			b = bytes.ReplaceAll(b, s, []byte(masked))
		}
	}
	return b
}

// maskString is mask for a string.
func (m *masker) maskString(s string) string {
	if m == nil {
		return s
	}
	for _, sec := range m.secrets {
		s = strings.ReplaceAll(s, string(sec), masked)
	}
	return s
}

// maskStream masks one output stream that arrives in chunks: a secret
// split across two chunks is masked too. It holds back the end of a chunk
// that could be the start of a secret until the next chunk says.
type maskStream struct {
	m       *masker
	pending []byte
}

// write returns what of b (after what was held back) can be shown now,
// masked.
func (s *maskStream) write(b []byte) []byte {
	if s.m == nil {
		return b
	}
	buf := s.m.mask(append(s.pending, b...))
	keep := s.m.heldBack(buf)
	out := bytes.Clone(buf[:len(buf)-keep])
	s.pending = bytes.Clone(buf[len(buf)-keep:])
	return out
}

// flush returns what was held back: the stream ended.
func (s *maskStream) flush() []byte {
	out := s.pending
	s.pending = nil
	return out
}

// heldBack returns how many bytes at the end of b could begin a secret.
func (m *masker) heldBack(b []byte) int {
	for n := min(len(b), m.longest-1); n > 0; n-- {
		tail := b[len(b)-n:]
		for _, s := range m.secrets {
			if len(s) > n && bytes.HasPrefix(s, tail) {
				return n
			}
		}
	}
	return 0
}
