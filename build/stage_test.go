package build_test

// Marshal-and-inspect tests: each builds a Stage, marshals it without a
// builder, and reads the LLB operations back to check what the builder
// would be asked to do.

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/platforms"
	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/mounts"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// uGraph is a marshalled definition with its operations decoded.
type uGraph struct {
	def *llb.Definition
	// ops are the operations in definition order; the last one is the
	// terminal op that only points at the result.
	ops      []*pb.Op
	byDigest map[string]*pb.Op
}

// uMarshal marshals s for linux/amd64 and decodes every operation.
func uMarshal(t testing.TB, s build.Stage) uGraph {
	t.Helper()
	return uMarshalFor(t, s, "linux/amd64")
}

func uMarshalFor(t testing.TB, s build.Stage, platform string) uGraph {
	t.Helper()
	def, err := s.Marshal(context.Background(), platform)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	return uDecode(t, def)
}

func uDecode(t testing.TB, def *llb.Definition) uGraph {
	t.Helper()
	g := uGraph{def: def, byDigest: map[string]*pb.Op{}}
	for _, dt := range def.Def {
		var op pb.Op
		if err := op.UnmarshalVT(dt); err != nil {
			t.Fatalf("UnmarshalVT: %v", err)
		}
		g.ops = append(g.ops, &op)
		g.byDigest[digest.FromBytes(dt).String()] = &op
	}
	return g
}

// sources returns the source ops of g.
func (g uGraph) sources() []*pb.SourceOp {
	var out []*pb.SourceOp
	for _, op := range g.ops {
		if s := op.GetSource(); s != nil {
			out = append(out, s)
		}
	}
	return out
}

// source returns the op of the only source whose identifier starts with
// prefix.
func (g uGraph) source(t testing.TB, prefix string) *pb.Op {
	t.Helper()
	var found *pb.Op
	for _, op := range g.ops {
		if s := op.GetSource(); s != nil && strings.HasPrefix(s.Identifier, prefix) {
			if found != nil {
				t.Fatalf("more than one source with prefix %q", prefix)
			}
			found = op
		}
	}
	if found == nil {
		t.Fatalf("no source with prefix %q in %v", prefix, uIdentifiers(g))
	}
	return found
}

// exec returns the exec op whose last argument is last.
func (g uGraph) exec(t testing.TB, last string) *pb.Op {
	t.Helper()
	for _, op := range g.ops {
		if e := op.GetExec(); e != nil {
			if args := e.GetMeta().GetArgs(); len(args) > 0 && args[len(args)-1] == last {
				return op
			}
		}
	}
	t.Fatalf("no exec op ending in %q", last)
	return nil
}

// execs returns every exec op of g.
func (g uGraph) execs() []*pb.ExecOp {
	var out []*pb.ExecOp
	for _, op := range g.ops {
		if e := op.GetExec(); e != nil {
			out = append(out, e)
		}
	}
	return out
}

