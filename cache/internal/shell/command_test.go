package shell

import (
	"fmt"
	"strings"
	"testing"
)

func TestCommands(t *testing.T) {
	vars := map[string]string{"HOME": "/root", "PIP_CACHE_DIR": "/root/.cache/pip"}
	sh := func(s string) []string { return []string{"/bin/sh", "-c", s} }
	show := func(cmds []Command) string {
		var parts []string
		for _, c := range cmds {
			var s []string
			for _, a := range c.Assigns {
				s = append(s, a.Name+"="+a.Value)
			}
			s = append(s, c.Args...)
			parts = append(parts, "["+strings.Join(s, "|")+"]")
		}
		return strings.Join(parts, " ")
	}
	tests := []struct {
		argv []string
		want string
	}{
		{sh("a && b || c; d & e | f |& g"), "[a] [b] [c] [d] [e] [f] [g]"},
		{sh("a 'b c' \"d $HOME e\" f\\ g"), "[a|b c|d /root e|f g]"},
		{sh(`echo "a\"b" '\n'`), `[echo|a"b|\n]`},
		{sh("a \\\n  b\nc"), "[a|b] [c]"},
		{sh("X=1 Y='2 3' cmd arg"), "[X=1|Y=2 3|cmd|arg]"},
		{sh("X=1"), "[X=1]"},
		{sh("cmd X=1"), "[cmd|X=1]"},
		{sh("'X'=1 cmd"), "[X=1|cmd]"},
		{sh("export A=1 B=$HOME; b"), "[A=1|B=/root] [b]"},
		{sh("(cd /x && make) ; { a; b; }"), "[cd|/x] [make] [a] [b]"},
		{sh("if true; then rm -rf x; fi"), "[true] [rm|-rf|x]"},
		{sh("for f in a b; do rm $f; done"), "[rm|$f]"},
		{sh("a > /out 2>&1 < in >>x 2> /dev/null &> all b"), "[a|b]"},
		{sh("cat <<EOF > f\nrm -rf /\nEOF\nnext"), "[cat] [next]"},
		{sh("cat <<-'X'\n\trm\n\tX\nafter"), "[cat] [after]"},
		{sh("a # b c\nd"), "[a] [d]"},
		{sh("a#b"), "[a#b]"},
		{sh("rm -rf ~/.cache ~ x~"), "[rm|-rf|/root/.cache|/root|x~]"},
		{sh("rm ${PIP_CACHE_DIR}/x ${UNKNOWN:-y} $UNKNOWN $(pwd) `pwd` $1"), "[rm|/root/.cache/pip/x|${UNKNOWN:-y}|$UNKNOWN|$(pwd)|`pwd`|$1]"},
		{sh("sudo -u app env -i A=1 timeout -s KILL 10 nohup exec cmd"), "[A=1|cmd]"},
		{sh(`bash -euxc 'pip install --no-cache-dir x && sh -c "rm y"'`), "[pip|install|--no-cache-dir|x] [rm|y]"},
		{sh("eval 'a; b'"), "[a] [b]"},
		{[]string{"pip", "install", "x"}, "[pip|install|x]"},
		{[]string{"/bin/bash", "-o", "pipefail", "-c", "a"}, "[/bin/bash|-o|pipefail|-c|a]"},
		{[]string{"busybox", "sh", "-c", "a; b"}, "[a] [b]"},
		{sh("unterminated 'quote"), "[unterminated|quote]"},
		{sh(`unterminated "quote $(x`), "[unterminated|quote $(x]"},
		{sh(""), ""},
	}
	for _, tt := range tests {
		if got := show(Commands(tt.argv, vars)); got != tt.want {
			t.Errorf("Commands(%q)\n got %s\nwant %s", tt.argv, got, tt.want)
		}
	}
}

// Nested shells and eval stop at a depth; odd input does not panic.
func TestCommandsBounded(t *testing.T) {
	script := "x"
	for i := 0; i < 20; i++ {
		script = fmt.Sprintf("sh -c %q", script)
	}
	Commands([]string{"sh", "-c", script}, nil)
	for _, s := range []string{"$", "${", "$(", "`", "\\", "'", "\"", "<<", "<<EOF", "2>", "&", "|&", "~", "a=b=c", "=x", "))(("} {
		Commands([]string{"sh", "-c", s}, map[string]string{"HOME": ""})
	}
}
