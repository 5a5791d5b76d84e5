package cache

import (
	"path"
	"strings"
)

// This file reads a step's command the way a POSIX shell splits it into
// simple commands, well enough for Preset.Warnings: quotes, escapes, line
// continuations, comments, &&, ||, ;, &, pipes, subshells, redirections,
// here-documents, leading variable assignments, wrappers such as sudo and
// env, and nested sh -c scripts. It does not run anything: command
// substitutions are kept as text and unknown variables are not expanded.

// shellCommand is one simple command of a step.
type shellCommand struct {
	// assigns are the variables the command sets for itself (NAME=value
	// before it, or env NAME=value) or for the commands after it (export
	// NAME=value, or a command made only of assignments).
	assigns []shellAssign
	// args is the command and its arguments, after quote removal, with
	// wrappers such as sudo left out.
	args []string
}

type shellAssign struct{ name, value string }

// name returns the last element of the command's program, such as "pip3"
// for /usr/bin/pip3, or "" for a command made only of assignments.
func (c shellCommand) name() string {
	if len(c.args) == 0 {
		return ""
	}
	return path.Base(c.args[0])
}

// text returns the command as one line, for messages.
func (c shellCommand) text() string {
	const max = 80
	s := strings.Join(c.args, " ")
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}

// maxShellDepth bounds nested sh -c and eval.
const maxShellDepth = 8

// commandsOf returns the simple commands that argv runs: the commands of
// the script of a shell's -c, or argv itself. vars are the variables whose
// values are known ($NAME, ${NAME}; HOME also for ~).
func commandsOf(argv []string, vars map[string]string) []shellCommand {
	return simplify([]rawCommand{{words: wordsOf(argv)}}, vars, 0)
}

func wordsOf(argv []string) []shellWord {
	ws := make([]shellWord, len(argv))
	for i, a := range argv {
		ws[i] = shellWord{text: a}
	}
	return ws
}

// shellWord is a word after quote removal. assign is the length of NAME
// when the word is an unquoted NAME=value, else 0.
type shellWord struct {
	text   string
	assign int
}

type rawCommand struct{ words []shellWord }

// simplify turns raw commands into shellCommands: assignments split off,
// keywords and wrappers left out, and shells and eval read recursively.
func simplify(raws []rawCommand, vars map[string]string, depth int) []shellCommand {
	var out []shellCommand
	for _, r := range raws {
		for _, c := range simplifyOne(r.words, vars, depth) {
			if len(c.args) > 0 || len(c.assigns) > 0 {
				out = append(out, c)
			}
		}
	}
	return out
}

func simplifyOne(ws []shellWord, vars map[string]string, depth int) []shellCommand {
	var c shellCommand
	// Keywords and leading assignments.
	for len(ws) > 0 {
		w := ws[0]
		if w.assign > 0 {
			c.assigns = append(c.assigns, shellAssign{w.text[:w.assign], w.text[w.assign+1:]})
		} else if isKeyword(w.text) {
			if w.text == "for" || w.text == "case" || w.text == "select" {
				return nil // the words are a loop's list, not a command
			}
		} else {
			break
		}
		ws = ws[1:]
	}
	// Wrappers that run the rest of their arguments as a command.
	for len(ws) > 0 {
		switch path.Base(ws[0].text) {
		case "sudo", "doas":
			ws = skipOptions(ws[1:], "u", "g", "C", "D", "h", "p", "r", "t", "T", "U")
			continue
		case "env":
			ws = ws[1:]
			for len(ws) > 0 {
				t := ws[0].text
				if strings.HasPrefix(t, "-") {
					ws = ws[1:]
					if (t == "-u" || t == "-C" || t == "-S") && len(ws) > 0 {
						ws = ws[1:]
					}
					continue
				}
				if i := strings.IndexByte(t, '='); i > 0 && validName(t[:i]) {
					c.assigns = append(c.assigns, shellAssign{t[:i], t[i+1:]})
					ws = ws[1:]
					continue
				}
				break
			}
			continue
		case "exec", "command", "nohup", "time", "builtin":
			ws = skipOptions(ws[1:])
			continue
		case "nice", "ionice", "stdbuf", "chrt":
			ws = skipOptions(ws[1:], "n", "c", "i", "o", "e")
			continue
		case "timeout":
			ws = skipOptions(ws[1:], "s", "k")
			if len(ws) > 0 {
				ws = ws[1:] // the duration
			}
			continue
		}
		break
	}
	for _, w := range ws {
		c.args = append(c.args, w.text)
	}
	switch c.name() {
	case "export", "declare", "typeset", "local", "readonly":
		for _, a := range c.args[1:] {
			if i := strings.IndexByte(a, '='); i > 0 && validName(a[:i]) {
				c.assigns = append(c.assigns, shellAssign{a[:i], a[i+1:]})
			}
		}
		return []shellCommand{{assigns: c.assigns}}
	case "eval":
		if depth < maxShellDepth {
			return append([]shellCommand{{assigns: c.assigns}}, simplify(parseShell(strings.Join(c.args[1:], " "), vars), vars, depth+1)...)
		}
	}
	if script, ok := shellScript(c.args); ok && depth < maxShellDepth {
		return append([]shellCommand{{assigns: c.assigns}}, simplify(parseShell(script, vars), vars, depth+1)...)
	}
	return []shellCommand{c}
}

