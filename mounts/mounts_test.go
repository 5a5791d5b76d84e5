package mounts_test

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/larder-build/larder/mounts"
	"github.com/moby/buildkit/client/llb"
)

var (
	builder      = mounts.Named("builder", mounts.FromState(llb.Image("docker.io/library/golang:1.26")))
	buildContext = mounts.FromState(llb.Local("context"))
)

func TestValues(t *testing.T) {
	tests := []struct {
		mount  mounts.Mount
		target string
		str    string
	}{
		{mounts.Cache("/root/.cache"), "/root/.cache", "type=cache,target=/root/.cache"},
		{mounts.Cache("/root/.cache", mounts.ID("go-build"), mounts.Sharing(mounts.Locked)), "/root/.cache", "type=cache,target=/root/.cache,id=go-build,sharing=locked"},
		{mounts.Cache("/root/.cache/", mounts.ID("/root/.cache")), "/root/.cache", "type=cache,target=/root/.cache"},
		{mounts.Cache("/c", mounts.Sharing(mounts.Shared), mounts.ReadOnly()), "/c", "type=cache,target=/c,ro"},
		{mounts.Cache("/c", mounts.ReadOnly(), mounts.ReadWrite()), "/c", "type=cache,target=/c"},
		{mounts.Cache("/c", mounts.Owner(1000, 0)), "/c", "type=cache,target=/c,uid=1000,gid=0"},
		{mounts.Cache("/c", mounts.Mode(0o700)), "/c", "type=cache,target=/c,mode=0700"},
		{mounts.Cache("/c", mounts.SeedFrom(builder, "go/pkg/mod")), "/c", "type=cache,target=/c,from=builder,source=/go/pkg/mod"},
		{mounts.Cache("/c", mounts.SeedFrom(mounts.FromState(llb.Scratch()), "")), "/c", "type=cache,target=/c,from=<unnamed>"},
		{mounts.Bind("/src", buildContext), "/src", "type=bind,target=/src,from=<unnamed>"},
		{mounts.Bind("/src/", builder, mounts.SourcePath("out"), mounts.ReadWrite()), "/src", "type=bind,target=/src,from=builder,source=/out,rw"},
		{mounts.Bind("/src", mounts.Named("my,stage", buildContext), mounts.SourcePath("/")), "/src", `type=bind,target=/src,"from=my,stage"`},
		{mounts.Tmpfs("/tmp"), "/tmp", "type=tmpfs,target=/tmp"},
		{mounts.Tmpfs("/tmp", mounts.Size(64<<20)), "/tmp", "type=tmpfs,target=/tmp,size=64m"},
		{mounts.Tmpfs("/tmp", mounts.Size(1500)), "/tmp", "type=tmpfs,target=/tmp,size=1500"},
		{mounts.Secret("npmrc"), "/run/secrets/npmrc", "type=secret,id=npmrc"},
		{mounts.Secret("aws/credentials"), "/run/secrets/credentials", "type=secret,id=aws/credentials"},
		{mounts.Secret("npmrc", mounts.Target("/run/secrets/npmrc")), "/run/secrets/npmrc", "type=secret,id=npmrc"},
		{mounts.Secret("npmrc", mounts.Target("/root/.npmrc"), mounts.Owner(1000, 1000), mounts.Mode(0o440), mounts.Required()),
			"/root/.npmrc", "type=secret,id=npmrc,target=/root/.npmrc,required,uid=1000,gid=1000,mode=0440"},
		{mounts.Secret("token", mounts.Env("TOKEN")), "", "type=secret,id=token,env=TOKEN"},
		{mounts.SSH(), "/run/buildkit/ssh_agent.0", "type=ssh"},
		{mounts.SSH(mounts.ID("github"), mounts.Target("/run/gh.sock"), mounts.Mode(0o660), mounts.Required()), "/run/gh.sock", "type=ssh,id=github,target=/run/gh.sock,required,mode=0660"},
		{mounts.SSH(mounts.ID("default"), mounts.Owner(0, 0), mounts.Mode(0o600)), "/run/buildkit/ssh_agent.0", "type=ssh"},
	}
	for _, tt := range tests {
		t.Run(tt.str, func(t *testing.T) {
			if err := tt.mount.Validate(); err != nil {
				t.Fatalf("Validate() = %v", err)
			}
			if got := tt.mount.Target(); got != tt.target {
				t.Errorf("Target() = %q, want %q", got, tt.target)
			}
			if got := tt.mount.String(); got != tt.str {
				t.Errorf("String() = %q, want %q", got, tt.str)
			}
		})
	}
}

