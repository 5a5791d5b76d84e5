package build

import (
	"bytes"
	"context"
	"sync"

	"github.com/containerd/platforms"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	"github.com/moby/buildkit/util/progress/progressui"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

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

func (r *recorder) name(d digest.Digest) string {
	if i, ok := r.index[d]; ok {
		return r.report.Steps[i].Name
	}
	if v, ok := r.pending[d]; ok {
		return v.Name
	}
	return ""
}
