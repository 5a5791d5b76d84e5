package build_test

import (
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/cache"
	"github.com/larder-build/larder/mounts"
	"github.com/larder-build/larder/remote"
)

// authRegistry is an in-memory registry that answers only requests with
// the password, and records who asked with credentials.
type authRegistry struct {
	addr string

	mu     sync.Mutex
	asked  []string // "METHOD path user-agent" of requests that carried credentials
	denied int      // requests without good credentials
}

const authUser, authPassword = "larder", "s3cret-pa55"

func startAuthRegistry(t *testing.T) *authRegistry {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &authRegistry{addr: ln.Addr().String()}
	inner := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		u, p, ok := req.BasicAuth()
		r.mu.Lock()
		if ok && u == authUser && p == authPassword {
			r.asked = append(r.asked, req.Method+" "+req.URL.Path+" "+req.UserAgent())
			r.mu.Unlock()
			inner.ServeHTTP(w, req)
			return
		}
		if req.Header.Get("Authorization") != "" {
			r.asked = append(r.asked, "WRONG "+req.Method+" "+req.URL.Path+" "+req.UserAgent())
		}
		r.denied++
		r.mu.Unlock()
		w.Header().Set("WWW-Authenticate", `Basic realm="larder-test"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return r
}

// credentialed returns the requests that carried credentials and whose
// user agent contains ua.
func (r *authRegistry) credentialed(ua string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, a := range r.asked {
		if strings.Contains(a, ua) {
			out = append(out, a)
		}
	}
	return out
}

// recordingKeychain gives the test registry's password, and records every
// registry it was asked about.
type recordingKeychain struct {
	host string

	mu    sync.Mutex
	asked []string
}

func (k *recordingKeychain) Resolve(res authn.Resource) (authn.Authenticator, error) {
	k.mu.Lock()
	k.asked = append(k.asked, res.RegistryStr())
	k.mu.Unlock()
	if res.RegistryStr() == k.host {
		return &authn.Basic{Username: authUser, Password: authPassword}, nil
	}
	return authn.Anonymous, nil
}

func (k *recordingKeychain) askedFor(host string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, h := range k.asked {
		if h == host {
			return true
		}
	}
	return false
}

// One keychain serves the builder's pushes and Larder's own registry
// calls: the index of a multi-platform push and a registry mount store.
func TestWithKeychainServesEveryRegistryCall(t *testing.T) {
	env, bb := setup(t)
	reg := startAuthRegistry(t)
	b, err := env.NewBuilder(ctxT(t), remote.InsecureRegistry(reg.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	k := &recordingKeychain{host: reg.addr}

	// The index Larder pushes itself, after the builder pushed each
	// platform by digest.
	_, err = build.Solve(ctxT(t), b, build.Image(bb),
		build.Platforms("linux/amd64", "linux/arm64"),
		build.Push(reg.addr+"/app:multi"),
		build.WithKeychain(k))
	if err != nil {
		t.Fatalf("multi-platform push with the keychain: %v", err)
	}
	if got := reg.credentialed("go-containerregistry"); !containsPrefix(got, "PUT /v2/app/manifests/multi") {
		t.Errorf("Larder's index push did not use the keychain; its credentialed requests: %q", got)
	}
	if got := reg.credentialed("buildkit"); len(got) == 0 {
		t.Errorf("the builder's push did not use the keychain")
	}

	// A registry store read and written with the keychain.
	n := nonce()
	step := build.Image(bb).Run("echo "+n+" > /c/f", mounts.Cache("/c", mounts.ID("auth-"+n)))
	res, err := build.Solve(ctxT(t), b, step,
		build.PersistCacheMounts(cache.RegistryStore(reg.addr+"/caches"), build.Strict()),
		build.WithKeychain(k), build.LocalDir(t.TempDir()))
	if err != nil {
		t.Fatalf("persisting to a registry that needs the password: %v", err)
	}
	if m := onlyMount(t, res); !m.Exported {
		t.Errorf("nothing saved with the keychain: %+v", m)
	}
	if !k.askedFor(reg.addr) {
		t.Errorf("the keychain was never asked for %s", reg.addr)
	}
}

// WithoutRegistryAuth reaches Larder's own registry calls: a registry that
// requires a password gets none, from Larder or from the builder, though
// the Docker configuration (the default keychain) holds it, and a keychain
// given is never asked.
func TestWithoutRegistryAuthReachesLardersOwnCalls(t *testing.T) {
	env, bb := setup(t)
	reg := startAuthRegistry(t)
	b, err := env.NewBuilder(ctxT(t), remote.InsecureRegistry(reg.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cfg := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte(authUser + ":" + authPassword))
	if err := os.WriteFile(filepath.Join(cfg, "config.json"), []byte(`{"auths":{"`+reg.addr+`":{"auth":"`+auth+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", cfg)
	store := cache.RegistryStore(reg.addr + "/caches")
	n := nonce()
	// Each solve runs a step of its own, so that it needs the cache.
	step := func(i int) build.Stage {
		return build.Image(bb).Run(fmt.Sprintf("echo %d > /c/f # %s", i, n), mounts.Cache("/c", mounts.ID("noauth-"+n)))
	}

	k := &recordingKeychain{host: reg.addr}
	res, err := build.Solve(ctxT(t), b, step(1), build.PersistCacheMounts(store),
		build.WithKeychain(k), build.WithoutRegistryAuth(), build.LocalDir(t.TempDir()))
	if err != nil {
		t.Fatalf("a store that can't be reached must not fail the build without Strict: %v", err)
	}
	m := onlyMount(t, res)
	if m.Restored || m.Exported {
		t.Errorf("a store that needs a password was used without one: %+v", m)
	}
	if len(m.Notes) == 0 || !strings.Contains(strings.ToLower(strings.Join(m.Notes, " ")), "unauthorized") {
		t.Errorf("the report does not say the store refused: %q", m.Notes)
	}
	if k.askedFor(reg.addr) {
		t.Errorf("the keychain was asked for %s despite WithoutRegistryAuth", reg.addr)
	}

	// The default keychain, the Docker configuration, is turned off too.
	_, err = build.Solve(ctxT(t), b, step(2), build.PersistCacheMounts(store, build.Strict()),
		build.WithoutRegistryAuth(), build.LocalDir(t.TempDir()))
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "unauthorized") {
		t.Errorf("Strict: err = %v, want the registry's refusal", err)
	}
	if got := reg.credentialed(""); len(got) != 0 {
		t.Errorf("credentials reached the registry: %q", got)
	}
	if reg.denied == 0 {
		t.Errorf("the registry was never asked: the test proves nothing")
	}

	// Without WithoutRegistryAuth, the same solve finds the password in
	// the Docker configuration, for Larder's calls and the builder's.
	res, err = build.Solve(ctxT(t), b, step(3), build.PersistCacheMounts(store, build.Strict()), build.LocalDir(t.TempDir()))
	if err != nil {
		t.Fatalf("with the Docker configuration: %v", err)
	}
	if m := onlyMount(t, res); !m.Exported {
		t.Errorf("nothing saved with the Docker configuration's password: %+v", m)
	}
	if got := reg.credentialed("go-containerregistry"); len(got) == 0 {
		t.Errorf("Larder's own calls did not use the Docker configuration")
	}
}

func containsPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}
