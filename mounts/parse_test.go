package mounts_test

import (
	"context"
	"errors"
	"testing"

	"github.com/larder-build/larder/mounts"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
)

func stages() mounts.ParseOption {
	return mounts.WithStages(map[string]mounts.Source{
		"builder": mounts.FromState(llb.Image("docker.io/library/golang:1.26")),
		"deps":    mounts.FromState(llb.Image("docker.io/library/node:22")),
	})
}

func TestParse(t *testing.T) {
	tests := []struct {
		in, str string
	}{
		{"type=cache,target=/root/.cache/go-build", "type=cache,target=/root/.cache/go-build"},
		{"--mount=type=cache,target=/root/.cache,id=go-build,sharing=locked", "type=cache,target=/root/.cache,id=go-build,sharing=locked"},
		{"TYPE=Cache,DST=/var/cache/apt,Sharing=LOCKED", "type=cache,target=/var/cache/apt,sharing=locked"},
		{"type=cache,destination=/c,id=/c,sharing=shared,ro", "type=cache,target=/c,ro"},
		{"type=cache,target=/c,readonly=false", "type=cache,target=/c"},
		{"type=cache,target=/c,rw=false", "type=cache,target=/c,ro"},
		{"type=cache,target=/c,uid=1000", "type=cache,target=/c,uid=1000,gid=0"},
		{"type=cache,target=/c,gid=0010,mode=755", "type=cache,target=/c,uid=0,gid=10,mode=0755"},
		{"type=cache,target=/go/pkg/mod,from=builder,source=go/pkg/mod", "type=cache,target=/go/pkg/mod,from=builder,source=/go/pkg/mod"},
		{"type=cache,target=/c,from=scratch", "type=cache,target=/c,from=scratch"},
		{"target=/src", "type=bind,target=/src"},
		{"type=bind,target=/src,source=.", "type=bind,target=/src"},
		{"type=bind,target=/src,from=builder,src=/go/bin,readwrite", "type=bind,target=/src,from=builder,source=/go/bin,rw"},
		{"type=bind,target=/src,from=alpine:3.20,rw=true", "type=bind,target=/src,from=alpine:3.20,rw"},
		{"type=bind,target=/src,ro=true", "type=bind,target=/src"},
		{`type=bind,"target=/a,b",from=builder`, `type=bind,"target=/a,b",from=builder`},
		{`type=bind,"target=/a ""quoted"""`, `type=bind,"target=/a ""quoted"""`},
		{"type=tmpfs,target=/tmp,size=64m", "type=tmpfs,target=/tmp,size=64m"},
		{"type=tmpfs,target=/tmp,size=1.5g", "type=tmpfs,target=/tmp,size=1536m"},
		{"type=tmpfs,target=/tmp,size=512 MiB", "type=tmpfs,target=/tmp,size=512m"},
		{"type=tmpfs,target=/tmp,size=1000", "type=tmpfs,target=/tmp,size=1000"},
		{"type=tmpfs,target=/tmp,size=0", "type=tmpfs,target=/tmp"},
		{"type=secret,id=npmrc", "type=secret,id=npmrc"},
		{"type=secret,source=npmrc,target=/root/.npmrc,required", "type=secret,id=npmrc,target=/root/.npmrc,required"},
		{"type=secret,target=/run/secrets/token", "type=secret,id=token"},
		{"type=secret,dst=/root/.aws/credentials", "type=secret,id=credentials,target=/root/.aws/credentials"},
		{"type=secret,id=tok,env=TOKEN,required=false", "type=secret,id=tok,env=TOKEN"},
		{"type=secret,id=s,uid=1000,gid=1000,mode=0440,required=true", "type=secret,id=s,required,uid=1000,gid=1000,mode=0440"},
		{"type=secret,id=s,mode=400,uid=0", "type=secret,id=s"},
		{"type=ssh", "type=ssh"},
		{"type=ssh,id=github,required,target=/run/gh.sock,mode=0666", "type=ssh,id=github,target=/run/gh.sock,required,mode=0666"},
		{"type=ssh,target=/run/buildkit/ssh_agent.0,id=default", "type=ssh"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			m, err := mounts.Parse(tt.in, stages())
			if err != nil {
				t.Fatalf("Parse() = %v", err)
			}
			if got := m.String(); got != tt.str {
				t.Errorf("String() = %q, want %q", got, tt.str)
			}
			again, err := mounts.Parse(m.String(), stages())
			if err != nil || again.String() != tt.str {
				t.Errorf("Parse(String()) = %v, %v; want %q", again, err, tt.str)
			}
		})
	}
}