// copies returns every copy action of g.
func (g uGraph) copies() []*pb.FileActionCopy {
	var out []*pb.FileActionCopy
	for _, op := range g.ops {
		for _, a := range op.GetFile().GetActions() {
			if c := a.GetCopy(); c != nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// input returns the op that input i of op refers to.
func (g uGraph) input(t testing.TB, op *pb.Op, i int64) *pb.Op {
	t.Helper()
	if i < 0 || int(i) >= len(op.Inputs) {
		t.Fatalf("input %d out of range (%d inputs)", i, len(op.Inputs))
	}
	in, ok := g.byDigest[op.Inputs[i].Digest]
	if !ok {
		t.Fatalf("input %d (%s) is not in the definition", i, op.Inputs[i].Digest)
	}
	return in
}

// uMount returns the mount of ex at dest.
func uMount(t testing.TB, ex *pb.ExecOp, dest string) *pb.Mount {
	t.Helper()
	for _, m := range ex.Mounts {
		if m.Dest == dest {
			return m
		}
	}
	t.Fatalf("no mount at %s", dest)
	return nil
}

func uIdentifiers(g uGraph) []string {
	var ids []string
	for _, s := range g.sources() {
		ids = append(ids, s.Identifier)
	}
	return ids
}

// uSameDef reports whether two definitions hold byte-identical operations.
func uSameDef(a, b *llb.Definition) bool {
	return slices.EqualFunc(a.Def, b.Def, bytes.Equal)
}

// uWarner is a step option that recognises a flag that defeats it, as a
// cache preset does (pip's --no-cache-dir under the pip preset).
type uWarner struct{ flag string }

var _ mounts.StepOption = uWarner{}

func (uWarner) SetRunOption(*llb.ExecInfo)              {}
func (uWarner) Validate() error                         { return nil }
func (uWarner) Mounts() []mounts.Mount                  { return nil }
func (w uWarner) ForStep(mounts.Step) mounts.StepOption { return w }

func (w uWarner) Warnings(args []string) []string {
	if strings.Contains(strings.Join(args, " "), w.flag) {
		return []string{w.flag + " defeats the cache"}
	}
	return nil
}

func TestUnitImageSource(t *testing.T) {
	for _, tc := range []struct{ ref, want string }{
		{"debian:bookworm", "docker-image://docker.io/library/debian:bookworm"},
		{"debian", "docker-image://docker.io/library/debian:latest"},
		{"library/debian:bookworm", "docker-image://docker.io/library/debian:bookworm"},
		{"docker.io/library/debian:bookworm", "docker-image://docker.io/library/debian:bookworm"},
		{"ghcr.io/team/base:1.2", "docker-image://ghcr.io/team/base:1.2"},
		{"localhost:5000/base", "docker-image://localhost:5000/base:latest"},
		{
			"alpine@sha256:" + strings.Repeat("ab", 32),
			"docker-image://docker.io/library/alpine@sha256:" + strings.Repeat("ab", 32),
		},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			g := uMarshal(t, build.Image(tc.ref))
			src := g.sources()
			if len(src) != 1 {
				t.Fatalf("sources = %v, want one", uIdentifiers(g))
			}
			if src[0].Identifier != tc.want {
				t.Errorf("identifier = %q, want %q", src[0].Identifier, tc.want)
			}
		})
	}
}

func TestUnitImagePlatform(t *testing.T) {
	for _, tc := range []struct {
		name        string
		stage       build.Stage
		marshalFor  string
		os, arch, v string
	}{
		{"default is the solve's", build.Image("debian"), "linux/amd64", "linux", "amd64", ""},
		{"default follows Marshal", build.Image("debian"), "linux/arm64", "linux", "arm64", ""},
		{"Platform option", build.Image("debian", build.Platform("linux/arm64")), "linux/amd64", "linux", "arm64", ""},
		{"Platform option is normalised", build.Image("debian", build.Platform("linux/aarch64")), "linux/amd64", "linux", "arm64", ""},
		{"Platform option with variant", build.Image("debian", build.Platform("linux/arm/v7")), "linux/amd64", "linux", "arm", "v7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := uMarshalFor(t, tc.stage, tc.marshalFor)
			p := g.source(t, "docker-image://").Platform
			if p.GetOS() != tc.os || p.GetArchitecture() != tc.arch || p.GetVariant() != tc.v {
				t.Errorf("platform = %v, want %s/%s/%s", p, tc.os, tc.arch, tc.v)
			}
		})
	}
}

func TestUnitStagePlatform(t *testing.T) {
	g := uMarshal(t, build.Image("debian").Platform("linux/arm64").Run("uname -m"))
	if p := g.exec(t, "uname -m").Platform; p.GetArchitecture() != "arm64" || p.GetOS() != "linux" {
		t.Errorf("exec platform = %v, want linux/arm64", p)
	}
}

func TestUnitLocalSource(t *testing.T) {
	g := uMarshal(t, build.Local("src", build.Include("*.go", "go.mod"), build.Exclude("vendor"), build.Include("go.sum")))
	src := g.source(t, "local://").GetSource()
	if src.Identifier != "local://src" {
		t.Errorf("identifier = %q, want local://src", src.Identifier)
	}
	for key, want := range map[string]string{
		pb.AttrIncludePatterns: `["*.go","go.mod","go.sum"]`,
		pb.AttrExcludePatterns: `["vendor"]`,
		pb.AttrSharedKeyHint:   "src",
	} {
		if got := src.Attrs[key]; got != want {
			t.Errorf("attr %s = %q, want %q", key, got, want)
		}
	}

	plain := uMarshal(t, build.Local("ctx")).source(t, "local://").GetSource()
	for _, key := range []string{pb.AttrIncludePatterns, pb.AttrExcludePatterns} {
		if v, ok := plain.Attrs[key]; ok {
			t.Errorf("Local without patterns has %s = %q", key, v)
		}
	}
}

func TestUnitGitSource(t *testing.T) {
	const remote = "https://github.com/moby/buildkit.git"
	src := uMarshal(t, build.Git(remote, "v0.33.1", build.KeepGitDir())).source(t, "git://").GetSource()
	if want := "git://github.com/moby/buildkit.git#v0.33.1"; src.Identifier != want {
		t.Errorf("identifier = %q, want %q", src.Identifier, want)
	}
	if got := src.Attrs[pb.AttrFullRemoteURL]; got != remote {
		t.Errorf("%s = %q, want %q", pb.AttrFullRemoteURL, got, remote)
	}
	if got := src.Attrs[pb.AttrKeepGitDir]; got != "true" {
		t.Errorf("%s = %q, want true", pb.AttrKeepGitDir, got)
	}

	def := uMarshal(t, build.Git(remote, "")).source(t, "git://").GetSource()
	if want := "git://github.com/moby/buildkit.git"; def.Identifier != want {
		t.Errorf("default branch: identifier = %q, want %q", def.Identifier, want)
	}
	if v, ok := def.Attrs[pb.AttrKeepGitDir]; ok {
		t.Errorf("without KeepGitDir: %s = %q", pb.AttrKeepGitDir, v)
	}
}

