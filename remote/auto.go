package remote

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	_ "github.com/moby/buildkit/client/connhelper/dockercontainer" // docker-container://, for Auto
	_ "github.com/moby/buildkit/client/connhelper/podmancontainer" // podman-container://, for Auto
)

// Origin says where [Auto] found or started a builder.
type Origin string

const (
	// FromEnv is the builder at $BUILDKIT_HOST.
	FromEnv Origin = "BUILDKIT_HOST"
	// FromSocket is a builder already answering at [DefaultAddress].
	FromSocket Origin = "default socket"
	// FromDocker is a builder container run by Docker.
	FromDocker Origin = "docker"
	// FromPodman is a builder container run by Podman.
	FromPodman Origin = "podman"
	// FromLocal is a buildkitd child process, run as root.
	FromLocal Origin = "local buildkitd"
	// FromRootless is a buildkitd child process run by a user other than
	// root, in a user namespace made by rootlesskit.
	FromRootless Origin = "rootless buildkitd"
	// FromDial is a builder dialed or started by the caller, with Dial or
	// Start.
	FromDial Origin = ""
)

// DefaultImage is the image of the builder container [Auto] runs through
// Docker or Podman: BuildKit's own, of the version Larder is built with.
const DefaultImage = "moby/buildkit:v0.33.1"

// AutoOption configures [Auto]. Each option checks its own input.
type AutoOption func(*autoOptions) error

type autoOptions struct {
	image     string
	container string
	volume    string
	engines   []string // "docker", "podman", in the order to try them
	start     []StartOption
	dial      []DialOption
}

// AutoImage sets the image of the builder container Auto runs through
// Docker or Podman; it must hold buildkitd (its entrypoint) and buildctl,
// as BuildKit's images do. The default is [DefaultImage]. An existing
// container made from another image is made again from this one; its
// state volume, and so its caches, stay.
func AutoImage(ref string) AutoOption {
	return func(o *autoOptions) error {
		if ref == "" || strings.ContainsAny(ref, " \t\n") {
			return fmt.Errorf("AutoImage(%q): want an image reference, such as %q", ref, DefaultImage)
		}
		o.image = ref
		return nil
	}
}

// AutoContainer sets the name of the builder container Auto runs, and
// reuses on later calls, through Docker or Podman; its state lives in the
// volume named NAME-state, which outlives the container. The default is
// "larder-buildkit".
func AutoContainer(name string) AutoOption {
	return func(o *autoOptions) error {
		if !containerName.MatchString(name) {
			return fmt.Errorf("AutoContainer(%q): want a container name of letters, digits, '_', '.' and '-', starting with a letter or digit, such as \"larder-buildkit\"", name)
		}
		o.container, o.volume = name, name+"-state"
		return nil
	}
}

// AutoEngines sets the container engines Auto tries, in order: "docker",
// "podman", or none to skip builder containers. The default is docker,
// then podman.
func AutoEngines(engines ...string) AutoOption {
	return func(o *autoOptions) error {
		for _, e := range engines {
			if e != "docker" && e != "podman" {
				return fmt.Errorf("AutoEngines(%q): unknown engine (want \"docker\" or \"podman\")", e)
			}
		}
		o.engines = engines
		return nil
	}
}

// AutoStartOptions gives options to the local buildkitd Auto starts when
// nothing else works, as [Start] takes them.
func AutoStartOptions(opts ...StartOption) AutoOption {
	return func(o *autoOptions) error {
		o.start = append(o.start, opts...)
		return nil
	}
}

// AutoDialOptions gives options to every builder Auto dials, as [Dial]
// takes them.
func AutoDialOptions(opts ...DialOption) AutoOption {
	return func(o *autoOptions) error {
		o.dial = append(o.dial, opts...)
		return nil
	}
}

// Attempt is one way [Auto] tried to get a builder.
type Attempt struct {
	// Origin is the way.
	Origin Origin
	// Err is why it did not work.
	Err error
	// Fix says what would make it work.
	Fix string
}

// AutoError reports that none of the ways [Auto] tries gave a builder: each
// attempt, its reason and what would fix it.
type AutoError struct {
	// Attempts are the ways tried, in order.
	Attempts []Attempt
}

// Error lists every attempt.
func (e *AutoError) Error() string {
	var b strings.Builder
	b.WriteString("remote: Auto: no builder:")
	for _, a := range e.Attempts {
		fmt.Fprintf(&b, "\n  %s: %v", a.Origin, a.Err)
		if a.Fix != "" {
			fmt.Fprintf(&b, " (%s)", a.Fix)
		}
	}
	return b.String()
}

// Unwrap returns the errors of the attempts.
func (e *AutoError) Unwrap() []error {
	var errs []error
	for _, a := range e.Attempts {
		errs = append(errs, a.Err)
	}
	return errs
}