func TestParseSources(t *testing.T) {
	tests := []struct {
		in       string
		source   string
		selector string
	}{
		{"type=bind,target=/src", "local://context", ""},
		{"type=bind,target=/src,from=builder,source=/go/bin", "docker-image://docker.io/library/golang:1.26", "/go/bin"},
		{"type=bind,target=/src,from=alpine:3.20", "docker-image://docker.io/library/alpine:3.20", ""},
		{"type=bind,target=/src,from=registry.example.com:5000/team/tools@sha256:" + sixtyFourHex, "docker-image://registry.example.com:5000/team/tools@sha256:" + sixtyFourHex, ""},
		{"type=cache,target=/c,from=deps,source=/root/.npm", "docker-image://docker.io/library/node:22", "/root/.npm"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			m, err := mounts.Parse(tt.in, stages())
			if err != nil {
				t.Fatal(err)
			}
			g := marshal(t, m)
			pm := g.mount(t, m.Target())
			if got := g.input(t, pm).GetSource().GetIdentifier(); got != tt.source {
				t.Errorf("source = %q, want %q", got, tt.source)
			}
			if pm.Selector != tt.selector {
				t.Errorf("selector = %q, want %q", pm.Selector, tt.selector)
			}
		})
	}
	m, err := mounts.Parse("type=cache,target=/c,from=scratch")
	if err != nil {
		t.Fatal(err)
	}
	if pm := marshal(t, m).mount(t, "/c"); pm.Input != int64(pb.Empty) || pm.MountType != pb.MountType_CACHE {
		t.Errorf("cache from scratch = %v, want an empty cache", pm)
	}
}

