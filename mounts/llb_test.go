package mounts_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"testing"

	"github.com/larder-build/larder/mounts"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
)

// graph is a marshalled step: its ExecOp and every op by digest.
type graph struct {
	op   *pb.Op
	exec *pb.ExecOp
	ops  map[string]*pb.Op
	def  *llb.Definition
}

func step(ms ...llb.RunOption) llb.State {
	opts := append([]llb.RunOption{llb.Shlex("true")}, ms...)
	return llb.Image("docker.io/library/alpine:3.20").Run(opts...).Root()
}

func marshal(t *testing.T, ms ...llb.RunOption) graph {
	t.Helper()
	// The local unique id is pinned, as a build does, so that two
	// marshallings of the same graph are byte-identical.
	def, err := step(ms...).Marshal(context.Background(), llb.LinuxAmd64, llb.LocalUniqueID("larder-test"))
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	g := graph{ops: map[string]*pb.Op{}, def: def}
	for _, dt := range def.Def {
		var op pb.Op
		if err := op.UnmarshalVT(dt); err != nil {
			t.Fatalf("UnmarshalVT: %v", err)
		}
		sum := sha256.Sum256(dt)
		g.ops["sha256:"+hex.EncodeToString(sum[:])] = &op
		if e := op.GetExec(); e != nil {
			if g.exec != nil {
				t.Fatalf("more than one ExecOp")
			}
			g.op, g.exec = &op, e
		}
	}
	if g.exec == nil {
		t.Fatalf("no ExecOp in the definition")
	}
	return g
}

// mount returns the mount at dest.
func (g graph) mount(t *testing.T, dest string) *pb.Mount {
	t.Helper()
	for _, m := range g.exec.Mounts {
		if m.Dest == dest {
			return m
		}
	}
	t.Fatalf("no mount at %s in %v", dest, g.exec.Mounts)
	return nil
}

// input returns the op a mount takes its contents from, or nil for none.
func (g graph) input(t *testing.T, m *pb.Mount) *pb.Op {
	t.Helper()
	if m.Input == int64(pb.Empty) {
		return nil
	}
	op, ok := g.ops[g.op.Inputs[m.Input].Digest]
	if !ok {
		t.Fatalf("input %d of the step is not in the definition", m.Input)
	}
	return op
}

func TestCacheMountLLB(t *testing.T) {
	tests := []struct {
		name     string
		mount    mounts.Mount
		id       string
		sharing  pb.CacheSharingOpt
		readonly bool
	}{
		{"defaults", mounts.Cache("/root/.cache/go-build"), "/root/.cache/go-build", pb.CacheSharingOpt_SHARED, false},
		{"id and locked", mounts.Cache("/var/cache/apt", mounts.ID("apt"), mounts.Sharing(mounts.Locked)), "apt", pb.CacheSharingOpt_LOCKED, false},
		{"private", mounts.Cache("/tmp/c", mounts.Sharing(mounts.Private)), "/tmp/c", pb.CacheSharingOpt_PRIVATE, false},
		{"unclean target", mounts.Cache("/root//.npm/"), "/root/.npm", pb.CacheSharingOpt_SHARED, false},
		{"read-only", mounts.Cache("/c", mounts.ReadOnly()), "/c", pb.CacheSharingOpt_SHARED, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := marshal(t, tt.mount)
			m := g.mount(t, tt.mount.Target())
			if m.MountType != pb.MountType_CACHE {
				t.Errorf("MountType = %v, want CACHE", m.MountType)
			}
			if m.CacheOpt.GetID() != tt.id || m.CacheOpt.GetSharing() != tt.sharing {
				t.Errorf("CacheOpt = %v, want id %q sharing %v", m.CacheOpt, tt.id, tt.sharing)
			}
			if m.Readonly != tt.readonly {
				t.Errorf("Readonly = %v, want %v", m.Readonly, tt.readonly)
			}
			if m.Input != int64(pb.Empty) || m.Selector != "" {
				t.Errorf("a plain cache mount has input %d selector %q, want none", m.Input, m.Selector)
			}
			if m.Output != int64(pb.SkipOutput) {
				t.Errorf("Output = %d, want SkipOutput", m.Output)
			}
		})
	}
}

