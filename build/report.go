package build

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/containerd/platforms"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	gatewaypb "github.com/moby/buildkit/frontend/gateway/pb"
	"github.com/moby/buildkit/solver/errdefs"
	"github.com/moby/buildkit/solver/pb"
	"github.com/moby/buildkit/util/progress/progressui"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// Report describes a solve: each step of the graph, whether it ran or came
// from cache, and how long it took. The report of a solve of several
// platforms holds the steps of all of them.
type Report struct {
	// Builder is the name of the daemon that ran the solve; for several
	// platforms, the names of the daemons, comma-separated.
	Builder string
	// Platform is the platform the graph was built for; for several, the
	// platforms, comma-separated.
	Platform string
	// Steps are the graph's operations in the order the builder reached
	// them. Internal work of the builder, such as resolving image
	// configurations, is not a step.
	Steps []Step
	// Warnings are what the graph does that defeats a cache.
	Warnings []string
	// CacheMounts says, per cache mount, what PersistCacheMounts restored
	// and saved; empty without it.
	CacheMounts []MountReport
	// Duration is the wall time of the solve.
	Duration time.Duration
}

// Step is one operation of a solved graph.
type Step struct {
	Name   string
	Digest digest.Digest
	// Platform is the platform of the solve the step belongs to.
	Platform string
	// Kind is what the operation does: "source" (an image, local
	// directory, git checkout or download), "exec" (a command), "file" (a
	// copy or other file operation), "merge", "diff" or "build".
	Kind string
	// Cached is true when the step's result came from cache.
	Cached bool
	// Started and Completed are zero for a step that never started.
	Started, Completed time.Time
	// Error is the step's error, "" when it succeeded.
	Error string

	noInputs bool // a source, or an operation on nothing, such as a mkdir on scratch
}

// Duration is how long the step ran, 0 for a cached step.
func (s Step) Duration() time.Duration {
	if s.Started.IsZero() || s.Completed.IsZero() {
		return 0
	}
	return s.Completed.Sub(s.Started)
}

// CachedSteps returns how many steps with inputs came from cache. Steps
// without inputs, sources and operations on an empty filesystem (such as
// the directory that gives a cache mount its owner), are left out of both
// counts: BuildKit evaluates them on every solve (a tag may have moved, a
// directory changed), even when every step on top of them comes from cache.
func (r *Report) CachedSteps() int { return r.count(true) }

// RanSteps returns how many steps with inputs ran; see [Report.CachedSteps].
func (r *Report) RanSteps() int { return r.count(false) }

func (r *Report) count(cached bool) int {
	n := 0
	for _, s := range r.Steps {
		if s.Kind != "source" && !s.noInputs && s.Cached == cached {
			n++
		}
	}
	return n
}

// Find returns the first step whose name contains substr.
func (r *Report) Find(substr string) (Step, bool) {
	for _, s := range r.Steps {
		if strings.Contains(s.Name, substr) {
			return s, true
		}
	}
	return Step{}, false
}

