package shell

import (
	"path"
	"strings"
)

// Command is one simple command of a step, as Commands finds it.
type Command struct {
	// Assigns are the variables the command sets for itself (NAME=value
	// before it, or env NAME=value) or for the commands after it (export
	// NAME=value, or a command made only of assignments), in the order
	// they are written.
	Assigns []Assign
	// Args is the command and its arguments, after quote removal, with
	// wrappers such as sudo left out. It is empty for a command that only
	// sets variables.
	Args []string
}

// Assign is a variable assignment, NAME=value, after quote removal.
type Assign struct {
	// Name is the variable's name.
	Name string
	// Value is the value as written, with known variables expanded.
	Value string
}

// Name returns the last element of the command's program, such as "pip3"
// for /usr/bin/pip3, or "" for a command that only sets variables.
func (c Command) Name() string {
	if len(c.Args) == 0 {
		return ""
	}
	return path.Base(c.Args[0])
}

// Text returns the command's arguments as one line, for messages: joined
// by spaces and cut after 80 bytes, with "…" appended when cut.
func (c Command) Text() string {
	const max = 80
	s := strings.Join(c.Args, " ")
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}

// maxDepth bounds nested sh -c and eval.
const maxDepth = 8

// Commands returns the simple commands that argv, a step's argv, runs: the
// commands of the script of a shell's -c (["/bin/sh", "-c", "…"]), read
// through &&, ;, pipes, nested sh -c and eval down to a fixed depth, or
// else argv itself as one command. vars are the variables whose values are
// known ($NAME, ${NAME}; HOME also for ~); vars may be nil, and other
// variables are kept as written. Commands never fails: an unterminated
// quote or expansion runs to the end of the script. Every call returns new
// slices.
func Commands(argv []string, vars map[string]string) []Command {
	return simplify([]rawCommand{{words: wordsOf(argv)}}, vars, 0)
}

func wordsOf(argv []string) []word {
	ws := make([]word, len(argv))
	for i, a := range argv {
		ws[i] = word{text: a}
	}
	return ws
}

// word is a word after quote removal. assign is the length of NAME
// when the word is an unquoted NAME=value, else 0.
type word struct {
	text   string
	assign int
}

type rawCommand struct{ words []word }

// simplify turns raw commands into Commands: assignments split off,
// keywords and wrappers left out, and shells and eval read recursively.
func simplify(raws []rawCommand, vars map[string]string, depth int) []Command {
	var out []Command
	for _, r := range raws {
		for _, c := range simplifyOne(r.words, vars, depth) {
			if len(c.Args) > 0 || len(c.Assigns) > 0 {
				out = append(out, c)
			}
		}
	}
	return out
}

func simplifyOne(ws []word, vars map[string]string, depth int) []Command {
	var c Command
	// Keywords and leading assignments.
	for len(ws) > 0 {
		w := ws[0]
		if w.assign > 0 {
			c.Assigns = append(c.Assigns, Assign{w.text[:w.assign], w.text[w.assign+1:]})
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
					c.Assigns = append(c.Assigns, Assign{t[:i], t[i+1:]})
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
		c.Args = append(c.Args, w.text)
	}
	switch c.Name() {
	case "export", "declare", "typeset", "local", "readonly":
		for _, a := range c.Args[1:] {
			if i := strings.IndexByte(a, '='); i > 0 && validName(a[:i]) {
				c.Assigns = append(c.Assigns, Assign{a[:i], a[i+1:]})
			}
		}
		return []Command{{Assigns: c.Assigns}}
	case "eval":
		if depth < maxDepth {
			return append([]Command{{Assigns: c.Assigns}}, simplify(parse(strings.Join(c.Args[1:], " "), vars), vars, depth+1)...)
		}
	}
	if script, ok := scriptOf(c.Args); ok && depth < maxDepth {
		return append([]Command{{Assigns: c.Assigns}}, simplify(parse(script, vars), vars, depth+1)...)
	}
	return []Command{c}
}

// skipOptions drops leading options; those named in withValue take the
// next word as their value.
func skipOptions(ws []word, withValue ...string) []word {
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

// scriptOf returns the script of a shell run with -c, such as
// ["/bin/sh", "-ec", "make"].
func scriptOf(args []string) (string, bool) {
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