func TestCacheOwnerModeLLB(t *testing.T) {
	tests := []struct {
		name     string
		opts     []mounts.CacheOption
		uid, gid uint32
		mode     int32
	}{
		{"owner", []mounts.CacheOption{mounts.Owner(1000, 1001)}, 1000, 1001, 0o755},
		{"mode", []mounts.CacheOption{mounts.Mode(0o700)}, 0, 0, 0o700},
		{"both", []mounts.CacheOption{mounts.Owner(33, 33), mounts.Mode(0o770)}, 33, 33, 0o770},
		{"root owner", []mounts.CacheOption{mounts.Owner(0, 0)}, 0, 0, 0o755},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := marshal(t, mounts.Cache("/home/app/.cache", tt.opts...))
			m := g.mount(t, "/home/app/.cache")
			if m.MountType != pb.MountType_CACHE || m.CacheOpt.GetID() != "/home/app/.cache" {
				t.Errorf("mount = %v, want the cache /home/app/.cache", m)
			}
			if m.Selector != "/cache" {
				t.Errorf("Selector = %q, want /cache", m.Selector)
			}
			src := g.input(t, m)
			if src == nil || src.GetFile() == nil || len(src.GetFile().Actions) != 1 {
				t.Fatalf("source = %v, want a FileOp with one action", src)
			}
			a := src.GetFile().Actions[0]
			mk := a.GetMkdir()
			if mk == nil {
				t.Fatalf("action = %v, want mkdir", a)
			}
			if mk.Path != "/cache" || mk.Mode != tt.mode || mk.MakeParents {
				t.Errorf("mkdir = %v, want /cache mode %#o", mk, tt.mode)
			}
			if u, gr := mk.Owner.GetUser().GetByID(), mk.Owner.GetGroup().GetByID(); u != tt.uid || gr != tt.gid {
				t.Errorf("owner = %d:%d, want %d:%d", u, gr, tt.uid, tt.gid)
			}
			if a.Input != int64(pb.Empty) || len(src.Inputs) != 0 {
				t.Errorf("mkdir runs on input %d with %d inputs, want scratch", a.Input, len(src.Inputs))
			}
		})
	}
}

func TestCacheSeedLLB(t *testing.T) {
	seed := mounts.FromState(llb.Image("docker.io/library/golang:1.26"))
	g := marshal(t, mounts.Cache("/go/pkg/mod", mounts.ID("gomod"), mounts.SeedFrom(seed, "go/pkg/mod")))
	m := g.mount(t, "/go/pkg/mod")
	if m.CacheOpt.GetID() != "gomod" || m.Selector != "/go/pkg/mod" {
		t.Errorf("mount = %v, want cache gomod with selector /go/pkg/mod", m)
	}
	src := g.input(t, m)
	if got := src.GetSource().GetIdentifier(); got != "docker-image://docker.io/library/golang:1.26" {
		t.Errorf("seed = %q, want the golang image", got)
	}
}

func TestBindLLB(t *testing.T) {
	builder := mounts.FromState(llb.Image("docker.io/library/golang:1.26"))
	tests := []struct {
		name     string
		mount    mounts.Mount
		selector string
		readonly bool
		source   string
	}{
		{"defaults", mounts.Bind("/src", mounts.FromState(llb.Local("context"))), "", true, "local://context"},
		{"source path", mounts.Bind("/out", builder, mounts.SourcePath("/usr/local/go/bin")), "/usr/local/go/bin", true, "docker-image://docker.io/library/golang:1.26"},
		{"relative source path", mounts.Bind("/out", builder, mounts.SourcePath("usr/local")), "/usr/local", true, "docker-image://docker.io/library/golang:1.26"},
		{"read-write", mounts.Bind("/work", builder, mounts.ReadWrite()), "", false, "docker-image://docker.io/library/golang:1.26"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := marshal(t, tt.mount)
			m := g.mount(t, tt.mount.Target())
			if m.MountType != pb.MountType_BIND || m.Readonly != tt.readonly || m.Selector != tt.selector {
				t.Errorf("mount = %v, want bind readonly=%v selector %q", m, tt.readonly, tt.selector)
			}
			if m.Output != int64(pb.SkipOutput) {
				t.Errorf("Output = %d, want SkipOutput: writes to a bind mount are thrown away", m.Output)
			}
			if got := g.input(t, m).GetSource().GetIdentifier(); got != tt.source {
				t.Errorf("source = %q, want %q", got, tt.source)
			}
		})
	}
}

func TestTmpfsLLB(t *testing.T) {
	for _, size := range []int64{0, 64 << 20} {
		g := marshal(t, mounts.Tmpfs("/tmp", mounts.Size(size)))
		m := g.mount(t, "/tmp")
		if m.MountType != pb.MountType_TMPFS || m.TmpfsOpt.GetSize() != size || m.Input != int64(pb.Empty) {
			t.Errorf("Size(%d): mount = %v, want tmpfs of that size", size, m)
		}
	}
}

func TestSecretFileLLB(t *testing.T) {
	tests := []struct {
		name     string
		mount    mounts.Mount
		dest     string
		uid, gid uint32
		mode     uint32
		optional bool
	}{
		{"defaults", mounts.Secret("npmrc"), "/run/secrets/npmrc", 0, 0, 0o400, true},
		{"path id", mounts.Secret("aws/credentials"), "/run/secrets/credentials", 0, 0, 0o400, true},
		{"all options", mounts.Secret("npmrc", mounts.Target("/home/app/.npmrc"), mounts.Owner(1000, 1000), mounts.Mode(0o440), mounts.Required()),
			"/home/app/.npmrc", 1000, 1000, 0o440, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := marshal(t, tt.mount)
			m := g.mount(t, tt.dest)
			s := m.SecretOpt
			if m.MountType != pb.MountType_SECRET || s == nil {
				t.Fatalf("mount = %v, want a secret", m)
			}
			id := tt.mount.(*mounts.SecretMount).ID()
			if s.ID != id || s.Uid != tt.uid || s.Gid != tt.gid || s.Mode != tt.mode || s.Optional != tt.optional {
				t.Errorf("SecretOpt = %v, want id %q uid %d gid %d mode %#o optional %v", s, id, tt.uid, tt.gid, tt.mode, tt.optional)
			}
			if len(g.exec.Secretenv) != 0 {
				t.Errorf("Secretenv = %v, want none", g.exec.Secretenv)
			}
		})
	}
}

