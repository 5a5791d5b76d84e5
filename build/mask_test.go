package build

import (
	"strings"
	"testing"
	"time"
)

func TestMaskerMasksValuesAndTheirLines(t *testing.T) {
	m := newMasker(map[string][]byte{
		"token": []byte("s3cr3t-t0ken\n"),
		"pem":   []byte("-----BEGIN KEY-----\nAAAAline-two\r\nBBBBline-three\n-----END KEY-----\n"),
		"short": []byte("abc"),
	})
	in := "token=s3cr3t-t0ken pem line AAAAline-two then BBBBline-three; abc stays"
	got := m.maskString(in)
	want := "token=*** pem line *** then ***; abc stays"
	if got != want {
		t.Errorf("maskString = %q, want %q", got, want)
	}
	if newMasker(map[string][]byte{"a": []byte("xyz"), "b": nil}) != nil {
		t.Error("values shorter than 4 bytes made a masker")
	}
	var nilMasker *masker
	if got := nilMasker.maskString("s3cr3t"); got != "s3cr3t" {
		t.Errorf("a nil masker changed %q", got)
	}
}

// A secret split across chunks, at every split point, is masked, and
// nothing else is held back once the stream ends.
func TestMaskStreamAcrossChunks(t *testing.T) {
	m := newMasker(map[string][]byte{"t": []byte("hunter22")})
	text := "before hunter22 middle hunter22 after hunt"
	for i := 0; i <= len(text); i++ {
		for j := i; j <= len(text); j++ {
			s := &maskStream{m: m}
			var out []byte
			for _, chunk := range []string{text[:i], text[i:j], text[j:]} {
				out = append(out, s.write([]byte(chunk))...)
			}
			out = append(out, s.flush()...)
			if got, want := string(out), "before *** middle *** after hunt"; got != want {
				t.Fatalf("chunks at %d,%d: %q, want %q", i, j, got, want)
			}
		}
	}
}

func TestStepLogOrdersLinesByWhenTheyBegan(t *testing.T) {
	l := newStepLog()
	t0 := time.Unix(100, 0)
	// stderr arrives first, though stdout's lines began earlier.
	l.add(nil, 2, t0.Add(3*time.Millisecond), []byte("err-1\n"))
	l.add(nil, 1, t0.Add(1*time.Millisecond), []byte("out-1\nout-"))
	l.add(nil, 1, t0.Add(4*time.Millisecond), []byte("2\n"))
	l.add(nil, 2, t0.Add(5*time.Millisecond), []byte("err-last"))
	got := strings.Join(l.tail(10, false), "|")
	if want := "out-1|out-2|err-1|err-last"; got != want {
		t.Errorf("tail = %q, want %q", got, want)
	}
	if got := strings.Join(l.tail(2, false), "|"); got != "err-1|err-last" {
		t.Errorf("tail(2) = %q", got)
	}
	for i := range 3 * keptLines {
		l.add(nil, 1, t0.Add(time.Second+time.Duration(i)), []byte("x\n"))
	}
	if n := len(l.tail(keptLines+10, false)); n > 2*keptLines {
		t.Errorf("kept %d lines", n)
	}
}

// A failed step's last stderr line, read in the same instant as stdout's
// last lines, goes last; one read well before them keeps its place.
func TestStepLogPutsAFailingStepsErrorLast(t *testing.T) {
	t0 := time.Unix(100, 0)
	l := newStepLog()
	l.add(nil, 2, t0, []byte("err-1\nerr-last\n"))
	l.add(nil, 1, t0.Add(2*time.Millisecond), []byte("out-1\nout-last\n"))
	if got := strings.Join(l.tail(10, true), "|"); got != "err-1|out-1|out-last|err-last" {
		t.Errorf("tail = %q", got)
	}
	l = newStepLog()
	l.add(nil, 2, t0, []byte("warning\n"))
	l.add(nil, 1, t0.Add(time.Second), []byte("out-last\n"))
	if got := strings.Join(l.tail(10, true), "|"); got != "warning|out-last" {
		t.Errorf("tail = %q", got)
	}
}
