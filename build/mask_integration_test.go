package build_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/mounts"
)

// lockedBuffer is a bytes.Buffer for a display's goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.b.Bytes())
}

// Each kind of secret a step prints, in a passing and a failing step, is
// "***" in every progress mode, the events, the StepError and the report,
// while the step's own output keeps its place.
func TestSecretsAreMaskedInOutput(t *testing.T) {
	env, bb := setup(t)
	n := nonce()
	token := "tok-" + n
	envSecret := "env-" + n
	pem := "-----BEGIN LARDER KEY-----\nline-one-" + n + "\nline-two-" + n + "\n-----END LARDER KEY-----\n"
	keyFile := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(keyFile, []byte(pem), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LARDER_TEST_SECRET", envSecret)
	secrets := []string{token, envSecret, "line-one-" + n, "line-two-" + n}

	// Each secret printed whole, split in two writes, and as the tail of
	// a line with no newline.
	print := fmt.Sprintf(`cat /run/secrets/tok; echo; printf %%s "$ENVSEC" | head -c 5; printf %%s "$ENVSEC" | tail -c +6; echo " <- env"; cat /run/secrets/key; sed -n 3p /run/secrets/key; echo "tok again $(cat /run/secrets/tok) # %s"`, n)
	given := []build.SolveOption{
		build.WithSecret("tok", []byte(token)),
		build.WithSecretEnv("envsec", "LARDER_TEST_SECRET"),
		build.WithSecretFile("key", keyFile),
	}
	for _, tc := range []struct {
		name string
		cmd  string
	}{
		{"passing", print},
		{"failing", print + "; sleep 0.05; echo failing >&2; exit 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var plain, tty, raw lockedBuffer
			var events bytes.Buffer
			var mu sync.Mutex
			step := build.Image(bb).Run(tc.cmd, mounts.Secret("tok"), mounts.Secret("envsec", mounts.Env("ENVSEC")), mounts.Secret("key"))
			res, err := build.Solve(ctxT(t), env.Builder, step, append(given,
				build.Progress(&plain, "plain"), build.Progress(&tty, "tty"), build.Progress(&raw, "rawjson"),
				build.OnEvent(func(e build.Event) {
					mu.Lock()
					defer mu.Unlock()
					events.Write(e.Data)
					events.WriteString(e.Error)
				}))...)
			var se *build.StepError
			if tc.name == "failing" {
				if !errors.As(err, &se) {
					t.Fatalf("err = %v, want a StepError", err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			// rawjson carries log data in base64: decode what it holds.
			var rawLogs bytes.Buffer
			dec := json.NewDecoder(bytes.NewReader(raw.Bytes()))
			for dec.More() {
				var st struct {
					Logs []struct{ Data []byte }
				}
				if err := dec.Decode(&st); err != nil {
					t.Fatalf("rawjson: %v", err)
				}
				for _, l := range st.Logs {
					rawLogs.Write(l.Data)
				}
			}
			places := map[string][]byte{
				"plain progress": plain.Bytes(), "tty progress": tty.Bytes(), "rawjson progress": raw.Bytes(),
				"rawjson logs": rawLogs.Bytes(), "events": events.Bytes(),
			}
			if se != nil {
				places["StepError"] = []byte(se.Error() + strings.Join(se.Output, "\n"))
			}
			if res != nil {
				places["report"] = []byte(res.Report.String() + fmt.Sprint(res.Report.Steps))
			}
			for where, b := range places {
				for _, s := range secrets {
					if bytes.Contains(b, []byte(s)) {
						t.Errorf("%s holds the secret %q", where, s)
					}
				}
			}
			// The token twice, the variable, the key file whole and one of
			// its lines alone. (Plain progress shows a failed step's last
			// lines again.)
			for _, where := range []string{"plain progress", "rawjson logs", "events"} {
				if c := bytes.Count(places[where], []byte("***")); c != 5 && !(where == "plain progress" && c >= 5) {
					t.Errorf("%s shows *** %d times, want 5 (each secret where it was):\n%s", where, c, places[where])
				}
			}
			if !bytes.Contains(rawLogs.Bytes(), []byte("*** <- env")) || !bytes.Contains(rawLogs.Bytes(), []byte("tok again *** #")) {
				t.Errorf("the step's own output lost its place around the secrets:\n%s", rawLogs.Bytes())
			}
			if se != nil && (len(se.Output) == 0 || se.Output[len(se.Output)-1] != "failing") {
				t.Errorf("StepError output: %q", se.Output)
			}
		})
	}
}

// A failing step's output is all in its StepError, each stream's lines in
// order, and its last line, an error on stderr right after stdout, last
// every time. (Lines written to stdout and stderr within the same instant
// come in the order the builder's two readers got them, which no stamp
// can tell apart; a failed step's last stderr line goes last.)
func TestStepErrorOutputInOrder(t *testing.T) {
	env, bb := setup(t)
	n := nonce()
	for i := range 20 {
		step := build.Image(bb).Run(fmt.Sprintf("for i in 1 2 3; do echo out-$i; done; echo err-1 >&2; echo out-last; echo err-last >&2; exit 1 # %s %d", n, i))
		_, err := build.Solve(ctxT(t), env.Builder, step)
		var se *build.StepError
		if !errors.As(err, &se) {
			t.Fatalf("solve %d: %v", i, err)
		}
		got := se.Output
		var out, errs []string
		for _, l := range got {
			if strings.HasPrefix(l, "out-") {
				out = append(out, l)
			} else {
				errs = append(errs, l)
			}
		}
		if strings.Join(out, "|") != "out-1|out-2|out-3|out-last" || strings.Join(errs, "|") != "err-1|err-last" || got[len(got)-1] != "err-last" {
			t.Errorf("solve %d: output %q, want every line, each stream in order, err-last last", i, got)
		}
		if !strings.HasSuffix(se.Error(), "\n  err-last") {
			t.Errorf("solve %d: the message does not end with the last line: %q", i, se.Error())
		}
	}
}

// A step that mounts an optional secret no option gives (a typo of its
// id) runs without it, and the report says so.
func TestMissingOptionalSecretIsReported(t *testing.T) {
	env, bb := setup(t)
	step := build.Image(bb).Run("test ! -e /run/secrets/npmrc # "+nonce(), mounts.Secret("npmrc"), mounts.Secret("tok", mounts.Env("TOKEN")))
	res, err := build.Solve(ctxT(t), env.Builder, step, build.WithSecret("npmrcc", []byte("x")))
	if err != nil {
		t.Fatal(err)
	}
	w := strings.Join(res.Report.Warnings, "\n")
	for _, want := range []string{`optional secret "npmrc" at /run/secrets/npmrc`, `optional secret "tok" into $TOKEN`, "a typo of the id?"} {
		if !strings.Contains(w, want) {
			t.Errorf("the report's warnings %q lack %q", w, want)
		}
	}
}