const sixtyFourHex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in    string
		field string
		msg   string
	}{
		{"", "", `mounts: no mount given; write key=value fields such as type=cache,target=/root/.cache`},
		{"--mount=", "", `mounts: parsing "--mount=": no mount given; write key=value fields such as type=cache,target=/root/.cache`},
		{`type=cache,target="/a`, "", `mounts: parsing "type=cache,target=\"/a": not comma-separated key=value fields: parse error on line 1, column 19: bare " in non-quoted-field; to quote a field, wrap the whole field in double quotes and double each quote inside it, as in "target=/a,b"`},
		{"type=cache,target=/a\ntype=tmpfs,target=/b", "", `mounts: parsing "type=cache,target=/a\ntype=tmpfs,target=/b": more than one line; give one mount`},
		{"type=cache,,target=/a", "", `mounts: parsing "type=cache,,target=/a": empty field; separate key=value fields with one comma`},
		{"type=cache,tagret=/a", "tagret", `mounts: parsing "type=cache,tagret=/a": unknown key "tagret" (did you mean "target"?)`},
		{"type=cache,target=/a,color=red", "color", `mounts: parsing "type=cache,target=/a,color=red": unknown key "color"; known keys are type, target, dst, destination, id, sharing, uid, gid, mode, from, source, src, readonly, ro, readwrite, rw, size, required, env`},
		{"type=cache,target=/a,dst=/b", "dst", `mounts: parsing "type=cache,target=/a,dst=/b": "target" and "dst" set the same thing; give one of them`},
		{"type=cache,target=/a,id=x,id=y", "id", `mounts: parsing "type=cache,target=/a,id=x,id=y": "id" is given twice; give it once`},
		{"type=bind,target=/a,ro,rw", "rw", `mounts: parsing "type=bind,target=/a,ro,rw": "ro" and "rw" set the same thing; give one of them`},
		{"type=cache,target", "target", `mounts: parsing "type=cache,target": "target" needs a value, as in target=...`},
		{"type=cach,target=/a", "type", `mounts: parsing "type=cach,target=/a": type "cach" is not one of bind, cache, tmpfs, secret, ssh (did you mean "cache"?)`},
		{"type=volume,target=/a", "type", `mounts: parsing "type=volume,target=/a": type "volume" is not one of bind, cache, tmpfs, secret, ssh`},
		{"type=cache,target=/a,size=1m", "size", `mounts: parsing "type=cache,target=/a,size=1m": "size" does not apply to a cache mount; it applies to tmpfs mounts`},
		{"type=tmpfs,target=/a,id=x", "id", `mounts: parsing "type=tmpfs,target=/a,id=x": "id" does not apply to a tmpfs mount; it applies to cache, secret and ssh mounts`},
		{"type=bind,target=/a,required", "required", `mounts: parsing "type=bind,target=/a,required": "required" does not apply to a bind mount; it applies to secret and ssh mounts`},
		{"type=secret,id=a,from=builder", "from", `mounts: parsing "type=secret,id=a,from=builder": "from" does not apply to a secret mount; it applies to bind and cache mounts`},
		{"type=cache,target=/a,sharing=exclusive", "sharing", `mounts: parsing "type=cache,target=/a,sharing=exclusive": sharing "exclusive" is not one of shared, private or locked`},
		{"type=cache,target=/a,uid=me", "uid", `mounts: parsing "type=cache,target=/a,uid=me": uid "me" is not a decimal number from 0 to 4294967295`},
		{"type=cache,target=/a,gid=-1", "gid", `mounts: parsing "type=cache,target=/a,gid=-1": gid "-1" is not a decimal number from 0 to 4294967295`},
		{"type=secret,id=a,mode=0888", "mode", `mounts: parsing "type=secret,id=a,mode=0888": mode "0888" is not an octal number such as 0755`},
		{"type=secret,id=a,mode=17777", "mode", `mounts: parsing "type=secret,id=a,mode=17777": secret mount "a": mode 017777 is outside 0 to 07777`},
		{"type=bind,target=/a,ro=yes", "ro", `mounts: parsing "type=bind,target=/a,ro=yes": ro "yes" is not true or false`},
		{"type=ssh,required=maybe", "required", `mounts: parsing "type=ssh,required=maybe": required "maybe" is not true or false`},
		{"type=tmpfs,target=/tmp,size=64x", "size", `mounts: parsing "type=tmpfs,target=/tmp,size=64x": size "64x" is not a size such as 64m or 1048576`},
		{"type=tmpfs,target=/tmp,size=-1", "size", `mounts: parsing "type=tmpfs,target=/tmp,size=-1": size "-1" is not a size such as 64m or 1048576`},
		{"type=tmpfs,target=/tmp,size=9000000p", "size", `mounts: parsing "type=tmpfs,target=/tmp,size=9000000p": size "9000000p" is not a size such as 64m or 1048576`},
		{"type=cache,id=x", "target", `mounts: parsing "type=cache,id=x": a cache mount needs target=, the absolute path where it appears in the step`},
		{"type=cache,target=node_modules", "target", `mounts: parsing "type=cache,target=node_modules": cache mount "node_modules": target must be an absolute path (did you mean "/node_modules"?)`},
		{"type=cache,target=/a,source=/x", "source", `mounts: parsing "type=cache,target=/a,source=/x": source on a cache mount needs from=, the stage or image to seed the cache from`},
		{"type=cache,target=/a,from=builder,uid=1", "uid", `mounts: parsing "type=cache,target=/a,from=builder,uid=1": cache mount "/a": Owner cannot be combined with SeedFrom: a seeded cache takes its owner from the seed directory; leave out Owner and set the owner of that directory in the seed stage`},
		{"type=bind,target=/a,from=", "from", `mounts: parsing "type=bind,target=/a,from=": from is empty; name a stage or an image, or leave out from`},
		{"type=bind,target=/a,from=Not An Image", "from", `mounts: parsing "type=bind,target=/a,from=Not An Image": from "Not An Image" is neither a stage given to WithStages nor an image reference: invalid reference format: repository name (library/Not An Image) must be lowercase`},
		{"type=bind,target=/a,from=<unnamed>", "from", `mounts: parsing "type=bind,target=/a,from=<unnamed>": from "<unnamed>" is neither a stage given to WithStages nor an image reference: invalid reference format`},
		{"type=bind,target=/a,source=../x", "source", `mounts: parsing "type=bind,target=/a,source=../x": bind mount "/a": source "../x" must not contain "..", which would leave the source (did you mean "/x"?)`},
		{"type=secret", "id", `mounts: parsing "type=secret": a secret mount needs id=, the id under which the build provides the secret`},
		{"type=secret,env=TOKEN", "id", `mounts: parsing "type=secret,env=TOKEN": a secret mount needs id=, the id under which the build provides the secret`},
		{"type=secret,id=a,source=b", "source", `mounts: parsing "type=secret,id=a,source=b": id and source both name the secret; give one of them`},
		{"type=secret,id=a,env=A,target=/a", "env", `mounts: parsing "type=secret,id=a,env=A,target=/a": secret mount "a": a secret goes to a file (Target "/a") or to an environment variable (Env "A"), not both; make two secret mounts`},
		{"type=secret,id=a,env=", "env", `mounts: parsing "type=secret,id=a,env=": secret mount "a": env "" is not a valid environment variable name: use letters, digits and underscores, starting with a letter or underscore`},
		{"type=ssh,id=", "id", `mounts: parsing "type=ssh,id=": ssh mount "": id is empty; leave out ID to use "default"`},
		{"type=ssh,source=key", "source", `mounts: parsing "type=ssh,source=key": "source" does not apply to a ssh mount; it applies to bind, cache and secret mounts`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			m, err := mounts.Parse(tt.in, stages())
			if err == nil {
				t.Fatalf("Parse() = %v, want an error", m)
			}
			if m != nil {
				t.Errorf("Parse() returned a mount with its error")
			}
			if err.Error() != tt.msg {
				t.Errorf("Parse() =\n%s\nwant\n%s", err, tt.msg)
			}
			var me *mounts.Error
			if !errors.As(err, &me) {
				t.Fatalf("%T is not an *mounts.Error", err)
			}
			if me.Field != tt.field || me.Input != tt.in {
				t.Errorf("Field, Input = %q, %q; want %q, %q", me.Field, me.Input, tt.field, tt.in)
			}
		})
	}
}

