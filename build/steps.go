package build

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/moby/buildkit/client/llb"

	"github.com/larder-build/larder/mounts"
)

// Run runs the shell command cmd with /bin/sh -c on s and returns the
// resulting filesystem. opts are any llb.RunOption: mounts, presets, and raw
// llb options such as llb.Network or llb.IgnoreCache. Mount targets must be
// absolute and distinct; mistakes are reported by [Solve]. The command and
// every option are part of the cache key.
func (s Stage) Run(cmd string, opts ...llb.RunOption) Stage {
	if strings.TrimSpace(cmd) == "" {
		return s.withErr(errors.New("build: Run: empty command (give a shell command, such as \"make\")"))
	}
	return s.run([]string{"/bin/sh", "-c", cmd}, func() string { return "Run(" + quoteShort(cmd) + ")" }, opts)
}

// RunArgs runs args without a shell (args[0] is looked up in the step's
// PATH), like Run otherwise.
func (s Stage) RunArgs(args []string, opts ...llb.RunOption) Stage {
	if len(args) == 0 || args[0] == "" {
		return s.withErr(errors.New("build: RunArgs: empty argv (give the program and its arguments, such as []string{\"make\", \"all\"})"))
	}
	return s.run(args, func() string { return fmt.Sprintf("RunArgs(%q)", args) }, opts)
}

// run adds the step running args. where names the step in messages; it is
// called only when there is a mistake or a warning to report.
func (s Stage) run(args []string, where func() string, opts []llb.RunOption) Stage {
	if err := checkStepOptions(opts); err != nil {
		return s.withErr(fmt.Errorf("build: %s: %w", where(), err))
	}
	conf := s.cfg()
	stagePlatform := conf.platform
	stepOptions := slices.ContainsFunc(opts, func(o llb.RunOption) bool { _, ok := o.(mounts.StepOption); return ok })
	s = s.derive(func(e *marshalEnv, st llb.State) llb.State {
		step := mounts.Step{Args: args, Platform: e.platform}
		if stepOptions {
			step = e.stepOf(args, st, conf)
		}
		if stagePlatform != nil {
			step.Platform = *stagePlatform
		}
		ro := make([]llb.RunOption, 0, len(opts)+1)
		ro = append(ro, llb.Args(args))
		for _, o := range opts {
			if sm, ok := o.(mounts.SourceMapper); ok {
				// A stage mounted in the step joins this marshalling, so
				// it is resolved for this platform and shared with the
				// rest of the graph.
				o = sm.MapSources(func(src mounts.Source) mounts.Source {
					if st, ok := src.(Stage); ok {
						return mounts.FromState(st.state(e))
					}
					return src
				})
			}
			if so, ok := o.(mounts.StepOption); ok {
				so = so.ForStep(step)
				e.noteCaches(so.Mounts())
				if n, ok := so.(interface{ Notes() []string }); ok {
					for _, msg := range n.Notes() {
						e.warn(where() + ": " + msg)
					}
				}
				o = so
			}
			ro = append(ro, o)
		}
		return st.Run(ro...).Root()
	}).recorded(historyEntry{createdBy: "RUN " + strings.Join(args, " "), layer: true})
	for _, o := range opts {
		if so, ok := o.(mounts.StepOption); ok {
			for _, msg := range so.Warnings(args) {
				s.n.warnings = append(slices.Clip(s.n.warnings), where()+": "+msg)
			}
		}
	}
	return s
}

