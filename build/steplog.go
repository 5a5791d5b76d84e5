package build

import (
	"bytes"
	"slices"
	"time"
)

// keptLines bounds the lines a stepLog keeps: the last ones.
const keptLines = 200

// stepLog is what one step wrote: its streams masked, and its last lines in
// the order the builder received them, stdout and stderr together. The
// builder stamps each chunk of output when it reads it from the step, and
// sends each stream on its own, so lines are ordered by the stamp of the
// chunk that began them, not by when their stream arrived.
type stepLog struct {
	streams map[int]*streamLog
	lines   []logLine
	seq     int
}

// streamLog is one stream of a step: stdout (1) or stderr (2).
type streamLog struct {
	id      int // 1 for stdout, 2 for stderr
	mask    maskStream
	partial []byte    // the start of a line not ended yet
	began   time.Time // when the partial line began
}

// logLine is one line a step wrote.
type logLine struct {
	t      time.Time
	seq    int // the order lines were ended in, for lines begun at once
	stream int
	text   string
}

// sameInstant is how close the builder's stamps of two streams' chunks
// must be for their order to be unknown: the builder reads stdout and
// stderr with a reader each, stamping a chunk when its reader gets to it.
const sameInstant = 20 * time.Millisecond

func newStepLog() *stepLog { return &stepLog{streams: map[int]*streamLog{}} }

// add takes a chunk of stream, read by the builder at t, and returns what
// of it (with what was held back before) can be shown now, masked.
func (l *stepLog) add(m *masker, stream int, t time.Time, data []byte) []byte {
	s := l.streams[stream]
	if s == nil {
		s = &streamLog{mask: maskStream{m: m}, id: stream}
		l.streams[stream] = s
	}
	out := s.mask.write(data)
	l.split(s, t, out)
	return out
}

// flush returns what each stream held back, by stream, and ends their
// partial lines: the step is done.
func (l *stepLog) flush(t time.Time) map[int][]byte {
	out := map[int][]byte{}
	for id, s := range l.streams {
		if b := s.mask.flush(); len(b) > 0 {
			out[id] = b
			l.split(s, t, b)
		}
		if len(s.partial) > 0 {
			l.end(s)
		}
	}
	return out
}

// split adds the lines that b, read at t, ends or begins on s.
func (l *stepLog) split(s *streamLog, t time.Time, b []byte) {
	for len(b) > 0 {
		if len(s.partial) == 0 {
			s.began = t
		}
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			s.partial = append(s.partial, b...)
			return
		}
		s.partial = append(s.partial, b[:i]...)
		l.end(s)
		b = b[i+1:]
	}
}

// end ends s's partial line.
func (l *stepLog) end(s *streamLog) {
	l.seq++
	l.lines = append(l.lines, logLine{t: s.began, seq: l.seq, stream: s.id, text: string(bytes.TrimRight(s.partial, "\r"))})
	s.partial = s.partial[:0]
	if len(l.lines) > 2*keptLines {
		l.lines = slices.Delete(l.lines, 0, len(l.lines)-keptLines)
	}
}

// tail returns the last n lines, in the order the builder read them,
// partial lines included. When errLast is true (the step failed) and the
// last line of stderr was read within the same instant as the lines after
// it, which the builder's stamps can't order, it goes last: a failing
// command writes its error last.
func (l *stepLog) tail(n int, errLast bool) []string {
	all := slices.Clone(l.lines)
	for _, s := range l.streams {
		if len(s.partial) > 0 {
			all = append(all, logLine{t: s.began, seq: l.seq + 1, stream: s.id, text: string(s.partial)})
		}
	}
	slices.SortStableFunc(all, func(a, b logLine) int {
		if c := a.t.Compare(b.t); c != 0 {
			return c
		}
		return a.seq - b.seq
	})
	if errLast {
		last := -1
		for j := len(all) - 1; j >= 0; j-- {
			if all[j].stream == 2 {
				last = j
				break
			}
		}
		if last >= 0 && last < len(all)-1 && all[len(all)-1].t.Sub(all[last].t) <= sameInstant {
			e := all[last]
			all = append(slices.Delete(all, last, last+1), e)
		}
	}
	if len(all) > n {
		all = all[len(all)-n:]
	}
	out := make([]string, len(all))
	for i, line := range all {
		out[i] = line.text
	}
	return out
}