func TestUnitHTTPSource(t *testing.T) {
	const url = "https://example.com/dl/tool-1.0.tar.gz"
	sum := "sha256:" + strings.Repeat("0123456789abcdef", 4)
	src := uMarshal(t, build.HTTP(url, build.Checksum(sum), build.Filename("tool.tgz"))).source(t, "https://").GetSource()
	if src.Identifier != url {
		t.Errorf("identifier = %q, want %q", src.Identifier, url)
	}
	if got := src.Attrs[pb.AttrHTTPChecksum]; got != sum {
		t.Errorf("%s = %q, want %q", pb.AttrHTTPChecksum, got, sum)
	}
	if got := src.Attrs[pb.AttrHTTPFilename]; got != "tool.tgz" {
		t.Errorf("%s = %q, want tool.tgz", pb.AttrHTTPFilename, got)
	}

	plain := uMarshal(t, build.HTTP("http://example.com/a")).source(t, "http://").GetSource()
	if len(plain.Attrs) != 0 {
		t.Errorf("HTTP without options has attrs %v", plain.Attrs)
	}
}

func TestUnitRun(t *testing.T) {
	g := uMarshal(t, build.Image("alpine:3.20").Run("echo hello && touch /out"))
	ex := g.exec(t, "echo hello && touch /out").GetExec()
	if want := []string{"/bin/sh", "-c", "echo hello && touch /out"}; !slices.Equal(ex.Meta.Args, want) {
		t.Errorf("args = %q, want %q", ex.Meta.Args, want)
	}
	root := uMount(t, ex, "/")
	if in := g.input(t, g.exec(t, "echo hello && touch /out"), root.Input); in.GetSource().GetIdentifier() != "docker-image://docker.io/library/alpine:3.20" {
		t.Errorf("root input = %v, want the alpine image", in)
	}
	if root.Output != 0 {
		t.Errorf("root output = %d, want 0 (the step's result)", root.Output)
	}
}

func TestUnitRunArgs(t *testing.T) {
	args := []string{"make", "-C", "/src", "all"}
	ex := uMarshal(t, build.Image("alpine").RunArgs(args)).exec(t, "all").GetExec()
	if !slices.Equal(ex.Meta.Args, args) {
		t.Errorf("args = %q, want %q", ex.Meta.Args, args)
	}
}

func TestUnitRunTakesRawLLBOptions(t *testing.T) {
	ex := uMarshal(t, build.Image("alpine").Run("env", llb.AddEnv("RAW", "1"), llb.Network(llb.NetModeNone))).exec(t, "env").GetExec()
	if !slices.Contains(ex.Meta.Env, "RAW=1") {
		t.Errorf("env = %q, want RAW=1 from llb.AddEnv", ex.Meta.Env)
	}
	if ex.Network != pb.NetMode_NONE {
		t.Errorf("network = %v, want NONE from llb.Network", ex.Network)
	}
}

func TestUnitEnvDirUser(t *testing.T) {
	s := build.Image("alpine").
		Env("A", "1").
		Env("B", "two words").
		Env("A", "3"). // a later value replaces the earlier one
		Dir("/work").
		Dir("sub"). // relative to the current dir
		User("1000:1000").
		Run("pwd")
	ex := uMarshal(t, s).exec(t, "pwd").GetExec()
	for _, kv := range []string{"A=3", "B=two words"} {
		if !slices.Contains(ex.Meta.Env, kv) {
			t.Errorf("env = %q, want %s", ex.Meta.Env, kv)
		}
	}
	if slices.Contains(ex.Meta.Env, "A=1") {
		t.Errorf("env = %q still holds A=1", ex.Meta.Env)
	}
	if ex.Meta.Cwd != "/work/sub" {
		t.Errorf("cwd = %q, want /work/sub", ex.Meta.Cwd)
	}
	if ex.Meta.User != "1000:1000" {
		t.Errorf("user = %q, want 1000:1000", ex.Meta.User)
	}
}

