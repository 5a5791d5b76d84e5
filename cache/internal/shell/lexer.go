package shell

import "strings"

// lexer splits a script into raw commands.
type lexer struct {
	s    string
	i    int
	vars map[string]string

	cmds     []rawCommand
	cur      []word
	word     strings.Builder
	inWord   bool
	quoted   bool // the word so far has quotes or expansions
	assign   int
	dropNext bool     // the next word is a redirection's target
	heredocs []string // delimiters of here-documents that start at the next newline
	strip    []bool   // whether each here-document is <<- (leading tabs)
}

// parse returns the raw commands of script.
func parse(script string, vars map[string]string) []rawCommand {
	l := &lexer{s: script, vars: vars}
	l.run()
	return l.cmds
}

func (l *lexer) run() {
	for l.i < len(l.s) {
		ch := l.s[l.i]
		switch {
		case ch == '\\':
			if l.i+1 < len(l.s) && l.s[l.i+1] == '\n' {
				l.i += 2
				continue
			}
			l.inWord, l.quoted = true, true
			if l.i+1 < len(l.s) {
				l.word.WriteByte(l.s[l.i+1])
			}
			l.i += 2
		case ch == '\'':
			l.inWord, l.quoted = true, true
			end := strings.IndexByte(l.s[l.i+1:], '\'')
			if end < 0 {
				l.word.WriteString(l.s[l.i+1:])
				l.i = len(l.s)
			} else {
				l.word.WriteString(l.s[l.i+1 : l.i+1+end])
				l.i += end + 2
			}
		case ch == '"':
			l.inWord, l.quoted = true, true
			l.i++
			l.doubleQuoted()
		case ch == '$':
			l.inWord = true
			l.dollar()
		case ch == '`':
			l.inWord, l.quoted = true, true
			end := strings.IndexByte(l.s[l.i+1:], '`')
			if end < 0 {
				l.word.WriteString(l.s[l.i:])
				l.i = len(l.s)
			} else {
				l.word.WriteString(l.s[l.i : l.i+end+2])
				l.i += end + 2
			}
		case ch == '#' && !l.inWord:
			for l.i < len(l.s) && l.s[l.i] != '\n' {
				l.i++
			}
		case ch == '~' && !l.inWord && (l.i+1 == len(l.s) || strings.IndexByte("/ \t\n;&|)", l.s[l.i+1]) >= 0):
			l.inWord, l.quoted = true, true
			if h, ok := l.vars["HOME"]; ok && h != "" {
				l.word.WriteString(h)
			} else {
				l.word.WriteByte('~')
			}
			l.i++
		case ch == ' ' || ch == '\t' || ch == '\r':
			l.endWord()
			l.i++
		case ch == '\n':
			l.endCommand()
			l.i++
			l.skipHeredocs()
		case ch == '<' || ch == '>' || (ch == '&' && l.i+1 < len(l.s) && l.s[l.i+1] == '>'):
			l.redirect()
		case ch == ';' || ch == '&' || ch == '|' || ch == '(' || ch == ')':
			l.endCommand()
			l.i++
			for l.i < len(l.s) && (l.s[l.i] == ch && ch != '(' && ch != ')') {
				l.i++ // && || ;;
			}
			if ch == '|' && l.i < len(l.s) && l.s[l.i] == '&' {
				l.i++
			}
		default:
			if ch == '=' && l.inWord && !l.quoted && l.assign == 0 && validName(l.word.String()) {
				l.assign = l.word.Len()
			}
			l.inWord = true
			l.word.WriteByte(ch)
			l.i++
		}
	}
	l.endCommand()
}

// doubleQuoted reads up to the closing quote.
func (l *lexer) doubleQuoted() {
	for l.i < len(l.s) {
		ch := l.s[l.i]
		switch ch {
		case '"':
			l.i++
			return
		case '\\':
			if l.i+1 < len(l.s) {
				next := l.s[l.i+1]
				switch next {
				case '"', '\\', '$', '`':
					l.word.WriteByte(next)
				case '\n':
				default:
					l.word.WriteByte('\\')
					l.word.WriteByte(next)
				}
				l.i += 2
				continue
			}
			l.word.WriteByte('\\')
			l.i++
		case '$':
			l.dollar()
		default:
			l.word.WriteByte(ch)
			l.i++
		}
	}
}

