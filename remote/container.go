package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"time"
)

// containerName is what Docker and Podman take as a container's name.
var containerName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// Labels of a builder container Auto made.
const (
	labelAuto  = "dev.larder.auto"
	labelImage = "dev.larder.image"
)

// engine is a container engine's command line: docker or podman.
type engine struct {
	name   string // the command, and the engine's name in messages
	scheme string // of its connection helper
	start  string // how to start its daemon, for messages
}

func newEngine(name string) engine {
	if name == "podman" {
		return engine{name: "podman", scheme: "podman-container", start: "install Podman, or set $CONTAINER_HOST"}
	}
	return engine{name: "docker", scheme: "docker-container", start: "start dockerd, or set $DOCKER_HOST to a running engine"}
}

// run runs the engine's command with args, within d, and returns what it
// printed on stdout, trimmed; its error holds what it printed on stderr.
func (e engine) run(ctx context.Context, d time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.name, args...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err := cmd.Run()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if ctx.Err() != nil {
			msg = fmt.Sprintf("no answer within %v", d)
		}
		if msg == "" {
			msg = err.Error()
		}
		return "", fmt.Errorf("%s %s: %s", e.name, args[0], lastLine(msg))
	}
	return strings.TrimSpace(out.String()), nil
}

func lastLine(s string) string {
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// containerBuilder returns the builder container of e: found running,
// started again, or made; see Auto.
func (o *autoOptions) containerBuilder(ctx context.Context, e engine) (*Builder, error) {
	if _, err := exec.LookPath(e.name); err != nil {
		return nil, &fixable{fmt.Errorf("%s is not installed", e.name), "install it, or leave it out with AutoEngines"}
	}
	cgroups := "{{.CgroupVersion}}"
	if e.name == "podman" {
		cgroups = "{{.Host.CgroupsVersion}}"
	}
	cg, err := e.run(ctx, 3*time.Second, "info", "--format", cgroups)
	if err != nil {
		return nil, &fixable{fmt.Errorf("%s does not answer: %w", e.name, err), e.start}
	}
	state, _ := e.run(ctx, 10*time.Second, "inspect", "--type", "container", "--format",
		`{{.State.Running}} {{index .Config.Labels "`+labelImage+`"}}`, o.container)
	running, image, found := strings.Cut(state, " ")
	switch {
	case found && image != o.image:
		// Another image: make the container again, keeping its volume.
		if _, err := e.run(ctx, 30*time.Second, "rm", "--force", o.container); err != nil {
			return nil, &fixable{err, "remove the container " + o.container + " by hand"}
		}
		found = false
	case found && running != "true":
		if _, err := e.run(ctx, 30*time.Second, "start", o.container); err != nil {
			return nil, &fixable{err, "look at `" + e.name + " logs " + o.container + "`, or remove the container to have it made again"}
		}
	}
	if !found {
		if err := o.makeContainer(ctx, e, strings.TrimPrefix(cg, "v") == "1"); err != nil {
			return nil, err
		}
	}
	addr := e.scheme + "://" + o.container
	b, err := Dial(ctx, addr, append([]DialOption{WithWait(30 * time.Second)}, o.dial...)...)
	if err != nil {
		logs, _ := e.run(ctx, 10*time.Second, "logs", "--tail", "5", o.container)
		return nil, &fixable{fmt.Errorf("the builder container %s does not answer: %w; its last lines: %s", o.container, err, logs),
			"look at `" + e.name + " logs " + o.container + "`"}
	}
	return b, nil
}

// makeContainer runs a new builder container, with the least privilege
// that works: --privileged only when the engine refuses the rest.
func (o *autoOptions) makeContainer(ctx context.Context, e engine, cgroupV1 bool) error {
	base := []string{"run", "--detach", "--name", o.container,
		"--label", labelAuto + "=1", "--label", labelImage + "=" + o.image,
		"--volume", o.volume + ":/var/lib/buildkit"}
	least := append(base[:len(base):len(base)], "--cap-add", "SYS_ADMIN",
		"--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined")
	if cgroupV1 {
		// runc makes the step's cgroups in the host's hierarchy, which a
		// container sees read-only on cgroup v1.
		least = append(least, "--volume", "/sys/fs/cgroup:/sys/fs/cgroup:rw")
	}
	_, err := e.run(ctx, 5*time.Minute, append(least, o.image)...)
	if err == nil {
		return nil
	}
	_, _ = e.run(ctx, 30*time.Second, "rm", "--force", o.container)
	_, perr := e.run(ctx, 5*time.Minute, append(append(base, "--privileged"), o.image)...)
	if perr == nil {
		return nil
	}
	_, _ = e.run(ctx, 30*time.Second, "rm", "--force", o.container)
	return &fixable{errors.Join(err, perr), fmt.Sprintf("give AutoImage an image %s has or can pull, holding buildkitd and buildctl", e.name)}
}