func TestWithStages(t *testing.T) {
	src := map[string]mounts.Source{"b": mounts.FromState(llb.Image("docker.io/library/busybox:1"))}
	opt := mounts.WithStages(src)
	src["b"] = nil // WithStages keeps its own copy.
	m, err := mounts.Parse("type=bind,target=/b,from=b", opt, mounts.WithStages(map[string]mounts.Source{"c": nil}))
	if err != nil {
		t.Fatal(err)
	}
	if got := marshal(t, m).input(t, marshal(t, m).mount(t, "/b")).GetSource().GetIdentifier(); got != "docker-image://docker.io/library/busybox:1" {
		t.Errorf("source = %q", got)
	}
	_, err = mounts.Parse("type=bind,target=/b,from=c", mounts.WithStages(map[string]mounts.Source{"c": nil}))
	if want := `mounts: parsing "type=bind,target=/b,from=c": stage "c" given to WithStages is nil; map it to the stage to mount, such as FromState(st), or leave it out of WithStages to read from=c as an image`; err == nil || err.Error() != want {
		t.Errorf("Parse() = %v, want %s", err, want)
	}
}

// FuzzParse checks that Parse never panics, and that whatever it accepts
// is usable, marshals, and reads back from its String to the same String.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"type=cache,target=/root/.cache/go-build,id=go-build,sharing=locked",
		"--mount=type=cache,target=/var/cache/apt,sharing=locked",
		"type=cache,target=/root/.npm,uid=1000,gid=1000,mode=0755",
		"type=cache,target=/go/pkg/mod,from=builder,source=/go/pkg/mod,ro",
		"type=bind,target=/src",
		"type=bind,target=/src,from=builder,source=/out,rw",
		"type=bind,target=/etc/ssl,from=alpine:3.20,source=etc/ssl,readonly=true",
		`type=bind,"target=/a,b","from=my ""stage"""`,
		"type=tmpfs,target=/tmp,size=64m",
		"type=tmpfs,dst=/run,size=1.5 GiB",
		"type=secret,id=npmrc,target=/root/.npmrc,uid=1000,mode=0440,required",
		"type=secret,id=aws,env=AWS_SECRET_ACCESS_KEY",
		"type=secret,target=/run/secrets/token",
		"type=ssh",
		"type=ssh,id=github,target=/run/gh.sock,required=true,mode=600",
		"TYPE=CACHE,TARGET=/C,SHARING=PRIVATE",
	} {
		f.Add(s)
	}
	opt := mounts.WithStages(map[string]mounts.Source{
		"builder":    mounts.FromState(llb.Image("docker.io/library/golang:1.26")),
		`my "stage"`: mounts.FromState(llb.Scratch()),
	})
	f.Fuzz(func(t *testing.T, s string) {
		m, err := mounts.Parse(s, opt)
		if err != nil {
			var me *mounts.Error
			if !errors.As(err, &me) {
				t.Fatalf("Parse(%q) error %v is not an *mounts.Error", s, err)
			}
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("Parse(%q) accepted a mount that Validate rejects: %v", s, err)
		}
		str := m.String()
		again, err := mounts.Parse(str, opt)
		if err != nil {
			t.Fatalf("Parse(%q) = %q, which Parse rejects: %v", s, str, err)
		}
		if again.String() != str {
			t.Fatalf("Parse(%q) = %q, which reads back as %q", s, str, again.String())
		}
		st := llb.Image("docker.io/library/alpine:3.20").Run(llb.Shlex("true"), m).Root()
		if _, err := st.Marshal(context.Background(), llb.LinuxAmd64, llb.LocalUniqueID("fuzz")); err != nil {
			t.Fatalf("Parse(%q) = %q, which does not marshal: %v", s, str, err)
		}
	})
}