func TestAccessors(t *testing.T) {
	c := mounts.Cache("/var/cache/apt/", mounts.Sharing(mounts.Locked)).(*mounts.CacheMount)
	if c.ID() != "/var/cache/apt" || c.Sharing() != mounts.Locked {
		t.Errorf("cache ID() = %q Sharing() = %v, want /var/cache/apt locked", c.ID(), c.Sharing())
	}
	if got := mounts.Cache("/x", mounts.ID("x")).(*mounts.CacheMount).ID(); got != "x" {
		t.Errorf("ID() = %q, want x", got)
	}
	if got := mounts.Tmpfs("/t", mounts.Size(5)).(*mounts.TmpfsMount).Size(); got != 5 {
		t.Errorf("Size() = %d, want 5", got)
	}
	s := mounts.Secret("tok", mounts.Env("TOK")).(*mounts.SecretMount)
	if s.ID() != "tok" || s.Env() != "TOK" {
		t.Errorf("secret ID() = %q Env() = %q", s.ID(), s.Env())
	}
	if got := mounts.SSH().(*mounts.SSHMount).ID(); got != "default" {
		t.Errorf("ssh ID() = %q, want default", got)
	}
}

func TestValidateMessages(t *testing.T) {
	tests := []struct {
		name  string
		mount mounts.Mount
		field string
		msg   string
	}{
		{"relative target", mounts.Cache("relative/path"), "target",
			`mounts: cache mount "relative/path": target must be an absolute path (did you mean "/relative/path"?)`},
		{"dot target", mounts.Tmpfs("."), "target",
			`mounts: tmpfs mount ".": target must be an absolute path`},
		{"empty target", mounts.Bind("", buildContext), "target",
			`mounts: bind mount "": target is empty; give the absolute path where the mount appears in the step`},
		{"dot-dot target", mounts.Cache("/root/../etc"), "target",
			`mounts: cache mount "/root/../etc": target must not contain ".." (did you mean "/etc"?)`},
		{"root target", mounts.Tmpfs("/"), "target",
			`mounts: tmpfs mount "/": target "/" would cover the step's root filesystem; mount at a directory below it`},
		{"NUL in target", mounts.Tmpfs("/a\x00b"), "target",
			`mounts: tmpfs mount "/a\x00b": target "/a\x00b" contains a NUL byte; give a path of valid UTF-8 without NUL bytes`},
		{"target not UTF-8", mounts.Cache("/caf\xe9"), "target",
			`mounts: cache mount "/caf\xe9": target "/caf\xe9" is not valid UTF-8; give a path of valid UTF-8 without NUL bytes`},
		{"id not UTF-8", mounts.SSH(mounts.ID("k\xff")), "id",
			`mounts: ssh mount "k\xff": id "k\xff" is not valid UTF-8; give an id of valid UTF-8, such as "github"`},
		{"empty cache id", mounts.Cache("/c", mounts.ID("")), "id",
			`mounts: cache mount "/c": id is empty; leave out ID to use the target path as the id`},
		{"unknown sharing", mounts.Cache("/c", mounts.Sharing(7)), "sharing",
			`mounts: cache mount "/c": sharing mode SharingMode(7) is unknown; use Shared, Private or Locked`},
		{"negative uid", mounts.Cache("/c", mounts.Owner(-1, 0)), "uid",
			`mounts: cache mount "/c": uid -1 is negative; use 0 to 4294967295`},
		{"large gid", mounts.Secret("s", mounts.Owner(0, overMaxID)), "gid",
			fmt.Sprintf(`mounts: secret mount "s": gid %d is larger than 4294967295; use 0 to 4294967295, such as 1000`, overMaxID)},
		{"mode too large", mounts.SSH(mounts.Mode(0o10000)), "mode",
			`mounts: ssh mount "default": mode 010000 is outside 0 to 07777`},
		{"negative mode", mounts.Secret("s", mounts.Mode(-1)), "mode",
			`mounts: secret mount "s": mode -01 is outside 0 to 07777`},
		{"cache mode with special bits", mounts.Cache("/c", mounts.Mode(0o1777)), "mode",
			`mounts: cache mount "/c": mode 01777 is outside 0 to 0777`},
		{"nil seed", mounts.Cache("/c", mounts.SeedFrom(nil, "")), "from",
			`mounts: cache mount "/c": SeedFrom source is nil; pass the stage to seed the cache from`},
		{"seed escapes", mounts.Cache("/c", mounts.SeedFrom(builder, "../etc")), "source",
			`mounts: cache mount "/c": source "../etc" must not contain "..", which would leave the source (did you mean "/etc"?)`},
		{"seed and owner", mounts.Cache("/c", mounts.SeedFrom(builder, ""), mounts.Owner(1, 1)), "uid",
			`mounts: cache mount "/c": Owner cannot be combined with SeedFrom: a seeded cache takes its owner from the seed directory; leave out Owner and set the owner of that directory in the seed stage`},
		{"seed and mode", mounts.Cache("/c", mounts.SeedFrom(builder, ""), mounts.Mode(0o700)), "mode",
			`mounts: cache mount "/c": Mode cannot be combined with SeedFrom: a seeded cache takes its mode from the seed directory; leave out Mode and set the mode of that directory in the seed stage`},
		{"nil bind source", mounts.Bind("/src", nil), "from",
			`mounts: bind mount "/src": source is nil; pass the stage to mount, or FromState(llb.Local("context")) for the build context`},
		{"typed nil bind source", mounts.Bind("/src", (*stage)(nil)), "from",
			`mounts: bind mount "/src": source is nil; pass the stage to mount, or FromState(llb.Local("context")) for the build context`},
		{"bind source path escapes", mounts.Bind("/src", buildContext, mounts.SourcePath("a/../../b")), "source",
			`mounts: bind mount "/src": source "a/../../b" must not contain "..", which would leave the source (did you mean "/b"?)`},
		{"negative tmpfs size", mounts.Tmpfs("/tmp", mounts.Size(-1)), "size",
			`mounts: tmpfs mount "/tmp": size -1 is negative; use 0 for the kernel's limit or a number of bytes`},
		{"empty secret id", mounts.Secret(""), "id",
			`mounts: secret mount "": id is empty; give the id under which the build provides the secret`},
		{"secret id without a file name", mounts.Secret(".."), "id",
			`mounts: secret mount "..": id ".." names no file under /run/secrets/; give Target`},
		{"relative secret target", mounts.Secret("s", mounts.Target("s.txt")), "target",
			`mounts: secret mount "s": target must be an absolute path (did you mean "/s.txt"?)`},
		{"bad env name", mounts.Secret("s", mounts.Env("1TOKEN")), "env",
			`mounts: secret mount "s": env "1TOKEN" is not a valid environment variable name: use letters, digits and underscores, starting with a letter or underscore`},
		{"env with dash", mounts.Secret("s", mounts.Env("MY-TOKEN")), "env",
			`mounts: secret mount "s": env "MY-TOKEN" is not a valid environment variable name: use letters, digits and underscores, starting with a letter or underscore`},
		{"env and target", mounts.Secret("s", mounts.Target("/s"), mounts.Env("S")), "env",
			`mounts: secret mount "s": a secret goes to a file (Target "/s") or to an environment variable (Env "S"), not both; make two secret mounts`},
		{"env and owner", mounts.Secret("s", mounts.Env("S"), mounts.Owner(1, 1)), "uid",
			`mounts: secret mount "s": Owner applies to a secret file, not to environment variable "S"; leave out Owner, or leave out Env to mount the secret as a file`},
		{"env and mode", mounts.Secret("s", mounts.Env("S"), mounts.Mode(0o444)), "mode",
			`mounts: secret mount "s": Mode applies to a secret file, not to environment variable "S"; leave out Mode, or leave out Env to mount the secret as a file`},
		{"empty ssh id", mounts.SSH(mounts.ID("")), "id",
			`mounts: ssh mount "": id is empty; leave out ID to use "default"`},
		{"relative ssh target", mounts.SSH(mounts.Target("agent.sock")), "target",
			`mounts: ssh mount "default": target must be an absolute path (did you mean "/agent.sock"?)`},
		{"nil mount", (*mounts.TmpfsMount)(nil), "",
			`mounts: tmpfs mount "": mount is nil; make one with Tmpfs`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "large gid" && int64(overMaxID) <= math.MaxUint32 {
				t.Skip("every int is a valid id where int has 32 bits")
			}
			err := tt.mount.Validate()
			if err == nil {
				t.Fatal("Validate() = nil, want an error")
			}
			if err.Error() != tt.msg {
				t.Errorf("Validate() =\n%s\nwant\n%s", err, tt.msg)
			}
			var me *mounts.Error
			if !errors.As(err, &me) {
				t.Fatalf("Validate() = %T, want an *mounts.Error", err)
			}
			if me.Field != tt.field {
				t.Errorf("Field = %q, want %q", me.Field, tt.field)
			}
			if err := mounts.Validate(tt.mount); err == nil || err.Error() != tt.msg {
				t.Errorf("mounts.Validate() = %v, want the mount's own error", err)
			}
		})
	}
}