// checkStepOptions checks the options of one step: each StepOption's own
// Validate, then the mounts of all of them together with mounts.Validate,
// which finds two mounts on one target and two secrets set as one
// variable.
func checkStepOptions(opts []llb.RunOption) error {
	var errs []error
	var ms []mounts.Mount
	for i, o := range opts {
		switch o := o.(type) {
		case nil:
			errs = append(errs, fmt.Errorf("option %d is nil (leave it out)", i+1))
		case mounts.StepOption:
			if err := o.Validate(); err != nil {
				errs = append(errs, err)
				continue
			}
			ms = append(ms, o.Mounts()...)
		case mounts.Mount:
			ms = append(ms, o)
		}
	}
	if err := mounts.Validate(ms...); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func quoteShort(s string) string {
	const max = 60
	if r := []rune(s); len(r) > max {
		s = string(r[:max]) + "…"
	}
	return fmt.Sprintf("%q", s)
}

// CopyOption configures [Stage.Copy].
type CopyOption func(*copyOptions) error

type copyOptions struct {
	chown *llb.ChownOpt
	mode  *os.FileMode
}

// Chown sets the owner of the copied files to uid:gid. The default keeps the
// owner they have in the source. It changes the cache key.
func Chown(uid, gid int) CopyOption {
	return func(o *copyOptions) error {
		if uid < 0 || gid < 0 {
			return fmt.Errorf("Chown(%d, %d): ids must not be negative (give 0 or more, such as Chown(1000, 1000))", uid, gid)
		}
		c := llb.WithUIDGID(uid, gid).(llb.ChownOpt)
		o.chown = &c
		return nil
	}
}

// ChownUser sets the owner of the copied files to a user and optional group
// by name or id, as "app" or "app:staff", looked up in the destination
// stage's /etc/passwd and /etc/group. It changes the cache key.
func ChownUser(spec string) CopyOption {
	return func(o *copyOptions) error {
		if spec == "" || strings.HasPrefix(spec, ":") || strings.HasSuffix(spec, ":") {
			return fmt.Errorf("ChownUser(%q): want user or user:group", spec)
		}
		c := llb.WithUser(spec).(llb.ChownOpt)
		o.chown = &c
		return nil
	}
}

// Chmod sets the permission bits of the copied files. The default keeps the
// mode they have in the source. It changes the cache key.
func Chmod(mode os.FileMode) CopyOption {
	return func(o *copyOptions) error {
		if mode&^os.FileMode(0o7777) != 0 {
			return fmt.Errorf("Chmod(%#o): want permission bits within 0o7777", mode)
		}
		o.mode = &mode
		return nil
	}
}

// Copy copies src from the stage from into s at dst and returns the result.
// As in a Dockerfile's COPY, a directory's contents are copied, src may hold
// wildcards, and dst's parents are created. Paths in from are absolute or
// relative to its root; a relative dst is relative to s's working directory.
// The copied content, not the history of from, makes the cache key.
func (s Stage) Copy(from Stage, src, dst string, opts ...CopyOption) Stage {
	where := fmt.Sprintf("Copy(%q, %q)", src, dst)
	if src == "" || dst == "" {
		return s.withErr(fmt.Errorf("build: %s: empty path (give both the source path and the destination)", where))
	}
	var o copyOptions
	var errs []error
	for i, opt := range opts {
		if opt == nil {
			errs = append(errs, fmt.Errorf("option %d is nil (leave it out)", i+1))
			continue
		}
		if err := opt(&o); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return s.withErr(fmt.Errorf("build: %s: %w", where, err))
	}
	info := &llb.CopyInfo{
		FollowSymlinks:      true,
		CopyDirContentsOnly: true,
		CreateDestPath:      true,
		AllowWildcard:       true,
		ChownOpt:            o.chown,
	}
	if o.mode != nil {
		info.Mode = &llb.ChmodOpt{Mode: *o.mode}
	}
	if from.n != nil && len(from.n.errs) > 0 {
		s = s.withErr(from.n.errs...)
	}
	s = s.derive(func(e *marshalEnv, st llb.State) llb.State {
		return st.File(llb.Copy(from.state(e), src, dst, info))
	}).recorded(historyEntry{createdBy: "COPY " + src + " " + dst, layer: true})
	s.n.warnings = append(slices.Clip(s.n.warnings), from.Warnings()...)
	return s
}
