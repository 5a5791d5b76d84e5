package build

import (
	"errors"
	"fmt"
	"strings"

	gatewaypb "github.com/moby/buildkit/frontend/gateway/pb"
	"github.com/moby/buildkit/solver/errdefs"
	digest "github.com/opencontainers/go-digest"
)

// StepError reports a step of the graph whose command failed: the command,
// its exit code and the last lines of its output. It wraps BuildKit's error,
// so errors.As also reaches *errdefs.VertexError and the gateway's
// *ExitError.
type StepError struct {
	// Step is the name of the step in the progress output.
	Step string
	// Platform is the platform of the solve the step belongs to, such as
	// "linux/arm64".
	Platform string
	// Args is the command that ran, as argv.
	Args []string
	// ExitCode is the command's exit code, -1 when it did not exit.
	ExitCode int
	// Output holds the last 20 lines the command wrote, stdout and stderr
	// together in the order the builder read them from the command; a last
	// line without a newline is kept. The builder reads the two streams
	// with a reader each and stamps each chunk as it gets it, so lines
	// written to both within the same instant can't be ordered: then
	// stderr's last line goes last, where a failing command writes its
	// error. Each stream's own lines keep their order. Secrets the solve was
	// given are masked, as in the progress output.
	Output []string
	// File is the name of the [Dockerfile] whose RUN the step is; ""
	// for a step of Larder's own.
	File string
	// Line is the line of that RUN in File, 1 for the first; 0 when File
	// is "".
	Line int
	// Err is BuildKit's error.
	Err error

	multi bool                // one platform of several: the message names it
	mask  func(string) string // masks the solve's secrets, nil for none
}

// Error names the command and its exit code, then its last output lines.
// When the solve built several platforms, it names the platform too.
func (e *StepError) Error() string {
	var b strings.Builder
	b.WriteString("build: ")
	if e.multi {
		b.WriteString(e.Platform + ": ")
	}
	fmt.Fprintf(&b, "step %q", strings.Join(e.Args, " "))
	if e.File != "" {
		fmt.Fprintf(&b, " (%s:%d)", e.File, e.Line)
	}
	b.WriteString(" failed")
	if e.ExitCode >= 0 {
		fmt.Fprintf(&b, " with exit code %d", e.ExitCode)
	}
	if len(e.Output) > 0 {
		b.WriteString("; last output:")
		for _, l := range e.Output {
			b.WriteString("\n  ")
			b.WriteString(l)
		}
	} else if e.mask != nil {
		fmt.Fprintf(&b, ": %s", e.mask(e.Err.Error()))
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
		return err
	}
	d := digest.Digest(ve.Digest)
	r.mu.Lock()
	defer r.mu.Unlock()
	op := r.expected[d]
	if op == nil || op.GetExec() == nil {
		return err
	}
	e := &StepError{Args: op.GetExec().GetMeta().GetArgs(), Platform: r.platform, ExitCode: -1, Err: err}
	if r.mask != nil {
		e.mask = r.mask.maskString
	}
	for _, src := range errdefs.Sources(err) {
		if src.Info != nil && len(src.Ranges) > 0 {
			e.File, e.Line = src.Info.Filename, int(src.Ranges[0].Start.Line)
			break
		}
	}
	var ee *gatewaypb.ExitError
	if errors.As(err, &ee) {
		e.ExitCode = int(ee.ExitCode)
	}
	if i, ok := r.index[d]; ok {
		e.Step = r.report.Steps[i].Name
	}
	e.Output = r.tailLocked(d, logTailLines)
	return e
}

// tail returns the last n lines the operation d wrote, nil for none.
func (r *recorder) tail(d digest.Digest, n int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tailLocked(d, n)
}

// tailLocked is tail with r.mu held.
func (r *recorder) tailLocked(d digest.Digest, n int) []string {
	if l := r.logs[d]; l != nil {
		return l.tail(n, true) // only a failed step's tail is asked for
	}
	return nil
}
