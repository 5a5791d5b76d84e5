package build_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/mounts"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
)

// uOps decodes the operations of a definition; examples use it to show
// what a builder would be asked to do.
func uOps(def *llb.Definition) []*pb.Op {
	var ops []*pb.Op
	for _, dt := range def.Def {
		var op pb.Op
		if err := op.UnmarshalVT(dt); err != nil {
			panic(err)
		}
		ops = append(ops, &op)
	}
	return ops
}

func ExampleImage() {
	def, err := build.Image("debian:bookworm").Marshal(context.Background(), "linux/amd64")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, op := range uOps(def) {
		if src := op.GetSource(); src != nil {
			fmt.Println(src.Identifier, "for", op.Platform.OS+"/"+op.Platform.Architecture)
		}
	}

	// A malformed reference is reported by Err, Marshal and Solve, before
	// any builder is contacted.
	fmt.Println(build.Image("Debian:Bookworm").Err())
	// Output:
	// docker-image://docker.io/library/debian:bookworm for linux/amd64
	// build: Image("Debian:Bookworm"): invalid reference format: repository name (library/Debian) must be lowercase (want a reference such as debian:bookworm or host:port/repo:tag)
}

func ExampleStage_Run() {
	s := build.Image("golang:1.23").
		Env("CGO_ENABLED", "0").
		Dir("/src").
		Run("go build -o /out/app ./...",
			mounts.Cache("/root/.cache/go-build", mounts.ID("go-build"), mounts.Sharing(mounts.Locked)),
			mounts.Bind("/src", build.Local("src")),
		)
	def, err := s.Marshal(context.Background(), "linux/amd64")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, op := range uOps(def) {
		ex := op.GetExec()
		if ex == nil {
			continue
		}
		fmt.Printf("args: %q\n", ex.Meta.Args)
		fmt.Printf("env: %q, cwd: %s\n", ex.Meta.Env, ex.Meta.Cwd)
		for _, m := range ex.Mounts {
			switch m.MountType {
			case pb.MountType_CACHE:
				fmt.Printf("mount %s: cache id=%s sharing=%s\n", m.Dest, m.CacheOpt.ID, m.CacheOpt.Sharing)
			case pb.MountType_BIND:
				fmt.Printf("mount %s: bind of input %d, readonly=%t\n", m.Dest, m.Input, m.Readonly)
			}
		}
	}

	// Mistakes in mounts are reported with the step they belong to.
	fmt.Println(build.Image("golang:1.23").Run("go build ./...", mounts.Cache("root/.cache")).Err())
	// Output:
	// args: ["/bin/sh" "-c" "go build -o /out/app ./..."]
	// env: ["CGO_ENABLED=0"], cwd: /src
	// mount /: bind of input 0, readonly=false
	// mount /root/.cache/go-build: cache id=go-build sharing=LOCKED
	// mount /src: bind of input 1, readonly=true
	// build: Run("go build ./..."): mounts: cache mount "root/.cache": target must be an absolute path (did you mean "/root/.cache"?)
}

func ExampleStage_Copy() {
	app := build.Image("golang:1.23").Run("go build -o /out/app ./...")
	s := build.Image("gcr.io/distroless/static-debian12").
		Copy(app, "/out/app", "/usr/local/bin/app", build.Chown(65532, 65532), build.Chmod(0o555))
	def, err := s.Marshal(context.Background(), "linux/amd64")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, op := range uOps(def) {
		for _, a := range op.GetFile().GetActions() {
			if c := a.GetCopy(); c != nil {
				fmt.Printf("copy %s to %s\n", c.Src, c.Dest)
				fmt.Printf("owner %d:%d, mode %#o\n", c.Owner.User.GetByID(), c.Owner.Group.GetByID(), c.Mode)
				fmt.Printf("wildcards %t, creates parents %t\n", c.AllowWildcard, c.CreateDestPath)
			}
		}
	}

	fmt.Println(build.Scratch().Copy(app, "/out/app", "/app", build.Chmod(os.ModeDir|0o755)).Err())
	// Output:
	// copy /out/app to /usr/local/bin/app
	// owner 65532:65532, mode 0555
	// wildcards true, creates parents true
	// build: Copy("/out/app", "/app"): Chmod(020000000755): want permission bits within 0o7777
}