// overMaxID is one more than the largest uid where int has 64 bits, and the
// largest int where it has 32.
var overMaxID = int(min(int64(math.MaxInt), 1<<32))

type stage struct{ st llb.State }

func (s *stage) State() llb.State { return s.st }

func TestValidateReportsEveryProblem(t *testing.T) {
	err := mounts.Cache("rel", mounts.ID(""), mounts.Owner(-1, -2)).Validate()
	want := []string{"target", "id", "uid", "gid"}
	var got []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		got = append(got, e.(*mounts.Error).Field)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("fields = %v, want %v\n%v", got, want, err)
	}
}

func TestErrorFields(t *testing.T) {
	err := mounts.Cache("relative/path").Validate()
	var me *mounts.Error
	if !errors.As(err, &me) {
		t.Fatalf("%v is not an *mounts.Error", err)
	}
	want := mounts.Error{Kind: "cache", Mount: "relative/path", Field: "target", Value: "relative/path",
		Reason: `target must be an absolute path (did you mean "/relative/path"?)`}
	if *me != want {
		t.Errorf("error = %#v, want %#v", *me, want)
	}
}

func TestValidateStep(t *testing.T) {
	tests := []struct {
		name   string
		mounts []mounts.Mount
		msg    string
	}{
		{"distinct", []mounts.Mount{mounts.Cache("/a"), mounts.Cache("/a/b"), mounts.Secret("a"), mounts.Secret("b", mounts.Env("B")), mounts.Secret("c", mounts.Env("C"))}, ""},
		{"none", nil, ""},
		{"duplicate targets", []mounts.Mount{mounts.Cache("/src"), mounts.Tmpfs("/tmp"), mounts.Bind("/src/", buildContext)},
			`mounts: bind mount "/src": target "/src" is also the target of cache mount "/src" (mounts 1 and 3); give each mount its own target`},
		{"secret file on a cache", []mounts.Mount{mounts.Secret("npmrc"), mounts.Cache("/run/secrets/npmrc")},
			`mounts: cache mount "/run/secrets/npmrc": target "/run/secrets/npmrc" is also the target of secret mount "npmrc" (mounts 1 and 2); give each mount its own target`},
		{"two default SSH sockets", []mounts.Mount{mounts.SSH(), mounts.SSH(mounts.ID("github"))},
			`mounts: ssh mount "github": target "/run/buildkit/ssh_agent.0" is also the target of ssh mount "default" (mounts 1 and 2); give each mount its own target`},
		{"duplicate env", []mounts.Mount{mounts.Secret("a", mounts.Env("TOKEN")), mounts.Secret("b", mounts.Env("TOKEN"))},
			`mounts: secret mount "b": environment variable "TOKEN" is also set by secret "a" (mounts 1 and 2); give each secret its own variable`},
		{"nil mount", []mounts.Mount{mounts.Cache("/a"), nil},
			`mounts: mount 2 of 2 is nil; leave it out`},
		{"invalid and duplicate", []mounts.Mount{mounts.Cache("a"), mounts.Tmpfs("/t"), mounts.Tmpfs("/t")},
			"mounts: cache mount \"a\": target must be an absolute path (did you mean \"/a\"?)\n" +
				`mounts: tmpfs mount "/t": target "/t" is also the target of tmpfs mount "/t" (mounts 2 and 3); give each mount its own target`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := mounts.Validate(tt.mounts...)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.msg {
				t.Errorf("Validate() =\n%s\nwant\n%s", got, tt.msg)
			}
		})
	}
}