// String renders the report as one line per step.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "solve on %s for %s: %d cached, %d ran, %s\n",
		r.Builder, r.Platform, r.CachedSteps(), r.RanSteps(), r.Duration.Round(time.Millisecond))
	for _, s := range r.Steps {
		state := "ran   " + s.Duration().Round(time.Millisecond).String()
		if s.Cached {
			state = "cached"
		}
		if s.Error != "" {
			state = "failed"
		}
		fmt.Fprintf(&b, "  %-14s %s\n", state, s.Name)
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(&b, "  warning: %s\n", w)
	}
	for _, m := range r.CacheMounts {
		fmt.Fprintf(&b, "  cache %s: restored %s (%d B, %s), saved %s (%d B, %s)",
			m.ID, yesNo(m.Restored), m.RestoredBytes, m.RestoreTime.Round(time.Millisecond),
			yesNo(m.Exported), m.ExportedBytes, m.ExportTime.Round(time.Millisecond))
		for _, n := range m.Notes {
			fmt.Fprintf(&b, "; %s", n)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// EventKind says what an [Event] reports.
type EventKind int

const (
	// StepStarted: a step began to run.
	StepStarted EventKind = iota + 1
	// StepCached: a step's result was found in cache.
	StepCached
	// StepDone: a step finished without error.
	StepDone
	// StepFailed: a step finished with an error, in Event.Error.
	StepFailed
	// StepLog: a step wrote output, in Event.Data.
	StepLog
)

// String returns the kind's name, such as "cached".
func (k EventKind) String() string {
	switch k {
	case StepStarted:
		return "started"
	case StepCached:
		return "cached"
	case StepDone:
		return "done"
	case StepFailed:
		return "failed"
	case StepLog:
		return "log"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is one thing that happened during a solve, for programs that draw
// their own progress.
type Event struct {
	Kind EventKind
	Time time.Time
	// Platform is the platform of the solve the event belongs to.
	Platform string
	Step     string
	Digest   digest.Digest
	// Data is the output of a StepLog event.
	Data []byte
	// Stream is 1 for stdout and 2 for stderr in a StepLog event.
	Stream int
	// Error is the error of a StepFailed event.
	Error string
}

const logTailLines = 20

// recorder turns BuildKit's status stream into the report, events, the
// displays, and the output tail of each step.
type recorder struct {
	onEvent  []func(Event)
	platform string

	mu       sync.Mutex
	report   *Report
	index    map[digest.Digest]int            // step index in report.Steps
	expected map[digest.Digest]*pb.Op         // the definition's operations
	pending  map[digest.Digest]*client.Vertex // seen before the definition was known
	logs     map[digest.Digest]*bytes.Buffer
}

func newRecorder(report *Report, p ocispecs.Platform, onEvent []func(Event)) *recorder {
	return &recorder{
		onEvent:  onEvent,
		platform: platforms.Format(p),
		report:   report,
		index:    map[digest.Digest]int{},
		logs:     map[digest.Digest]*bytes.Buffer{},
		pending:  map[digest.Digest]*client.Vertex{},
	}
}

// expect records the digests of the definition's operations: only those
// are steps.
func (r *recorder) expect(def *llb.Definition) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expected = map[digest.Digest]*pb.Op{}
	for _, dt := range def.Def {
		var op pb.Op
		if err := op.UnmarshalVT(dt); err == nil {
			r.expected[digest.FromBytes(dt)] = &op
		}
	}
	for _, v := range r.pending {
		r.vertex(v)
	}
	r.pending = nil
}

// consume records statuses and passes them on to display until ch
// closes, then closes the returned channel.
func (r *recorder) consume(ch <-chan *client.SolveStatus, display chan<- *client.SolveStatus) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for st := range ch {
			r.status(st)
			if display != nil {
				display <- st
			}
		}
	}()
	return done
}

// displays draws BuildKit's progress displays from the statuses of every
// solve of a Solve.
type displays struct {
	in   chan *client.SolveStatus // nil when there is no display
	wait func()                   // closes in and waits for the displays
}

func startDisplays(ctx context.Context, ds []display) displays {
	if len(ds) == 0 {
		return displays{wait: func() {}}
	}
	in := make(chan *client.SolveStatus, 64)
	var outs []chan *client.SolveStatus
	var wg sync.WaitGroup
	for _, d := range ds {
		disp, err := progressui.NewDisplay(d.w, d.mode)
		if err != nil {
			// Only a tty mode on a writer that is not a terminal fails;
			// fall back to plain lines.
			disp, _ = progressui.NewDisplay(d.w, progressui.PlainMode)
		}
		out := make(chan *client.SolveStatus, 64)
		outs = append(outs, out)
		wg.Add(1)
		go func() {
			defer wg.Done()
			disp.UpdateFrom(context.WithoutCancel(ctx), out)
		}()
	}
	go func() {
		for st := range in {
			for _, out := range outs {
				out <- st
			}
		}
		for _, out := range outs {
			close(out)
		}
	}()
	return displays{in: in, wait: func() { close(in); wg.Wait() }}
}

// mergeReports makes the report of a whole solve from its platforms'.
func mergeReports(results []PlatformResult, d time.Duration) *Report {
	if len(results) == 1 && results[0].Report != nil {
		return results[0].Report
	}
	m := &Report{Duration: d}
	var builders, plats []string
	for _, r := range results {
		if r.Report == nil {
			continue
		}
		if !slices.Contains(builders, r.Builder) {
			builders = append(builders, r.Builder)
		}
		plats = append(plats, r.Platform)
		m.Steps = append(m.Steps, r.Report.Steps...)
		m.CacheMounts = append(m.CacheMounts, r.Report.CacheMounts...)
		for _, w := range r.Report.Warnings {
			if !slices.Contains(m.Warnings, w) {
				m.Warnings = append(m.Warnings, w)
			}
		}
	}
	m.Builder = strings.Join(builders, ",")
	m.Platform = strings.Join(plats, ",")
	return m
}

func (r *recorder) status(st *client.SolveStatus) {
	var events []Event
	r.mu.Lock()
	for _, v := range st.Vertexes {
		if r.expected == nil {
			cp := *v
			r.pending[v.Digest] = &cp
		} else {
			r.vertex(v)
		}
		events = append(events, vertexEvents(v, r.platform)...)
	}
	for _, l := range st.Logs {
		buf := r.logs[l.Vertex]
		if buf == nil {
			buf = &bytes.Buffer{}
			r.logs[l.Vertex] = buf
		}
		buf.Write(l.Data)
		if buf.Len() > 64<<10 {
			tail := bytes.Clone(buf.Bytes()[buf.Len()-32<<10:])
			buf.Reset()
			buf.Write(tail)
		}
		events = append(events, Event{Kind: StepLog, Time: l.Timestamp, Platform: r.platform, Digest: l.Vertex, Step: r.name(l.Vertex), Data: l.Data, Stream: l.Stream})
	}
	r.mu.Unlock()
	for _, e := range events {
		for _, fn := range r.onEvent {
			fn(e)
		}
	}
}

func vertexEvents(v *client.Vertex, platform string) []Event {
	base := Event{Step: v.Name, Digest: v.Digest, Platform: platform}
	switch {
	case v.Cached:
		base.Kind, base.Time = StepCached, timeOr(v.Completed, v.Started)
	case v.Error != "":
		base.Kind, base.Time, base.Error = StepFailed, timeOr(v.Completed, v.Started), v.Error
	case v.Completed != nil:
		base.Kind, base.Time = StepDone, *v.Completed
	case v.Started != nil:
		base.Kind, base.Time = StepStarted, *v.Started
	default:
		return nil
	}
	return []Event{base}
}

func timeOr(ts ...*time.Time) time.Time {
	for _, t := range ts {
		if t != nil {
			return *t
		}
	}
	return time.Now()
}

// vertex updates the step of v. r.mu is held.
func (r *recorder) vertex(v *client.Vertex) {
	if _, ok := r.expected[v.Digest]; !ok {
		return
	}
	i, ok := r.index[v.Digest]
	if !ok {
		i = len(r.report.Steps)
		r.index[v.Digest] = i
		op := r.expected[v.Digest]
		r.report.Steps = append(r.report.Steps, Step{Name: v.Name, Digest: v.Digest, Platform: r.platform, Kind: opKind(op), noInputs: len(op.GetInputs()) == 0})
	}
	s := &r.report.Steps[i]
	s.Cached = s.Cached || v.Cached
	if v.Started != nil {
		s.Started = *v.Started
	}
	if v.Completed != nil {
		s.Completed = *v.Completed
	}
	if v.Error != "" {
		s.Error = v.Error
	}
}

func opKind(op *pb.Op) string {
	switch op.GetOp().(type) {
	case *pb.Op_Source:
		return "source"
	case *pb.Op_Exec:
		return "exec"
	case *pb.Op_File:
		return "file"
	case *pb.Op_Merge:
		return "merge"
	case *pb.Op_Diff:
		return "diff"
	case *pb.Op_Build:
		return "build"
	}
	return ""
}

func (r *recorder) name(d digest.Digest) string {
	if i, ok := r.index[d]; ok {
		return r.report.Steps[i].Name
	}
	if v, ok := r.pending[d]; ok {
		return v.Name
	}
	return ""
}

// StepError reports a step of the graph whose command failed: the command,
// its exit code and the last lines of its output. It wraps BuildKit's error,
// so errors.As also reaches *errdefs.VertexError and the gateway's
// *ExitError.
type StepError struct {
	// Step is the name of the step in the progress output.
	Step string
	// Args is the command that ran, as argv.
	Args []string
	// ExitCode is the command's exit code, -1 when it did not exit.
	ExitCode int
	// Output holds the last lines the command wrote, stdout and stderr
	// interleaved.
	Output []string
	// Err is BuildKit's error.
	Err error
}

// Error names the command and its exit code, then its last output lines.
func (e *StepError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "build: step %q failed", strings.Join(e.Args, " "))
	if e.ExitCode >= 0 {
		fmt.Fprintf(&b, " with exit code %d", e.ExitCode)
	}
	if len(e.Output) > 0 {
		b.WriteString("; last output:")
		for _, l := range e.Output {
			b.WriteString("\n  ")
			b.WriteString(l)
		}
	} else {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

// Unwrap returns BuildKit's error.
func (e *StepError) Unwrap() error { return e.Err }

// stepError turns a solve error into a *StepError when a command of the
// graph failed, and wraps it otherwise.
func (r *recorder) stepError(err error) error {
	var ve *errdefs.VertexError
	if !errors.As(err, &ve) {
		return fmt.Errorf("build: solve: %w", err)
	}
	d := digest.Digest(ve.Digest)
	r.mu.Lock()
	defer r.mu.Unlock()
	op := r.expected[d]
	if op == nil || op.GetExec() == nil {
		return fmt.Errorf("build: solve: %w", err)
	}
	e := &StepError{Args: op.GetExec().GetMeta().GetArgs(), ExitCode: -1, Err: err}
	var ee *gatewaypb.ExitError
	if errors.As(err, &ee) {
		e.ExitCode = int(ee.ExitCode)
	}
	if i, ok := r.index[d]; ok {
		e.Step = r.report.Steps[i].Name
	}
	if buf := r.logs[d]; buf != nil {
		lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
		if len(lines) > logTailLines {
			lines = lines[len(lines)-logTailLines:]
		}
		e.Output = lines
	}
	return e
}