func ExampleFrom() {
	ctx := context.Background()
	// A state written with raw llb...
	st := llb.Image("docker.io/library/alpine:3.20").Run(llb.Shlex("apk add git")).Root()

	// ...comes back unchanged from a Stage,
	want, _ := st.Marshal(ctx, llb.LinuxAmd64)
	got, _ := build.From(st).State().Marshal(ctx, llb.LinuxAmd64)
	fmt.Println("same definition:", slices.EqualFunc(got.Def, want.Def, bytes.Equal))

	// and takes Larder's steps, whose result is again a raw llb.State.
	next := build.From(st).Env("GIT_TERMINAL_PROMPT", "0").Run("git --version").State()
	def, err := next.Run(llb.Shlex("git config --global init.defaultBranch main")).Root().Marshal(ctx, llb.LinuxAmd64)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, op := range uOps(def) {
		if ex := op.GetExec(); ex != nil {
			fmt.Printf("%q\n", ex.Meta.Args)
		}
	}
	// Output:
	// same definition: true
	// ["apk" "add" "git"]
	// ["/bin/sh" "-c" "git --version"]
	// ["git" "config" "--global" "init.defaultBranch" "main"]
}

func ExampleLocal() {
	s := build.Local("src", build.Include("*.go", "go.mod", "go.sum"), build.Exclude("testdata"))
	def, err := s.Marshal(context.Background(), "linux/amd64")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, op := range uOps(def) {
		if src := op.GetSource(); src != nil {
			fmt.Println(src.Identifier)
			fmt.Println("include", src.Attrs[pb.AttrIncludePatterns])
			fmt.Println("exclude", src.Attrs[pb.AttrExcludePatterns])
		}
	}

	fmt.Println(build.Local("my/src").Err())
	fmt.Println(build.Local("src", build.Platform("linux/arm64")).Err())
	// Output:
	// local://src
	// include ["*.go","go.mod","go.sum"]
	// exclude ["testdata"]
	// build: Local("my/src"): name may hold only letters, digits, '-', '_' and '.', not '/'
	// build: Local("src"): Platform does not apply to local sources (it applies to image)
}

func ExampleReport_String() {
	start := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	r := &build.Report{
		Builders:  []string{"buildkitd-0"},
		Platforms: []string{"linux/amd64"},
		Steps: []build.Step{
			{Name: "[1/4] docker-image://docker.io/library/golang:1.23", Kind: build.SourceStep, Cached: true},
			{Name: "[2/4] /bin/sh -c go mod download", Kind: build.ExecStep, Cached: true},
			{Name: "[3/4] /bin/sh -c go build -o /out/app ./...", Kind: build.ExecStep, Started: start, Completed: start.Add(12345 * time.Millisecond)},
			{Name: "[4/4] /bin/sh -c go test ./...", Kind: build.ExecStep, Started: start.Add(13 * time.Second), Completed: start.Add(14 * time.Second), Error: "exit code: 1"},
		},
		Warnings: []string{`Run("pip install --no-cache-dir x"): --no-cache-dir defeats the pip cache`},
		Duration: 15*time.Second + 678*time.Millisecond + 9*time.Microsecond,
	}
	fmt.Print(r)
	if s, ok := r.Find("go build"); ok {
		fmt.Println("go build took", s.Duration())
	}
	// Output:
	// solve on buildkitd-0 for linux/amd64: 1 cached, 2 ran, 15.678s
	//   cached         [1/4] docker-image://docker.io/library/golang:1.23
	//   cached         [2/4] /bin/sh -c go mod download
	//   ran   12.345s  [3/4] /bin/sh -c go build -o /out/app ./...
	//   failed         [4/4] /bin/sh -c go test ./...
	//   warning: Run("pip install --no-cache-dir x"): --no-cache-dir defeats the pip cache
	// go build took 12.345s
}

func ExampleStepError() {
	var err error = &build.StepError{
		Step:     "[2/2] /bin/sh -c go test ./...",
		Args:     []string{"/bin/sh", "-c", "go test ./..."},
		ExitCode: 1,
		Output:   []string{"--- FAIL: TestParse (0.00s)", "FAIL", "FAIL example.com/app 0.012s"},
		Err:      errors.New(`process "/bin/sh -c go test ./..." did not complete successfully: exit code: 1`),
	}
	fmt.Println(err)

	// Callers find the step through their own wrapping.
	var se *build.StepError
	if errors.As(fmt.Errorf("ci: %w", err), &se) {
		fmt.Println("exit code:", se.ExitCode)
	}

	// Without output, the message shows BuildKit's error.
	fmt.Println(&build.StepError{
		Args:     []string{"/bin/sh", "-c", "sleep 600"},
		ExitCode: -1,
		Err:      errors.New("context canceled"),
	})
	// Output:
	// build: step "/bin/sh -c go test ./..." failed with exit code 1; last output:
	//   --- FAIL: TestParse (0.00s)
	//   FAIL
	//   FAIL example.com/app 0.012s
	// exit code: 1
	// build: step "/bin/sh -c sleep 600" failed: context canceled
}
