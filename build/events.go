package build

import (
	"fmt"
	"time"

	"github.com/moby/buildkit/client"
	digest "github.com/opencontainers/go-digest"
)

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
	// Kind is what happened.
	Kind EventKind
	// Time is when it happened, as the builder reports it.
	Time time.Time
	// Platform is the platform of the solve the event belongs to.
	Platform string
	// Step is the name of the step, as in the progress output.
	Step string
	// Digest identifies the step's operation in the definition.
	Digest digest.Digest
	// Data is the output of a StepLog event.
	Data []byte
	// Stream is 1 for stdout and 2 for stderr in a StepLog event.
	Stream int
	// Error is the error of a StepFailed event.
	Error string
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
