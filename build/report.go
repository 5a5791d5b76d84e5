package build

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"
)

// Report describes a solve: each step of the graph, whether it ran or came
// from cache, and how long it took. The report of a solve of several
// platforms holds the steps of all of them.
type Report struct {
	// Builders are the names of the daemons that ran the solve, each once,
	// in the order of the platforms they built.
	Builders []string
	// Platforms are the platforms the graph was built for, in the order
	// they were given, such as ["linux/amd64", "linux/arm64"].
	Platforms []string
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
	// Name is the step's name in the progress output, such as
	// "/bin/sh -c make".
	Name string
	// Digest identifies the step's operation in the definition.
	Digest digest.Digest
	// Platform is the platform of the solve the step belongs to.
	Platform string
	// Kind is what the operation does.
	Kind StepKind
	// Cached is true when the step's result came from cache.
	Cached bool
	// Started and Completed are zero for a step that never started.
	Started, Completed time.Time
	// Error is the step's error, "" when it succeeded.
	Error string

	noInputs bool // a source, or an operation on nothing, such as a mkdir on scratch
	settled  int  // the recorder's session that completed the step, 0 for none
}

// StepKind is what a [Step]'s operation does. Its values are the names
// BuildKit gives its operations.
type StepKind string

const (
	// SourceStep makes a filesystem: an image, a local directory, a git
	// checkout or a download.
	SourceStep StepKind = "source"
	// ExecStep runs a command.
	ExecStep StepKind = "exec"
	// FileStep copies files or makes, changes or removes them.
	FileStep StepKind = "file"
	// MergeStep stacks filesystems.
	MergeStep StepKind = "merge"
	// DiffStep takes the difference of two filesystems.
	DiffStep StepKind = "diff"
	// BuildStep solves a nested definition.
	BuildStep StepKind = "build"
)

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
		if s.Kind != SourceStep && !s.noInputs && s.Cached == cached {
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
		strings.Join(r.Builders, ", "), strings.Join(r.Platforms, ", "), r.CachedSteps(), r.RanSteps(), r.Duration.Round(time.Millisecond))
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

// mergeReports makes the report of a whole solve from its platforms'.
func mergeReports(results []PlatformResult, d time.Duration) *Report {
	if len(results) == 1 && results[0].Report != nil {
		return results[0].Report
	}
	m := &Report{Duration: d}
	for _, r := range results {
		if r.Report == nil {
			continue
		}
		if !slices.Contains(m.Builders, r.Builder) {
			m.Builders = append(m.Builders, r.Builder)
		}
		m.Platforms = append(m.Platforms, r.Platform)
		m.Steps = append(m.Steps, r.Report.Steps...)
		m.CacheMounts = append(m.CacheMounts, r.Report.CacheMounts...)
		for _, w := range r.Report.Warnings {
			if !slices.Contains(m.Warnings, w) {
				m.Warnings = append(m.Warnings, w)
			}
		}
	}
	return m
}

// opKind returns what op does.
func opKind(op *pb.Op) StepKind {
	switch op.GetOp().(type) {
	case *pb.Op_Source:
		return SourceStep
	case *pb.Op_Exec:
		return ExecStep
	case *pb.Op_File:
		return FileStep
	case *pb.Op_Merge:
		return MergeStep
	case *pb.Op_Diff:
		return DiffStep
	case *pb.Op_Build:
		return BuildStep
	}
	return ""
}