// skipOptions drops leading options; those named in withValue take the
// next word as their value.
func skipOptions(ws []shellWord, withValue ...string) []shellWord {
	for len(ws) > 0 && strings.HasPrefix(ws[0].text, "-") && ws[0].text != "-" {
		t := ws[0].text
		ws = ws[1:]
		if t == "--" {
			break
		}
		for _, v := range withValue {
			if t == "-"+v && len(ws) > 0 {
				ws = ws[1:]
				break
			}
		}
	}
	return ws
}

// shellScript returns the script of a shell run with -c, such as
// ["/bin/sh", "-ec", "make"].
func shellScript(args []string) (string, bool) {
	if len(args) < 3 {
		return "", false
	}
	switch path.Base(args[0]) {
	case "sh", "bash", "dash", "ash", "zsh", "ksh", "mksh", "busybox":
	default:
		return "", false
	}
	rest := args[1:]
	if path.Base(args[0]) == "busybox" {
		if len(rest) < 3 || rest[0] != "sh" {
			return "", false
		}
		rest = rest[1:]
	}
	for i, a := range rest {
		if !strings.HasPrefix(a, "-") || a == "-" || a == "--" {
			return "", false
		}
		if !strings.HasPrefix(a, "--") && strings.ContainsRune(a[1:], 'c') {
			if i+1 < len(rest) {
				return rest[i+1], true
			}
			return "", false
		}
		if a == "-o" || a == "+o" {
			return "", false // option names are not followed here
		}
	}
	return "", false
}

func isKeyword(s string) bool {
	switch s {
	case "if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!", "{", "}", "for", "case", "esac", "select", "in":
		return true
	}
	return false
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case i > 0 && r >= '0' && r <= '9':
		default:
			return false
		}
	}
	return true
}

// shellLexer splits a script into raw commands.
type shellLexer struct {
	s    string
	i    int
	vars map[string]string

	cmds     []rawCommand
	cur      []shellWord
	word     strings.Builder
	inWord   bool
	quoted   bool // the word so far has quotes or expansions
	assign   int
	dropNext bool     // the next word is a redirection's target
	heredocs []string // delimiters of here-documents that start at the next newline
	strip    []bool   // whether each here-document is <<- (leading tabs)
}

// parseShell returns the raw commands of script.
func parseShell(script string, vars map[string]string) []rawCommand {
	l := &shellLexer{s: script, vars: vars}
	l.run()
	return l.cmds
}

func (l *shellLexer) run() {
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
func (l *shellLexer) doubleQuoted() {
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
func (l *shellLexer) dollar() {
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
func (l *shellLexer) redirect() {
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
func (l *shellLexer) skipHeredocs() {
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

func (l *shellLexer) endWord() {
	if !l.inWord {
		return
	}
	w := shellWord{text: l.word.String(), assign: l.assign}
	l.word.Reset()
	l.inWord, l.quoted, l.assign = false, false, 0
	if l.dropNext {
		l.dropNext = false
		return
	}
	l.cur = append(l.cur, w)
}

func (l *shellLexer) endCommand() {
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
