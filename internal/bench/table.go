package bench

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Verdict says how a figure compares with its target.
type Verdict int

const (
	// NoTarget: the figure is shown for context.
	NoTarget Verdict = iota
	// Met: the figure meets its target.
	Met
	// NotMet: the figure misses its target.
	NotMet
	// NotRun: the figure could not be measured; the note says why.
	NotRun
)

// String returns the verdict as the table prints it.
func (v Verdict) String() string {
	switch v {
	case Met:
		return "met"
	case NotMet:
		return "NOT MET"
	case NotRun:
		return "not run"
	}
	return "-"
}

// Row is one figure of the table.
type Row struct {
	// Scenario names the scenario, such as "1 apt".
	Scenario string
	// Figure says what is measured.
	Figure string
	// Value is the measured figure, as printed.
	Value string
	// Target is the figure the scenario aims for, "" for none.
	Target string
	// Verdict says whether Value meets Target.
	Verdict Verdict
	// Note explains the figure, "" for nothing to add.
	Note string
}

// Table is what a run measured, one row per figure.
type Table struct {
	// Rows are the figures in the order they were measured.
	Rows []Row
}

func (t *Table) add(r Row) { t.Rows = append(t.Rows, r) }

// notRun records that a scenario's figures could not be measured.
func (t *Table) notRun(scenario, figure, why string) {
	t.add(Row{Scenario: scenario, Figure: figure, Verdict: NotRun, Note: why})
}

// Count returns how many rows have verdict v.
func (t *Table) Count(v Verdict) int {
	n := 0
	for _, r := range t.Rows {
		if r.Verdict == v {
			n++
		}
	}
	return n
}

// Write prints the table in Markdown, its columns padded so that it reads
// as well in a terminal.
func (t *Table) Write(w io.Writer) error {
	head := []string{"scenario", "figure", "measured", "target", "verdict", "note"}
	cells := [][]string{head}
	for _, r := range t.Rows {
		cells = append(cells, []string{r.Scenario, r.Figure, r.Value, r.Target, r.Verdict.String(), r.Note})
	}
	width := make([]int, len(head))
	for _, row := range cells {
		for i, c := range row {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	line := func(row []string) {
		b.WriteString("|")
		for i, c := range row {
			b.WriteString(" " + c + strings.Repeat(" ", width[i]-len([]rune(c))) + " |")
		}
		b.WriteString("\n")
	}
	line(cells[0])
	sep := make([]string, len(head))
	for i := range sep {
		sep[i] = strings.Repeat("-", width[i])
	}
	line(sep)
	for _, row := range cells[1:] {
		line(row)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ratio returns a/b, or 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// pairedRatio returns the median of a[i]/b[i]: each sample of a against
// the sample of b taken next to it, so that a machine whose load changes
// during the run weighs on both sides of each ratio alike.
func pairedRatio(a, b []time.Duration) float64 {
	var rs []float64
	for i := range min(len(a), len(b)) {
		if b[i] > 0 {
			rs = append(rs, float64(a[i])/float64(b[i]))
		}
	}
	if len(rs) == 0 {
		return 0
	}
	slices.Sort(rs)
	if len(rs)%2 == 1 {
		return rs[len(rs)/2]
	}
	return (rs[len(rs)/2-1] + rs[len(rs)/2]) / 2
}

// timeRatio formats a timed comparison: the median of the paired ratios,
// and the median times of each side.
func timeRatio(r float64, a, b time.Duration) string {
	return fmt.Sprintf("%.2f× (%s vs %s)", r, secs(a), secs(b))
}

// atMost returns Met when v ≤ limit, else NotMet.
func atMost(v, limit float64) Verdict {
	if v <= limit {
		return Met
	}
	return NotMet
}

// mb formats a byte count in megabytes (10⁶ bytes) with enough digits to
// be exact to the kilobyte where it matters.
func mb(n int64) string {
	switch {
	case n >= 10_000_000:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1_000_000:
		return fmt.Sprintf("%.2f MB", float64(n)/1e6)
	default:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
}

// secs formats a duration in seconds.
func secs(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	}
}

// median returns the median of ds, the mean of the middle two for an even
// count.
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// medianInt is median for byte counts.
func medianInt(ns []int64) int64 {
	if len(ns) == 0 {
		return 0
	}
	s := slices.Clone(ns)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
