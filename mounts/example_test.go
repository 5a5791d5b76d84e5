package mounts_test

import (
	"context"
	"fmt"

	"github.com/larder-build/larder/mounts"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
)

// execOp marshals st and returns its ExecOp.
func execOp(st llb.State) *pb.ExecOp {
	def, err := st.Marshal(context.Background(), llb.LinuxAmd64, llb.LocalUniqueID("example"))
	if err != nil {
		panic(err)
	}
	for _, dt := range def.Def {
		var op pb.Op
		if err := op.UnmarshalVT(dt); err != nil {
			panic(err)
		}
		if e := op.GetExec(); e != nil {
			return e
		}
	}
	return nil
}

func ExampleCache() {
	m := mounts.Cache("/root/.cache/go-build", mounts.ID("go-build"), mounts.Sharing(mounts.Locked))
	fmt.Println(m)

	// Every Mount is an llb.RunOption.
	st := llb.Image("docker.io/library/golang:1.26").
		Run(llb.Shlex("go build ./..."), m).Root()
	for _, pm := range execOp(st).Mounts {
		if pm.MountType == pb.MountType_CACHE {
			fmt.Println(pm.Dest, pm.CacheOpt.ID, pm.CacheOpt.Sharing)
		}
	}
	// Output:
	// type=cache,target=/root/.cache/go-build,id=go-build,sharing=locked
	// /root/.cache/go-build go-build LOCKED
}

func ExampleCache_owner() {
	// The cache starts as a directory owned by uid 1000 with mode 0700.
	m := mounts.Cache("/home/app/.cache", mounts.Owner(1000, 1000), mounts.Mode(0o700))
	fmt.Println(m)
	// Output:
	// type=cache,target=/home/app/.cache,uid=1000,gid=1000,mode=0700
}

func ExampleBind() {
	builder := mounts.Named("builder", mounts.FromState(llb.Image("docker.io/library/golang:1.26")))
	m := mounts.Bind("/usr/local/bin/tool", builder, mounts.SourcePath("/go/bin/tool"))
	fmt.Println(m)

	st := llb.Image("docker.io/library/alpine:3.20").Run(llb.Shlex("tool --version"), m).Root()
	for _, pm := range execOp(st).Mounts {
		if pm.Dest == m.Target() {
			fmt.Println(pm.Dest, "readonly:", pm.Readonly, "selector:", pm.Selector)
		}
	}
	// Output:
	// type=bind,target=/usr/local/bin/tool,from=builder,source=/go/bin/tool
	// /usr/local/bin/tool readonly: true selector: /go/bin/tool
}

func ExampleSecret() {
	file := mounts.Secret("npmrc", mounts.Target("/root/.npmrc"), mounts.Required())
	env := mounts.Secret("token", mounts.Env("API_TOKEN"))
	fmt.Println(file)
	fmt.Println(env)

	e := execOp(llb.Image("docker.io/library/node:22").Run(llb.Shlex("npm ci"), file, env).Root())
	for _, pm := range e.Mounts {
		if pm.MountType == pb.MountType_SECRET {
			fmt.Printf("file %s from %q, mode %#o, optional %v\n", pm.Dest, pm.SecretOpt.ID, pm.SecretOpt.Mode, pm.SecretOpt.Optional)
		}
	}
	for _, s := range e.Secretenv {
		fmt.Printf("env %s from %q, optional %v\n", s.Name, s.ID, s.Optional)
	}
	// Output:
	// type=secret,id=npmrc,target=/root/.npmrc,required
	// type=secret,id=token,env=API_TOKEN
	// file /root/.npmrc from "npmrc", mode 0400, optional false
	// env API_TOKEN from "token", optional true
}

func ExampleParse() {
	stages := mounts.WithStages(map[string]mounts.Source{
		"deps": mounts.FromState(llb.Image("docker.io/library/node:22")),
	})
	for _, s := range []string{
		"--mount=type=cache,target=/var/cache/apt,sharing=locked",
		"type=bind,target=/app/node_modules,from=deps,source=/app/node_modules",
		"type=tmpfs,dst=/tmp,size=1.5g",
		"type=cache,target=node_modules",
	} {
		m, err := mounts.Parse(s, stages)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(m)
	}
	// Output:
	// type=cache,target=/var/cache/apt,sharing=locked
	// type=bind,target=/app/node_modules,from=deps,source=/app/node_modules
	// type=tmpfs,target=/tmp,size=1536m
	// mounts: parsing "type=cache,target=node_modules": cache mount "node_modules": target must be an absolute path (did you mean "/node_modules"?)
}

func ExampleValidate() {
	err := mounts.Validate(
		mounts.Cache("/root/.cache"),
		mounts.Tmpfs("/root/.cache/"),
	)
	fmt.Println(err)
	// Output:
	// mounts: tmpfs mount "/root/.cache": target "/root/.cache" is also the target of cache mount "/root/.cache" (mounts 1 and 2); give each mount its own target
}