// dollar reads an expansion at l.i: a known variable is replaced by its
// value, anything else is kept as written.
func (l *lexer) dollar() {
	l.quoted = true
	s := l.s[l.i:]
	switch {
	case strings.HasPrefix(s, "$(") || strings.HasPrefix(s, "${"):
		open, close := s[1], byte(')')
		if open == '{' {
			close = '}'
		}
		depth, j := 0, 1
		for ; j < len(s); j++ {
			if s[j] == open {
				depth++
			} else if s[j] == close {
				depth--
				if depth == 0 {
					break
				}
			}
		}
		end := min(j+1, len(s))
		if open == '{' {
			if v, ok := l.vars[s[2:max(2, end-1)]]; ok {
				l.word.WriteString(v)
				l.i += end
				return
			}
		}
		l.word.WriteString(s[:end])
		l.i += end
	default:
		j := 1
		for j < len(s) && (s[j] == '_' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || j > 1 && s[j] >= '0' && s[j] <= '9') {
			j++
		}
		if j == 1 {
			// $?, $$, $1 or a lone $.
			end := min(2, len(s))
			l.word.WriteString(s[:end])
			l.i += end
			return
		}
		if v, ok := l.vars[s[1:j]]; ok {
			l.word.WriteString(v)
		} else {
			l.word.WriteString(s[:j])
		}
		l.i += j
	}
}

// redirect reads a redirection operator; the word after it is its target,
// not an argument. A word of digits just before it is the descriptor.
func (l *lexer) redirect() {
	if l.inWord && !l.quoted && isDigits(l.word.String()) {
		l.word.Reset()
		l.inWord, l.assign = false, 0
	} else {
		l.endWord()
	}
	s := l.s[l.i:]
	heredoc := false
	strip := false
	switch {
	case strings.HasPrefix(s, "<<<"):
		l.i += 3
	case strings.HasPrefix(s, "<<-"):
		l.i += 3
		heredoc, strip = true, true
	case strings.HasPrefix(s, "<<"):
		l.i += 2
		heredoc = true
	case strings.HasPrefix(s, "&>>"):
		l.i += 3
	case strings.HasPrefix(s, ">>"), strings.HasPrefix(s, ">&"), strings.HasPrefix(s, "<&"),
		strings.HasPrefix(s, ">|"), strings.HasPrefix(s, "<>"), strings.HasPrefix(s, "&>"):
		l.i += 2
	default:
		l.i++
	}
	for l.i < len(l.s) && (l.s[l.i] == ' ' || l.s[l.i] == '\t') {
		l.i++
	}
	if heredoc {
		start := l.i
		for l.i < len(l.s) && strings.IndexByte(" \t\n;&|<>()", l.s[l.i]) < 0 {
			l.i++
		}
		delim := strings.NewReplacer(`"`, "", `'`, "", `\`, "").Replace(l.s[start:l.i])
		l.heredocs = append(l.heredocs, delim)
		l.strip = append(l.strip, strip)
		return
	}
	l.dropNext = true
}

// skipHeredocs skips the bodies of the here-documents started on the line
// that just ended.
func (l *lexer) skipHeredocs() {
	for k, delim := range l.heredocs {
		for l.i < len(l.s) {
			end := strings.IndexByte(l.s[l.i:], '\n')
			var line string
			if end < 0 {
				line, l.i = l.s[l.i:], len(l.s)
			} else {
				line, l.i = l.s[l.i:l.i+end], l.i+end+1
			}
			if l.strip[k] {
				line = strings.TrimLeft(line, "\t")
			}
			if line == delim {
				break
			}
		}
	}
	l.heredocs, l.strip = nil, nil
}

func (l *lexer) endWord() {
	if !l.inWord {
		return
	}
	w := word{text: l.word.String(), assign: l.assign}
	l.word.Reset()
	l.inWord, l.quoted, l.assign = false, false, 0
	if l.dropNext {
		l.dropNext = false
		return
	}
	l.cur = append(l.cur, w)
}

func (l *lexer) endCommand() {
	l.endWord()
	l.dropNext = false
	if len(l.cur) > 0 {
		l.cmds = append(l.cmds, rawCommand{words: l.cur})
	}
	l.cur = nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