func TestSharingMode(t *testing.T) {
	for _, m := range []mounts.SharingMode{mounts.Shared, mounts.Private, mounts.Locked} {
		got, err := mounts.ParseSharing(strings.ToUpper(m.String()))
		if err != nil || got != m {
			t.Errorf("ParseSharing(%q) = %v, %v; want %v", strings.ToUpper(m.String()), got, err, m)
		}
	}
	var zero mounts.SharingMode
	if zero != mounts.Shared {
		t.Errorf("zero SharingMode = %v, want shared", zero)
	}
	if got := mounts.SharingMode(9).String(); got != "SharingMode(9)" {
		t.Errorf("String() = %q", got)
	}
	_, err := mounts.ParseSharing("lock")
	if want := `mounts: sharing "lock" is not one of shared, private or locked (did you mean "locked"?)`; err == nil || err.Error() != want {
		t.Errorf("ParseSharing(lock) = %v, want %s", err, want)
	}
}

func TestZeroOptionsChangeNothing(t *testing.T) {
	var (
		id  mounts.IDOption
		f   mounts.FileOption
		tg  mounts.TargetOption
		req mounts.RequiredOption
		acc mounts.AccessOption
	)
	for _, tt := range []struct{ got, want mounts.Mount }{
		{mounts.Cache("/c", id, f, acc, nil), mounts.Cache("/c")},
		{mounts.Bind("/b", buildContext, acc), mounts.Bind("/b", buildContext)},
		{mounts.Secret("s", tg, f, req), mounts.Secret("s")},
		{mounts.SSH(id, tg, f, req), mounts.SSH()},
	} {
		if tt.got.String() != tt.want.String() {
			t.Errorf("with zero options %s, want %s", tt.got, tt.want)
		}
	}
}