func TestUnitEnvDirUserApplyOnlyToLaterSteps(t *testing.T) {
	s := build.Image("alpine").Run("first").Env("A", "1").Dir("/w").User("app").Run("second")
	g := uMarshal(t, s)
	first := g.exec(t, "first").GetExec()
	if slices.Contains(first.Meta.Env, "A=1") || first.Meta.Cwd == "/w" || first.Meta.User == "app" {
		t.Errorf("an earlier step sees later settings: %v", first.Meta)
	}
	second := g.exec(t, "second").GetExec()
	if !slices.Contains(second.Meta.Env, "A=1") || second.Meta.Cwd != "/w" || second.Meta.User != "app" {
		t.Errorf("a later step misses settings: %v", second.Meta)
	}
}

func TestUnitCopy(t *testing.T) {
	from := build.Image("golang:1.23").Run("go build -o /out/app ./...")
	s := build.Image("debian:bookworm").Copy(from, "/out/app", "/usr/local/bin/app", build.Chown(1000, 1001), build.Chmod(0o755))
	g := uMarshal(t, s)
	cs := g.copies()
	if len(cs) != 1 {
		t.Fatalf("%d copy actions, want 1", len(cs))
	}
	c := cs[0]
	if c.Src != "/out/app" || c.Dest != "/usr/local/bin/app" {
		t.Errorf("copy %q -> %q, want /out/app -> /usr/local/bin/app", c.Src, c.Dest)
	}
	if !c.CreateDestPath || !c.AllowWildcard || !c.FollowSymlink || !c.DirCopyContents {
		t.Errorf("copy flags = create %v, wildcard %v, follow %v, contents %v; want all true",
			c.CreateDestPath, c.AllowWildcard, c.FollowSymlink, c.DirCopyContents)
	}
	if c.Mode != 0o755 {
		t.Errorf("mode = %#o, want 0755", c.Mode)
	}
	if u, gr := c.GetOwner().GetUser().GetByID(), c.GetOwner().GetGroup().GetByID(); u != 1000 || gr != 1001 {
		t.Errorf("owner = %d:%d, want 1000:1001", u, gr)
	}

	// The copy's source input is the exec of from, and its destination
	// the debian image.
	var fileOp *pb.Op
	for _, op := range g.ops {
		if op.GetFile() != nil {
			fileOp = op
		}
	}
	act := fileOp.GetFile().Actions[0]
	if dst := g.input(t, fileOp, act.Input); dst.GetSource().GetIdentifier() != "docker-image://docker.io/library/debian:bookworm" {
		t.Errorf("copy destination = %v, want the debian image", dst)
	}
	if src := g.input(t, fileOp, act.SecondaryInput); src.GetExec() == nil || !slices.Contains(src.GetExec().Meta.Args, "go build -o /out/app ./...") {
		t.Errorf("copy source = %v, want the go build step", src)
	}
}

func TestUnitCopyDefaults(t *testing.T) {
	c := uMarshal(t, build.Scratch().Copy(build.Image("alpine"), "/etc/*.conf", "/etc/")).copies()[0]
	if c.Owner != nil {
		t.Errorf("owner = %v, want none (keep the source's)", c.Owner)
	}
	if c.Mode != -1 {
		t.Errorf("mode = %d, want -1 (keep the source's)", c.Mode)
	}
	if !c.AllowWildcard || !c.CreateDestPath {
		t.Errorf("wildcard %v, create %v; want both", c.AllowWildcard, c.CreateDestPath)
	}
}

func TestUnitCopyChownUser(t *testing.T) {
	c := uMarshal(t, build.Image("alpine").Copy(build.Local("src"), ".", "/app", build.ChownUser("app:staff"))).copies()[0]
	if u := c.GetOwner().GetUser().GetByName().GetName(); u != "app" {
		t.Errorf("owner user = %q, want app", u)
	}
	if gr := c.GetOwner().GetGroup().GetByName().GetName(); gr != "staff" {
		t.Errorf("owner group = %q, want staff", gr)
	}
	c = uMarshal(t, build.Image("alpine").Copy(build.Local("src"), ".", "/app", build.ChownUser("1000"))).copies()[0]
	if u := c.GetOwner().GetUser().GetByID(); u != 1000 {
		t.Errorf("ChownUser(\"1000\"): owner = %v, want uid 1000", c.GetOwner())
	}
}

func TestUnitCopyRelativeDest(t *testing.T) {
	c := uMarshal(t, build.Image("alpine").Dir("/app").Copy(build.Local("src"), "go.mod", "mod/")).copies()[0]
	if !strings.HasPrefix(c.Dest, "/app/mod") {
		t.Errorf("dest = %q, want it under the working directory /app", c.Dest)
	}
}