func TestSecretEnvLLB(t *testing.T) {
	g := marshal(t, mounts.Secret("token", mounts.Env("API_TOKEN")), mounts.Secret("other", mounts.Env("OTHER"), mounts.Required()))
	want := []*pb.SecretEnv{{ID: "token", Name: "API_TOKEN", Optional: true}, {ID: "other", Name: "OTHER"}}
	if !slices.EqualFunc(g.exec.Secretenv, want, func(a, b *pb.SecretEnv) bool { return a.EqualVT(b) }) {
		t.Errorf("Secretenv = %v, want %v", g.exec.Secretenv, want)
	}
	for _, m := range g.exec.Mounts {
		if m.MountType == pb.MountType_SECRET {
			t.Errorf("secret exposed as env var also mounted as a file: %v", m)
		}
	}
}

func TestSSHLLB(t *testing.T) {
	g := marshal(t, mounts.SSH(), mounts.SSH(mounts.ID("github"), mounts.Target("/run/gh.sock"), mounts.Owner(1000, 100), mounts.Mode(0o660), mounts.Required()))
	tests := []struct {
		dest     string
		want     *pb.SSHOpt
		optional bool
	}{
		{"/run/buildkit/ssh_agent.0", &pb.SSHOpt{ID: "default", Mode: 0o600, Optional: true}, true},
		{"/run/gh.sock", &pb.SSHOpt{ID: "github", Uid: 1000, Gid: 100, Mode: 0o660}, false},
	}
	for _, tt := range tests {
		m := g.mount(t, tt.dest)
		if m.MountType != pb.MountType_SSH || !m.SSHOpt.EqualVT(tt.want) {
			t.Errorf("mount at %s = %v, want SSHOpt %v", tt.dest, m, tt.want)
		}
	}
	if !slices.Contains(g.exec.Meta.Env, "SSH_AUTH_SOCK=/run/buildkit/ssh_agent.0") {
		t.Errorf("Env = %v, want SSH_AUTH_SOCK for the first SSH mount", g.exec.Meta.Env)
	}
}

func TestDefinitionIsDeterministic(t *testing.T) {
	build := func() []llb.RunOption {
		stages := map[string]mounts.Source{"builder": mounts.FromState(llb.Image("docker.io/library/golang:1.26"))}
		parsed, err := mounts.Parse("type=bind,target=/bin/tool,from=builder,source=/go/bin/tool", mounts.WithStages(stages))
		if err != nil {
			t.Fatal(err)
		}
		return []llb.RunOption{
			mounts.Cache("/root/.cache/go-build", mounts.ID("go-build"), mounts.Sharing(mounts.Locked)),
			mounts.Cache("/home/app/.cache", mounts.Owner(1000, 1000), mounts.Mode(0o700)),
			mounts.Bind("/src", mounts.FromState(llb.Local("context")), mounts.SourcePath("/app")),
			mounts.Tmpfs("/tmp", mounts.Size(1<<30)),
			mounts.Secret("npmrc", mounts.Owner(1000, 1000)),
			mounts.Secret("token", mounts.Env("TOKEN")),
			mounts.SSH(mounts.ID("github")),
			parsed,
		}
	}
	a := marshal(t, build()...)
	b := marshal(t, build()...)
	if len(a.def.Def) != len(b.def.Def) {
		t.Fatalf("definitions have %d and %d ops", len(a.def.Def), len(b.def.Def))
	}
	for i := range a.def.Def {
		if !bytes.Equal(a.def.Def[i], b.def.Def[i]) {
			t.Errorf("op %d differs between two constructions:\n%q\n%q", i, a.def.Def[i], b.def.Def[i])
		}
	}
}

func TestInvalidMountFailsMarshal(t *testing.T) {
	for _, m := range []mounts.Mount{
		mounts.Cache("relative"),
		mounts.Bind("/src", nil),
		mounts.Tmpfs("/tmp", mounts.Size(-1)),
		mounts.Secret(""),
		mounts.SSH(mounts.Mode(0o10000)),
		(*mounts.CacheMount)(nil),
	} {
		_, err := step(m).Marshal(context.Background(), llb.LinuxAmd64)
		var me *mounts.Error
		if !errors.As(err, &me) {
			t.Errorf("%s: Marshal error = %v, want an *mounts.Error", m, err)
		}
		if want := m.Validate(); err == nil || want == nil || err.Error() != want.Error() {
			t.Errorf("%s: Marshal error = %v, want Validate's %v", m, err, want)
		}
	}
}