// device is a Mount implemented outside the package.
type device struct{ target string }

var errDevice = errors.New("no such device")

func (d device) SetRunOption(*llb.ExecInfo) {}
func (d device) Target() string             { return d.target }
func (d device) Validate() error            { return errDevice }
func (d device) String() string             { return "device" }

func TestValidateOtherMounts(t *testing.T) {
	err := mounts.Validate(device{"/dev/x"}, mounts.Tmpfs("/dev/x"))
	if !errors.Is(err, errDevice) {
		t.Errorf("Validate() = %v, want it to keep the mount's own error", err)
	}
	want := "no such device\n" +
		`mounts: tmpfs mount "/dev/x": target "/dev/x" is also the target of mount "/dev/x" (mounts 1 and 2); give each mount its own target`
	if err == nil || err.Error() != want {
		t.Errorf("Validate() =\n%v\nwant\n%s", err, want)
	}
}

func TestNilMountsDoNotPanic(t *testing.T) {
	var (
		c *mounts.CacheMount
		b *mounts.BindMount
		m *mounts.TmpfsMount
		s *mounts.SecretMount
		h *mounts.SSHMount
	)
	for _, mt := range []mounts.Mount{c, b, m, s, h} {
		if mt.Target() != "" || mt.String() != "<nil>" || mt.Validate() == nil {
			t.Errorf("%T(nil): Target %q String %q Validate %v", mt, mt.Target(), mt.String(), mt.Validate())
		}
		if _, err := step(mt).Marshal(t.Context(), llb.LinuxAmd64); err == nil {
			t.Errorf("%T(nil): Marshal succeeded", mt)
		}
	}
	if c.ID() != "" || c.Sharing() != mounts.Shared || m.Size() != 0 || s.ID() != "" || s.Env() != "" || h.ID() != "" {
		t.Error("accessors of nil mounts are not zero")
	}
	if mounts.Named("x", nil) != nil {
		t.Error(`Named("x", nil) != nil`)
	}
	src := mounts.FromState(llb.Scratch())
	if mounts.Named("", src) != src {
		t.Error(`Named("", src) != src`)
	}
}

// namedStage is a Source with a name of its own.
type namedStage struct{ name string }

func (s *namedStage) State() llb.State { return llb.Image("docker.io/library/alpine:3.20") }
func (s *namedStage) Name() string     { return s.name }

func TestSourceNames(t *testing.T) {
	tests := []struct {
		src  mounts.Source
		want string
	}{
		{&namedStage{"web"}, "type=bind,target=/x,from=web"},
		{&namedStage{""}, "type=bind,target=/x,from=<unnamed>"},
		{(*namedStage)(nil), "type=bind,target=/x,from=<nil>"},
		{nil, "type=bind,target=/x,from=<nil>"},
		{mounts.Named("web", &namedStage{"other"}), "type=bind,target=/x,from=web"},
	}
	for _, tt := range tests {
		if got := mounts.Bind("/x", tt.src).String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}