func TestUnitRunMounts(t *testing.T) {
	builder := build.Image("golang:1.23").Run("go build -o /out/app ./...")
	s := build.Image("debian:bookworm").Run("ls /bin/app /root/.cache",
		mounts.Cache("/root/.cache/go-build", mounts.ID("go-build"), mounts.Sharing(mounts.Locked)),
		mounts.Bind("/bin/app", builder, mounts.SourcePath("/out/app")),
		mounts.Tmpfs("/tmp", mounts.Size(64<<20)),
		mounts.Secret("npmrc", mounts.Target("/root/.npmrc"), mounts.Required()),
		mounts.Secret("token", mounts.Env("TOKEN")),
		mounts.SSH(),
	)
	g := uMarshal(t, s)
	op := g.exec(t, "ls /bin/app /root/.cache")
	ex := op.GetExec()

	c := uMount(t, ex, "/root/.cache/go-build")
	if c.MountType != pb.MountType_CACHE || c.CacheOpt.GetID() != "go-build" || c.CacheOpt.GetSharing() != pb.CacheSharingOpt_LOCKED {
		t.Errorf("cache mount = %v, want CACHE id go-build sharing LOCKED", c)
	}

	b := uMount(t, ex, "/bin/app")
	if b.MountType != pb.MountType_BIND || !b.Readonly || b.Selector != "/out/app" || b.Output != int64(pb.SkipOutput) {
		t.Errorf("bind mount = %v, want a read-only BIND of /out/app with no output", b)
	}
	if in := g.input(t, op, b.Input); !slices.Contains(in.GetExec().GetMeta().GetArgs(), "go build -o /out/app ./...") {
		t.Errorf("bind input = %v, want the go build step", in)
	}

	tm := uMount(t, ex, "/tmp")
	if tm.MountType != pb.MountType_TMPFS || tm.TmpfsOpt.GetSize() != 64<<20 {
		t.Errorf("tmpfs mount = %v, want TMPFS of 64MiB", tm)
	}

	sec := uMount(t, ex, "/root/.npmrc")
	if sec.MountType != pb.MountType_SECRET || sec.SecretOpt.GetID() != "npmrc" || sec.SecretOpt.GetOptional() {
		t.Errorf("secret mount = %v, want required SECRET npmrc", sec)
	}
	if len(ex.Secretenv) != 1 || ex.Secretenv[0].ID != "token" || ex.Secretenv[0].Name != "TOKEN" || !ex.Secretenv[0].Optional {
		t.Errorf("secret env = %v, want optional token as $TOKEN", ex.Secretenv)
	}

	ssh := uMount(t, ex, "/run/buildkit/ssh_agent.0")
	if ssh.MountType != pb.MountType_SSH || ssh.SSHOpt.GetID() != "default" || !ssh.SSHOpt.GetOptional() {
		t.Errorf("ssh mount = %v, want optional SSH default", ssh)
	}
}

func TestUnitRunMountOfLocal(t *testing.T) {
	s := build.Image("golang:1.23").Run("go vet ./...", mounts.Bind("/src", build.Local("src", build.Exclude(".git"))))
	g := uMarshal(t, s)
	op := g.exec(t, "go vet ./...")
	m := uMount(t, op.GetExec(), "/src")
	in := g.input(t, op, m.Input).GetSource()
	if in.GetIdentifier() != "local://src" || in.Attrs[pb.AttrExcludePatterns] != `[".git"]` {
		t.Errorf("bind input = %v, want local://src without .git", in)
	}
}

func TestUnitFromStateRoundTrip(t *testing.T) {
	ctx := context.Background()
	st := llb.Image("docker.io/library/alpine:3.20").Run(llb.Shlex("apk add git")).Root()
	want, err := st.Marshal(ctx, llb.LinuxAmd64)
	if err != nil {
		t.Fatal(err)
	}

	back, err := build.From(st).State().Marshal(ctx, llb.LinuxAmd64)
	if err != nil {
		t.Fatal(err)
	}
	if !uSameDef(back, want) {
		t.Error("From(st).State() marshals differently from st")
	}

	viaStage, err := build.From(st).Marshal(ctx, "linux/amd64")
	if err != nil {
		t.Fatal(err)
	}
	if !uSameDef(viaStage, want) {
		t.Error("From(st).Marshal(ctx, \"linux/amd64\") differs from st.Marshal(ctx, llb.LinuxAmd64)")
	}

	// And the other way: a Stage's state extends with raw llb.
	raw := build.Image("alpine:3.20").Run("echo larder").State().Run(llb.Shlex("echo raw")).Root()
	def, err := raw.Marshal(ctx, llb.LinuxAmd64)
	if err != nil {
		t.Fatal(err)
	}
	g := uDecode(t, def)
	g.exec(t, "echo larder")
	g.exec(t, "raw")
}

