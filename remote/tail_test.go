package remote

import "testing"

// What buildkitd printed when its trace socket was taken: the message
// stays, the stack frames go.
func TestTailLeavesOutStackFrames(t *testing.T) {
	var b tailBuffer
	b.max = 1 << 10
	b.Write([]byte(`time="..." level=info msg="auto snapshotter: using overlayfs"
buildkitd: failed to create unix socket on /run/buildkit/otel-grpc.sock: listen unix /run/buildkit/otel-grpc.sock: bind: address already in use
creating trace controller listener
main.runTraceController
	/root/go/pkg/mod/github.com/moby/buildkit@v0.33.1/cmd/buildkitd/main.go:1099
github.com/urfave/cli/v3.(*Command).Run
	/root/go/pkg/mod/github.com/urfave/cli/v3@v3.9.0/command_run.go:93
runtime.goexit
	/usr/local/go/src/runtime/asm_amd64.s:1771
`))
	want := `buildkitd: failed to create unix socket on /run/buildkit/otel-grpc.sock: listen unix /run/buildkit/otel-grpc.sock: bind: address already in use
creating trace controller listener`
	if got := b.Tail(2); got != want {
		t.Errorf("Tail(2) =\n%s\nwant\n%s", got, want)
	}
	if got := b.Tail(20); got != `time="..." level=info msg="auto snapshotter: using overlayfs"`+"\n"+want {
		t.Errorf("Tail(20) =\n%s", got)
	}
}
