package build

import (
	"context"
	"sync"
	"time"

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
	mask     *masker // the solve's secrets

	mu       sync.Mutex
	report   *Report
	index    map[digest.Digest]int            // step index in report.Steps
	expected map[digest.Digest]*pb.Op         // the definition's operations
	pending  map[digest.Digest]*pendingVertex // seen before the definition was known
	logs     map[digest.Digest]*stepLog
	// hidden are operations of Larder's own that nobody sees, such as the
	// probe of persisted cache mounts; hiddenCached, those of them that
	// came from cache.
	hidden       map[digest.Digest]bool
	hiddenCached map[digest.Digest]bool
	// sessions counts the client sessions whose statuses were consumed:
	// a Solve with persisted cache mounts probes the graph in a session
	// before the one that solves it.
	sessions int
}

func newRecorder(report *Report, p ocispecs.Platform, onEvent []func(Event), m *masker) *recorder {
	return &recorder{
		mask:         m,
		onEvent:      onEvent,
		platform:     platforms.Format(p),
		report:       report,
		index:        map[digest.Digest]int{},
		logs:         map[digest.Digest]*stepLog{},
		pending:      map[digest.Digest]*pendingVertex{},
		hidden:       map[digest.Digest]bool{},
		hiddenCached: map[digest.Digest]bool{},
	}
}

// hide keeps the operations ds out of the report, the events and the
// displays.
func (r *recorder) hide(ds map[digest.Digest]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for d := range ds {
		r.hidden[d] = true
	}
}

// cachedHidden reports whether the hidden operation d came from cache.
func (r *recorder) cachedHidden(d digest.Digest) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hiddenCached[d]
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
	for _, p := range r.pending {
		r.vertex(&p.v, p.session)
	}
	r.pending = nil
}

// consume records statuses and passes them on to display until ch
// closes, then closes the returned channel.
func (r *recorder) consume(ch <-chan *client.SolveStatus, display chan<- *client.SolveStatus) <-chan struct{} {
	r.mu.Lock()
	r.sessions++
	session := r.sessions
	r.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for st := range ch {
			if st = r.status(st, session); st != nil && display != nil {
				display <- st
			}
		}
		// What the streams held back, in case a secret began there.
		if st := r.flushAll(); st != nil && display != nil {
			display <- st
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

// status records st and returns what of it may be shown, masked; nil for
// nothing.
func (r *recorder) status(st *client.SolveStatus, session int) *client.SolveStatus {
	var events []Event
	r.mu.Lock()
	st = r.visible(st)
	if st == nil {
		r.mu.Unlock()
		return nil
	}
	out := &client.SolveStatus{Statuses: st.Statuses, Warnings: st.Warnings}
	for _, l := range st.Logs {
		data := r.stepLog(l.Vertex).add(r.mask, l.Stream, l.Timestamp, l.Data)
		if len(data) == 0 {
			continue
		}
		out.Logs = append(out.Logs, &client.VertexLog{Vertex: l.Vertex, Stream: l.Stream, Data: data, Timestamp: l.Timestamp})
		events = append(events, Event{Kind: StepLog, Time: l.Timestamp, Platform: r.platform, Digest: l.Vertex, Step: r.name(l.Vertex), Data: data, Stream: l.Stream})
	}
	for _, v := range st.Vertexes {
		if v.Completed != nil {
			// The step is done: show what its streams held back.
			if sl := r.logs[v.Digest]; sl != nil {
				for stream, data := range sl.flush(*v.Completed) {
					out.Logs = append(out.Logs, &client.VertexLog{Vertex: v.Digest, Stream: stream, Data: data, Timestamp: *v.Completed})
					events = append(events, Event{Kind: StepLog, Time: *v.Completed, Platform: r.platform, Digest: v.Digest, Step: r.name(v.Digest), Data: data, Stream: stream})
				}
			}
		}
		if v.Error != "" {
			cp := *v
			cp.Error = r.mask.maskString(v.Error)
			v = &cp
		}
		out.Vertexes = append(out.Vertexes, v)
		if r.expected == nil {
			r.pending[v.Digest] = &pendingVertex{v: *v, session: session}
		} else {
			r.vertex(v, session)
		}
		events = append(events, vertexEvents(v, r.platform)...)
	}
	r.mu.Unlock()
	for _, e := range events {
		for _, fn := range r.onEvent {
			fn(e)
		}
	}
	return out
}

// stepLog returns the log of the step d. r.mu is held.
func (r *recorder) stepLog(d digest.Digest) *stepLog {
	l := r.logs[d]
	if l == nil {
		l = newStepLog()
		r.logs[d] = l
	}
	return l
}

// flushAll ends every step's streams, and returns what they held back, as
// a status to show; nil for nothing.
func (r *recorder) flushAll() *client.SolveStatus {
	var events []Event
	out := &client.SolveStatus{}
	r.mu.Lock()
	now := time.Now()
	for d, sl := range r.logs {
		for stream, data := range sl.flush(now) {
			out.Logs = append(out.Logs, &client.VertexLog{Vertex: d, Stream: stream, Data: data, Timestamp: now})
			events = append(events, Event{Kind: StepLog, Time: now, Platform: r.platform, Digest: d, Step: r.name(d), Data: data, Stream: stream})
		}
	}
	r.mu.Unlock()
	for _, e := range events {
		for _, fn := range r.onEvent {
			fn(e)
		}
	}
	if len(out.Logs) == 0 {
		return nil
	}
	return out
}

// visible returns st without the hidden operations, nil when nothing is
// left. r.mu is held.
func (r *recorder) visible(st *client.SolveStatus) *client.SolveStatus {
	if len(r.hidden) == 0 {
		return st
	}
	out := &client.SolveStatus{}
	for _, v := range st.Vertexes {
		if r.hidden[v.Digest] {
			if v.Cached {
				r.hiddenCached[v.Digest] = true
			}
			continue
		}
		out.Vertexes = append(out.Vertexes, v)
	}
	for _, s := range st.Statuses {
		if !r.hidden[s.Vertex] {
			out.Statuses = append(out.Statuses, s)
		}
	}
	for _, l := range st.Logs {
		if !r.hidden[l.Vertex] {
			out.Logs = append(out.Logs, l)
		}
	}
	for _, w := range st.Warnings {
		if !r.hidden[w.Vertex] {
			out.Warnings = append(out.Warnings, w)
		}
	}
	if len(out.Vertexes)+len(out.Statuses)+len(out.Logs)+len(out.Warnings) == 0 {
		return nil
	}
	return out
}

// pendingVertex is a vertex seen before the definition was known, and the
// session it was seen in.
type pendingVertex struct {
	v       client.Vertex
	session int
}

// vertex updates the step of v, seen in session. r.mu is held.
func (r *recorder) vertex(v *client.Vertex, session int) {
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
	// A step may be reached by the solves of several sessions (persisted
	// cache mounts probe the graph first): the first session that
	// completes it says whether it ran or came from cache, and how long it
	// took; later ones reuse its result.
	if s.settled != 0 && s.settled != session {
		return
	}
	if v.Completed != nil && v.Error == "" {
		s.settled = session
	}
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
	if p, ok := r.pending[d]; ok {
		return p.v.Name
	}
	return ""
}