func TestUnitImmutable(t *testing.T) {
	base := build.Image("alpine:3.20").Env("A", "1").Dir("/w").User("app").Run("echo base")
	before := uMarshal(t, base)

	// Every method, including those that fail, leaves base as it was.
	branches := []build.Stage{
		base.Env("B", "2"),
		base.Env("bad=key", "x"),
		base.Dir("/elsewhere"),
		base.Dir(""),
		base.User("root"),
		base.Platform("linux/arm64"),
		base.Run("echo branch", mounts.Cache("/c")),
		base.Run(""),
		base.RunArgs([]string{"true"}),
		base.Copy(build.Image("busybox"), "/bin/busybox", "/bin/"),
		base.Copy(build.Image("busybox"), "", ""),
		base.Label("k", "v").Entrypoint("/app").Cmd("serve"),
		base.With(func(s build.Stage) build.Stage { return s.Run("echo with") }),
	}
	_ = branches

	if err := base.Err(); err != nil {
		t.Fatalf("base.Err() = %v after failing branches", err)
	}
	after := uMarshal(t, base)
	if !uSameDef(before.def, after.def) {
		t.Error("branching changed the definition of the original stage")
	}

	// Two branches from one stage each hold only their own step.
	one := uMarshal(t, base.Run("one"))
	two := uMarshal(t, base.Run("two"))
	if len(one.execs()) != 2 || len(two.execs()) != 2 {
		t.Errorf("branches have %d and %d steps, want 2 each", len(one.execs()), len(two.execs()))
	}
	one.exec(t, "one")
	two.exec(t, "two")
}

func uGraphForDeterminism() build.Stage {
	tools := build.HTTP("https://example.com/tool.tgz", build.Checksum("sha256:"+strings.Repeat("a", 64)))
	src := build.Git("https://github.com/example/app.git", "main")
	return build.Image("golang:1.23", build.Platform("linux/amd64")).
		Env("CGO_ENABLED", "0").
		Dir("/src").
		Copy(src, "/", ".").
		Copy(tools, "tool.tgz", "/tmp/", build.Chmod(0o644)).
		Run("go build -o /out/app ./cmd/app",
			mounts.Cache("/root/.cache/go-build", mounts.Sharing(mounts.Locked)),
			mounts.Bind("/tools", build.Image("busybox:1.36")),
			mounts.Secret("token", mounts.Env("TOKEN")),
		).
		User("65532")
}

func TestUnitDeterministic(t *testing.T) {
	a := uMarshal(t, uGraphForDeterminism())
	b := uMarshal(t, uGraphForDeterminism())
	if !uSameDef(a.def, b.def) {
		t.Error("two constructions of the same graph marshal differently")
	}
	s := uGraphForDeterminism()
	if !uSameDef(uMarshal(t, s).def, uMarshal(t, s).def) {
		t.Error("one stage marshals differently twice")
	}
}

func TestUnitDeterministicWithLocal(t *testing.T) {
	s := build.Local("src")
	a, b := uMarshal(t, s), uMarshal(t, s)
	if !uSameDef(a.def, b.def) {
		t.Errorf("local.unique = %q then %q",
			a.source(t, "local://").GetSource().Attrs[pb.AttrLocalUniqueID],
			b.source(t, "local://").GetSource().Attrs[pb.AttrLocalUniqueID])
	}
}

func TestUnitWith(t *testing.T) {
	goEnv := func(s build.Stage) build.Stage { return s.Env("GOFLAGS", "-mod=mod").Dir("/src") }
	vet := func(s build.Stage) build.Stage { return s.Run("go vet ./...") }

	got := uMarshal(t, build.Image("golang").With(goEnv, vet))
	want := uMarshal(t, vet(goEnv(build.Image("golang"))))
	if !uSameDef(got.def, want.def) {
		t.Error("With(f, g) differs from g(f(s))")
	}
	ex := got.exec(t, "go vet ./...").GetExec()
	if ex.Meta.Cwd != "/src" || !slices.Contains(ex.Meta.Env, "GOFLAGS=-mod=mod") {
		t.Errorf("vet step meta = %v, want the settings of goEnv", ex.Meta)
	}

	s := build.Image("golang").Run("true")
	if !uSameDef(uMarshal(t, s.With()).def, uMarshal(t, s).def) {
		t.Error("With() changed the stage")
	}
}

func TestUnitWarnings(t *testing.T) {
	pip := uWarner{flag: "--no-cache-dir"}
	s := build.Image("python:3.12").Run("pip install --no-cache-dir requests", pip)
	want := []string{`Run("pip install --no-cache-dir requests"): --no-cache-dir defeats the cache`}
	if got := s.Warnings(); !slices.Equal(got, want) {
		t.Errorf("Warnings = %q, want %q", got, want)
	}
	if got := build.Image("python:3.12").Run("pip install requests", pip).Warnings(); len(got) != 0 {
		t.Errorf("a command without the flag warns: %q", got)
	}

	// Warnings propagate through Copy, after the destination's own.
	dst := build.Image("debian").RunArgs([]string{"pip", "install", "--no-cache-dir", "x"}, pip).Copy(s, "/usr/lib/python3", "/usr/lib/python3")
	wantDst := []string{`RunArgs(["pip" "install" "--no-cache-dir" "x"]): --no-cache-dir defeats the cache`, want[0]}
	if got := dst.Warnings(); !slices.Equal(got, wantDst) {
		t.Errorf("after Copy: Warnings = %q, want %q", got, wantDst)
	}

	// Warnings returns a copy.
	w := s.Warnings()
	w[0] = "changed"
	if got := s.Warnings(); !slices.Equal(got, want) {
		t.Errorf("changing the returned slice changed the stage: %q", got)
	}

	if got := build.Image("debian").Warnings(); got != nil {
		t.Errorf("a stage without warnings has %q", got)
	}
}

