package build

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/buildkit/client/llb"
)

// Expose records ports the image's containers listen on, such as "8080",
// "8080/tcp", "53/udp" or the range "8000-8010/tcp"; a port without a
// protocol is tcp. It does not change any step or cache key.
func (s Stage) Expose(ports ...string) Stage {
	if len(ports) == 0 {
		return s.withErr(errors.New(`build: Expose: no port (give one or more, such as "8080/tcp")`))
	}
	var specs []string
	for _, p := range ports {
		spec, err := portSpec(p)
		if err != nil {
			return s.withErr(fmt.Errorf("build: Expose(%q): %w", p, err))
		}
		specs = append(specs, spec)
	}
	s = s.setting(fmt.Sprintf("EXPOSE %v", specs))
	for _, p := range specs {
		if !slices.Contains(s.n.config.ports, p) {
			s.n.config.ports = append(slices.Clip(s.n.config.ports), p)
		}
	}
	return s
}

// portSpec returns p as port[-port]/protocol, or what is wrong with it.
func portSpec(p string) (string, error) {
	num, proto, ok := strings.Cut(p, "/")
	if !ok {
		proto = "tcp"
	}
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return "", fmt.Errorf("unknown protocol %q (want tcp, udp or sctp, such as \"53/udp\")", proto)
	}
	first, last, isRange := strings.Cut(num, "-")
	lo, err1 := strconv.Atoi(first)
	hi, err2 := lo, error(nil)
	if isRange {
		hi, err2 = strconv.Atoi(last)
	}
	if err1 != nil || err2 != nil || lo < 1 || hi > 65535 || hi < lo {
		return "", errors.New(`want a port from 1 to 65535 or a range of them, with an optional protocol, such as "8080/tcp" or "8000-8010"`)
	}
	if isRange {
		return fmt.Sprintf("%d-%d/%s", lo, hi, proto), nil
	}
	return fmt.Sprintf("%d/%s", lo, proto), nil
}

// Volume records paths where the image's containers get a volume, as a
// Dockerfile's VOLUME does. Each path is absolute. It does not change any
// step or cache key.
func (s Stage) Volume(paths ...string) Stage {
	if len(paths) == 0 {
		return s.withErr(errors.New(`build: Volume: no path (give one or more, such as "/data")`))
	}
	for _, p := range paths {
		if !path.IsAbs(p) {
			return s.withErr(fmt.Errorf("build: Volume(%q): want an absolute path, such as \"/data\"", p))
		}
	}
	s = s.setting(fmt.Sprintf("VOLUME %v", paths))
	for _, p := range paths {
		if !slices.Contains(s.n.config.volumes, p) {
			s.n.config.volumes = append(slices.Clip(s.n.config.volumes), p)
		}
	}
	return s
}

// Health is the check a container runs to tell whether it works, as a
// Dockerfile's HEALTHCHECK sets it. A zero duration or Retries takes the
// container engine's default (30 s interval and timeout, 0 s start period,
// 5 s start interval, 3 retries).
type Health struct {
	// Test is the check: ["CMD", program, args…] runs the program,
	// ["CMD-SHELL", command] runs command with the image's shell, and
	// ["NONE"] turns off a check the base image sets.
	Test []string
	// Interval is the time between two checks.
	Interval time.Duration
	// Timeout is how long a check may take before it counts as failed.
	Timeout time.Duration
	// StartPeriod is how long the container has to start before failed
	// checks count.
	StartPeriod time.Duration
	// StartInterval is the time between checks during StartPeriod.
	StartInterval time.Duration
	// Retries is how many checks in a row must fail for the container
	// to be unhealthy.
	Retries int
}

// Healthcheck sets the image's health check. It does not change any step or
// cache key.
func (s Stage) Healthcheck(h Health) Stage {
	if err := h.check(); err != nil {
		return s.withErr(fmt.Errorf("build: Healthcheck(%q): %w", h.Test, err))
	}
	h.Test = slices.Clone(h.Test)
	s = s.setting(fmt.Sprintf("HEALTHCHECK %+v", h))
	s.n.config.health = &h
	return s
}