// Auto returns a builder, the first that works of, in order:
//
//  1. the builder at $BUILDKIT_HOST, when it is set: an error there is
//     Auto's error, not a reason to try the others;
//  2. a builder already answering at BuildKit's default socket,
//     [DefaultAddress];
//  3. a builder container run by Docker, then by Podman, when the engine
//     answers ($DOCKER_HOST, $CONTAINER_HOST, or their default sockets):
//     made once, named by [AutoContainer], from [AutoImage], with a volume
//     for its state so that caches outlive it, started again if stopped,
//     and reused by later calls, as buildx's docker-container driver does.
//     It runs with the least privilege BuildKit's runc worker needs
//     (CAP_SYS_ADMIN, seccomp and AppArmor unconfined, and on cgroup v1 the
//     host's cgroups writable), and --privileged only when that is refused;
//  4. a buildkitd child process, as [Start] runs it: as root with runc, or,
//     for another user, rootless in a user namespace made by rootlesskit
//     (Debian's rootlesskit and uidmap, and the user's entries in
//     /etc/subuid and /etc/subgid). buildkitd is found in PATH, then in
//     Larder's cache directory (where [Install] puts it), unless
//     AutoStartOptions gives [Binary].
//
// [Builder.Origin] says which it took. A builder container is not stopped
// by Close; a child process is. When none works, Auto returns an
// [*AutoError] that lists each attempt, why it failed and what would fix
// it. Auto contacts nothing before its options are checked.
func Auto(ctx context.Context, opts ...AutoOption) (*Builder, error) {
	o := autoOptions{image: DefaultImage, container: "larder-buildkit", volume: "larder-buildkit-state", engines: []string{"docker", "podman"}}
	var errs []error
	for _, opt := range opts {
		if opt == nil {
			errs = append(errs, errors.New("nil option (leave it out)"))
			continue
		}
		if err := opt(&o); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := makeDialOptions("AutoDialOptions: ", o.dial); err != nil {
		errs = append(errs, err)
	}
	if _, err := makeStartOptions(o.start); err != nil {
		errs = append(errs, err)
	}
	if err := prefixed("remote: Auto: ", errs); err != nil {
		return nil, err
	}

	if env := os.Getenv("BUILDKIT_HOST"); env != "" {
		b, err := Dial(ctx, env, o.dial...)
		if err != nil {
			return nil, fmt.Errorf("remote: Auto: $BUILDKIT_HOST is set: %w", err)
		}
		b.origin = FromEnv
		return b, nil
	}
	var ae AutoError
	try := func(origin Origin, get func() (*Builder, error)) *Builder {
		b, err := get()
		if err != nil {
			a := Attempt{Origin: origin, Err: err}
			var f *fixable
			if errors.As(err, &f) {
				a.Err, a.Fix = f.err, f.fix
			}
			ae.Attempts = append(ae.Attempts, a)
			return nil
		}
		b.origin = origin
		return b
	}
	if b := try(FromSocket, func() (*Builder, error) { return o.socket(ctx) }); b != nil {
		return b, nil
	}
	for _, e := range o.engines {
		origin := FromDocker
		if e == "podman" {
			origin = FromPodman
		}
		if b := try(origin, func() (*Builder, error) { return o.containerBuilder(ctx, newEngine(e)) }); b != nil {
			return b, nil
		}
	}
	local := FromLocal
	if os.Geteuid() != 0 {
		local = FromRootless
	}
	if b := try(local, func() (*Builder, error) {
		b, err := Start(ctx, o.start...)
		if err != nil {
			return nil, &fixable{err, "install buildkitd and buildctl (remote.Install, or scripts/setup) and runc; as a user other than root, rootlesskit and uidmap too"}
		}
		return b, nil
	}); b != nil {
		return b, nil
	}
	return nil, &ae
}

// fixable is an attempt's error and what would fix it.
type fixable struct {
	err error
	fix string
}

func (f *fixable) Error() string { return f.err.Error() + " (" + f.fix + ")" }
func (f *fixable) Unwrap() error { return f.err }

// socket dials a builder answering at the default address.
func (o *autoOptions) socket(ctx context.Context) (*Builder, error) {
	path := strings.TrimPrefix(DefaultAddress, "unix://")
	if _, err := os.Stat(path); err != nil {
		return nil, &fixable{fmt.Errorf("no socket at %s", path), "start buildkitd there, or set $BUILDKIT_HOST"}
	}
	b, err := Dial(ctx, DefaultAddress, append([]DialOption{WithWait(2 * time.Second)}, o.dial...)...)
	if err != nil {
		return nil, &fixable{err, "the daemon behind the socket does not answer: restart it"}
	}
	return b, nil
}