func TestUnitWarningsOfBranchesAreIndependent(t *testing.T) {
	// Three warnings leave room in the slice's backing array, where two
	// branches appending in place would overwrite each other.
	w := uWarner{flag: "!"}
	b := build.Image("python").Run("a !", w).Run("b !", w).Run("c !", w)
	x := b.Run("x !", w)
	y := b.Run("y !", w)
	last := func(s build.Stage) string { ws := s.Warnings(); return ws[len(ws)-1] }
	if got := last(x); !strings.HasPrefix(got, `Run("x !")`) {
		t.Errorf("x's last warning = %q, want the one of Run(\"x !\")", got)
	}
	if got := last(y); !strings.HasPrefix(got, `Run("y !")`) {
		t.Errorf("y's last warning = %q, want the one of Run(\"y !\")", got)
	}
	if n := len(b.Warnings()); n != 3 {
		t.Errorf("b has %d warnings after branching, want 3", n)
	}

	c1 := b.Copy(build.Image("python").Run("from !", w), "/a", "/a")
	c2 := b.Copy(build.Image("python").Run("other !", w), "/a", "/a")
	if got := last(c1); !strings.HasPrefix(got, `Run("from !")`) {
		t.Errorf("c1's last warning = %q, want the one of Run(\"from !\")", got)
	}
	if got := last(c2); !strings.HasPrefix(got, `Run("other !")`) {
		t.Errorf("c2's last warning = %q, want the one of Run(\"other !\")", got)
	}
}

func TestUnitScratch(t *testing.T) {
	g := uMarshal(t, build.Scratch())
	if len(g.sources()) != 0 || len(g.execs()) != 0 {
		t.Errorf("Scratch() marshals to %d ops, want no source and no step", len(g.ops))
	}
	if err := (build.Stage{}).Err(); err != nil {
		t.Errorf("zero Stage: Err() = %v", err)
	}
	ex := uMarshal(t, build.Scratch().Copy(build.Image("busybox"), "/bin/busybox", "/bin/").Run("/bin/busybox true")).exec(t, "/bin/busybox true").GetExec()
	if ex.Meta.Cwd != "/" {
		t.Errorf("cwd on Scratch = %q, want /", ex.Meta.Cwd)
	}
}

func TestUnitZeroStageIsScratch(t *testing.T) {
	var zero build.Stage
	for name, pair := range map[string][2]build.Stage{
		"itself":  {zero, build.Scratch()},
		"Run":     {zero.Run("true"), build.Scratch().Run("true")},
		"RunArgs": {zero.RunArgs([]string{"true"}), build.Scratch().RunArgs([]string{"true"})},
		"Env":     {zero.Env("A", "1").Run("env"), build.Scratch().Env("A", "1").Run("env")},
		"Copy":    {zero.Copy(build.Image("busybox"), "/bin", "/bin"), build.Scratch().Copy(build.Image("busybox"), "/bin", "/bin")},
	} {
		if err := pair[0].Err(); err != nil {
			t.Errorf("zero Stage %s: Err() = %v", name, err)
			continue
		}
		if !uSameDef(uMarshal(t, pair[0]).def, uMarshal(t, pair[1]).def) {
			t.Errorf("zero Stage %s differs from Scratch() %s", name, name)
		}
	}
	if w := zero.Warnings(); w != nil {
		t.Errorf("zero Stage has warnings %q", w)
	}
}

func TestUnitErrorsPropagate(t *testing.T) {
	bad := build.Image("Bad:Ref")
	for name, s := range map[string]build.Stage{
		"step on it":   bad.Run("true"),
		"copy from it": build.Scratch().Copy(bad, "/a", "/b"),
		"mount it":     build.Image("alpine").Run("ls /m", mounts.Bind("/m", bad)),
		"settings":     bad.Env("A", "1").Dir("/x").User("u").Label("k", "v"),
		"With":         build.Scratch().With(func(build.Stage) build.Stage { return bad }),
	} {
		t.Run(name, func(t *testing.T) {
			err := s.Err()
			if err == nil || !strings.Contains(err.Error(), `Image("Bad:Ref")`) {
				t.Errorf("Err() = %v, want the error of Image(\"Bad:Ref\")", err)
			}
			if _, merr := s.Marshal(context.Background(), "linux/amd64"); merr == nil || merr.Error() != err.Error() {
				t.Errorf("Marshal error = %v, want %v", merr, err)
			}
		})
	}
}