func (h Health) check() error {
	if len(h.Test) == 0 {
		return errors.New(`empty Test (give {"CMD", program, args…}, {"CMD-SHELL", command} or {"NONE"})`)
	}
	switch h.Test[0] {
	case "NONE":
		if len(h.Test) > 1 || h.Interval != 0 || h.Timeout != 0 || h.StartPeriod != 0 || h.StartInterval != 0 || h.Retries != 0 {
			return errors.New(`{"NONE"} takes no command, durations or retries (give {"NONE"} alone)`)
		}
	case "CMD", "CMD-SHELL":
		if len(h.Test) < 2 || h.Test[1] == "" {
			return fmt.Errorf("%s without a command (give one, such as {%q, \"curl -f http://localhost/\"})", h.Test[0], "CMD-SHELL")
		}
		if h.Test[0] == "CMD-SHELL" && len(h.Test) > 2 {
			return errors.New(`CMD-SHELL takes one command string (join it, or use "CMD" with a program and its arguments)`)
		}
	default:
		return fmt.Errorf("first element %q (want \"CMD\", \"CMD-SHELL\" or \"NONE\")", h.Test[0])
	}
	for name, d := range map[string]time.Duration{"Interval": h.Interval, "Timeout": h.Timeout, "StartPeriod": h.StartPeriod, "StartInterval": h.StartInterval} {
		if d != 0 && d < time.Millisecond {
			return fmt.Errorf("%s %v (want 0 for the default, or at least 1ms)", name, d)
		}
	}
	if h.Retries < 0 {
		return fmt.Errorf("Retries %d (want 0 for the default, or more)", h.Retries)
	}
	return nil
}

// StopSignal sets the signal that stops the image's containers, such as
// "SIGTERM", "SIGINT", "SIGRTMIN+3" or "9": a Linux signal's name or
// number (1 to 64), whatever the client's system. It does not change any
// step or cache key.
func (s Stage) StopSignal(sig string) Stage {
	if !linuxSignal(sig) {
		return s.withErr(fmt.Errorf("build: StopSignal(%q): not a Linux signal (want a name or number, such as \"SIGTERM\" or \"15\")", sig))
	}
	s = s.setting("STOPSIGNAL " + sig)
	s.n.config.stopSignal = sig
	return s
}

// linuxSignals are the names of Linux's signals without "SIG", as the
// engines' signal tables on Linux have them; SIGRTMIN+n and SIGRTMAX-n are
// checked apart.
var linuxSignals = []string{"ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT",
	"KILL", "PIPE", "POLL", "PROF", "PWR", "QUIT", "RTMAX", "RTMIN", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP",
	"TSTP", "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ"}

// linuxSignal says whether sig names a Linux signal: a number from 1 to
// 64, or a name with or without "SIG", in any case, such as "SIGTERM",
// "term" or "SIGRTMIN+3" (Linux has SIGRTMIN+1 to +15 and SIGRTMAX-1 to
// -14).
func linuxSignal(sig string) bool {
	if n, err := strconv.Atoi(sig); err == nil {
		return n >= 1 && n <= 64 && sig[0] != '+'
	}
	name := strings.TrimPrefix(strings.ToUpper(sig), "SIG")
	for prefix, most := range map[string]int{"RTMIN+": 15, "RTMAX-": 14} {
		if rest, ok := strings.CutPrefix(name, prefix); ok {
			n, err := strconv.Atoi(rest)
			return err == nil && rest[0] != '+' && n >= 1 && n <= most
		}
	}
	return slices.Contains(linuxSignals, name)
}

// setting returns s with a setting that changes only the image's
// configuration, recorded in its history as createdBy.
func (s Stage) setting(createdBy string) Stage {
	s = s.derive(func(_ *marshalEnv, st llb.State) llb.State { return st })
	s.n.config.history = append(slices.Clip(s.n.config.history), historyEntry{createdBy: createdBy})
	return s
}

// historyEntry is one entry of the exported image's history after the
// base's.
type historyEntry struct {
	// createdBy is what made it, as the Dockerfile frontend writes it
	// ("RUN /bin/sh -c make # buildkit", "ENV A=1").
	createdBy string
	// layer is whether it added a layer.
	layer bool
}

// recorded returns s with e added to its history.
func (s Stage) recorded(e historyEntry) Stage {
	if e.layer {
		e.createdBy += " # buildkit"
	}
	s.n.config.history = append(slices.Clip(s.n.config.history), e)
	return s
}
