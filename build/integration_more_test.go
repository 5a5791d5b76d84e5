package build_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh/agent"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/internal/testenv"
	"github.com/larder-build/larder/mounts"
)

func TestTmpfsMount(t *testing.T) {
	env, bb := setup(t)
	s := build.Image(bb).Run(
		"grep ' /scratch ' /proc/mounts | cut -d' ' -f3,4 > /mount; echo x > /scratch/file # "+nonce(),
		mounts.Tmpfs("/scratch", mounts.Size(16<<20)))
	dir, _ := solveDir(t, env, s)
	got := testenv.ReadFile(t, dir, "mount")
	if !strings.HasPrefix(got, "tmpfs ") || !strings.Contains(got, "size=16384k") {
		t.Errorf("/scratch is mounted as %q, want tmpfs with size=16384k", got)
	}
	if matches, _ := filepath.Glob(filepath.Join(dir, "scratch", "*")); len(matches) > 0 {
		t.Errorf("the tmpfs contents are in the image: %v", matches)
	}
}

// An SSH agent served by the test is forwarded to the step's socket.
func TestSSHAgentForwarding(t *testing.T) {
	env, bb := setup(t)
	keyring := agent.NewKeyring()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	if err := keyring.Add(agent.AddedKey{PrivateKey: priv, Comment: "larder-test"}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); agent.ServeAgent(keyring, c) }()
		}
	}()
	s := build.Image(bb).Run(`test -S "$SSH_AUTH_SOCK" && echo "$SSH_AUTH_SOCK" > /sock # `+nonce(),
		mounts.SSH(mounts.Required()))
	dir, _ := solveDir(t, env, s, build.WithSSH("default", sock))
	if got := testenv.ReadFile(t, dir, "sock"); got != "/run/buildkit/ssh_agent.0\n" {
		t.Errorf("SSH_AUTH_SOCK = %q", got)
	}
}

func TestHTTPSourceWithChecksum(t *testing.T) {
	env, bb := setup(t)
	body := []byte("payload " + nonce() + "\n")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
	defer srv.Close()
	sum := fmt.Sprintf("sha256:%x", sha256.Sum256(body))
	file := build.HTTP(srv.URL+"/files/payload.txt", build.Checksum(sum), build.Filename("p.txt"))
	dir, _ := solveDir(t, env, build.Image(bb).Copy(file, "p.txt", "/got.txt"))
	if got := testenv.ReadFile(t, dir, "got.txt"); got != string(body) {
		t.Errorf("downloaded %q, want %q", got, body)
	}
	bad := build.HTTP(srv.URL+"/files/payload.txt", build.Checksum("sha256:"+strings.Repeat("0", 64)))
	if _, err := build.Solve(ctxT(t), env.Builder, build.Image(bb).Copy(bad, "payload.txt", "/x")); err == nil || !strings.Contains(err.Error(), "digest mismatch") {
		t.Errorf("a wrong checksum gave %v, want a digest mismatch", err)
	}
}