func TestUnitErrReportsEveryMistake(t *testing.T) {
	for name, s := range map[string]build.Stage{
		"Env":  build.Image("Bad").Env("A=B", "x"),
		"Run":  build.Image("Bad").Run(""),
		"Dir":  build.Image("Bad").Dir(""),
		"User": build.Image("Bad").User(""),
		"Copy": build.Image("Bad").Copy(build.Scratch(), "", ""),
	} {
		if err := s.Err(); err == nil || !strings.Contains(err.Error(), `Image("Bad")`) {
			t.Errorf("%s: Err() = %v, want it to report the earlier mistake in Image(\"Bad\") too", name, err)
		}
	}
}

func TestUnitMarshalPlatform(t *testing.T) {
	g := uMarshalFor(t, build.Image("alpine").Run("uname -m"), "linux/arm64/v8")
	for _, op := range g.ops[:len(g.ops)-1] {
		if p := op.Platform; p.GetArchitecture() != "arm64" {
			t.Errorf("op %v has platform %v, want arm64", op, p)
		}
	}
}

// uPlatformEnv is a step option that depends on its step's platform, as a
// cache preset does: it sets $UNIT_PLATFORM to the platform it is given.
type uPlatformEnv struct{ platform string }

var _ mounts.StepOption = uPlatformEnv{}

func (e uPlatformEnv) SetRunOption(ei *llb.ExecInfo) {
	v := e.platform
	if v == "" {
		v = "not given"
	}
	llb.AddEnv("UNIT_PLATFORM", v).SetRunOption(ei)
}

func (uPlatformEnv) Validate() error            { return nil }
func (uPlatformEnv) Mounts() []mounts.Mount     { return nil }
func (uPlatformEnv) Warnings([]string) []string { return nil }

func (uPlatformEnv) ForStep(s mounts.Step) mounts.StepOption {
	return uPlatformEnv{platforms.Format(s.Platform)}
}

// uPlatformOf returns the $UNIT_PLATFORM of an exec op.
func uPlatformOf(op *pb.Op) string {
	for _, kv := range op.GetExec().GetMeta().GetEnv() {
		if v, ok := strings.CutPrefix(kv, "UNIT_PLATFORM="); ok {
			return v
		}
	}
	return ""
}

func TestUnitRunOptionsSeeTheStepPlatform(t *testing.T) {
	for _, tc := range []struct {
		name      string
		stage     build.Stage
		marshalOn string
		want      string
	}{
		{"the solve's", build.Image("alpine").Run("make", uPlatformEnv{}), "linux/arm64", "linux/arm64"},
		{"Stage.Platform", build.Image("alpine").Platform("linux/arm/v7").Run("make", uPlatformEnv{}), "linux/amd64", "linux/arm/v7"},
		{"Image's Platform", build.Image("alpine", build.Platform("linux/arm64")).Run("make", uPlatformEnv{}), "linux/amd64", "linux/arm64"},
		{"a stage copied from", build.Scratch().Copy(build.Image("alpine").Run("make", uPlatformEnv{}), "/a", "/a"), "linux/arm64", "linux/arm64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op := uMarshalFor(t, tc.stage, tc.marshalOn).exec(t, "make")
			if got := uPlatformOf(op); got != tc.want {
				t.Errorf("the option was given %q, want %q", got, tc.want)
			}
			if got := platforms.Format(platforms.Normalize(ocispecs.Platform{
				OS: op.Platform.GetOS(), Architecture: op.Platform.GetArchitecture(), Variant: op.Platform.GetVariant(),
			})); got != tc.want {
				t.Errorf("the step runs on %q, want %q", got, tc.want)
			}
		})
	}
}

func TestUnitMountedStageIsPartOfTheGraph(t *testing.T) {
	inner := build.Image("alpine").Run("make", uPlatformEnv{})
	outer := build.Image("alpine").Copy(inner, "/a", "/a").Run("ls /m", mounts.Bind("/m", inner))
	g := uMarshalFor(t, outer, "linux/arm64")
	var makes []string
	for _, op := range g.ops {
		if args := op.GetExec().GetMeta().GetArgs(); len(args) > 0 && args[len(args)-1] == "make" {
			makes = append(makes, uPlatformOf(op))
		}
	}
	if len(makes) != 1 || makes[0] != "linux/arm64" {
		t.Errorf("the inner step appears with platforms %q, want once with linux/arm64", makes)
	}
}
