package build

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/distribution/reference"
	"github.com/moby/buildkit/client"
)

// LoadOption configures [Load]. Each option checks its own input.
type LoadOption func(*loadOptions) error

type loadOptions struct {
	host string // the engine's address, from LoadInto; "" to find one
}

// LoadInto names the engine [Load] loads into by the address of its API
// socket, such as "unix:///var/run/docker.sock" or
// "unix:///run/podman/podman.sock": a unix socket, by its absolute path.
// The default is the engine Load finds by itself: $DOCKER_HOST when it is
// set, else Docker's socket, else Podman's (see Load). The engine does not
// change any cache key.
func LoadInto(host string) LoadOption {
	return func(o *loadOptions) error {
		if _, err := engineSocket(host); err != nil {
			return fmt.Errorf("LoadInto(%q): %w (want a unix socket address such as \"unix:///var/run/docker.sock\")", host, err)
		}
		o.host = host
		return nil
	}
}

// Load loads the image into the image store of a local Docker or Podman
// engine, tagged ref (such as "app:1.2"; a name without a tag is tagged
// "latest"), as `docker buildx build --load` does: the builder writes the
// image as a tarball that `docker load` reads. With one platform, Larder
// streams it into the engine's API as it comes, keeping nothing on disk;
// with several, it merges the platforms' OCI tarballs into one in a
// temporary directory first, which Solve removes. A reference with a
// digest is an error: the engine tags what it loads.
//
// The default engine is the one the docker command uses when no context is
// set: the socket $DOCKER_HOST names when it is set (unix:// only), else
// /var/run/docker.sock, else Podman's ($XDG_RUNTIME_DIR/podman/podman.sock,
// then /run/podman/podman.sock), the first that answers; [LoadInto] names
// another. Solve asks the engine when it applies the option, before the
// builder is contacted, and fails naming the sockets it tried when none
// answers. An image the engine refuses fails the solve with the engine's
// message.
//
// With several platforms, the engine gets one index of them all when it
// keeps its images in containerd's image store; Docker's classic store
// holds one platform per tag, and Solve says so before the builder is
// contacted. Where the image goes does not change any cache key.
func Load(ref string, opts ...LoadOption) SolveOption {
	return func(o *solveOptions) error {
		if ref == "" {
			return errors.New("Load: empty reference (give the one to tag the image with, such as \"app:1.2\")")
		}
		fn := fmt.Sprintf("Load(%q)", ref)
		named, err := reference.ParseNormalizedNamed(ref)
		if err != nil {
			return fmt.Errorf("%s: %w (want a reference such as app:1.2)", fn, err)
		}
		if _, ok := named.(reference.Digested); ok {
			return fmt.Errorf("%s: the engine tags the image it loads, and a digest is not a tag (want a reference such as app:1.2)", fn)
		}
		var lo loadOptions
		for i, opt := range opts {
			if opt == nil {
				return fmt.Errorf("%s: option %d is nil (leave it out)", fn, i+1)
			}
			if err := opt(&lo); err != nil {
				return fmt.Errorf("%s: %w", fn, err)
			}
		}
		eng, err := findEngine(lo.host)
		if err != nil {
			return fmt.Errorf("%s: %w", fn, err)
		}
		o.exports = append(o.exports, client.ExportEntry{
			Type:  client.ExporterDocker,
			Attrs: map[string]string{"name": ref},
			Output: func(map[string]string) (io.WriteCloser, error) {
				return eng.loader(fn), nil
			},
		})
		if o.image.engines == nil {
			o.image.engines = map[int]*engineAPI{}
		}
		o.image.engines[len(o.exports)-1] = eng
		o.exportFns = append(o.exportFns, "Load")
		o.imageOutput = true
		return nil
	}
}

// pingTimeout bounds how long an engine has to answer /_ping.
const pingTimeout = 5 * time.Second

// engineSocket returns the path of the unix socket at the address host,
// such as "unix:///var/run/docker.sock".
func engineSocket(host string) (string, error) {
	path, ok := strings.CutPrefix(host, "unix://")
	switch {
	case host == "":
		return "", errors.New("empty address")
	case !ok && strings.Contains(host, "://"):
		scheme, _, _ := strings.Cut(host, "://")
		return "", fmt.Errorf("scheme %s:// is not supported: Load reaches an engine through its unix socket only", scheme)
	case !ok && filepath.IsAbs(host):
		return "", fmt.Errorf("no scheme (did you mean \"unix://%s\"?)", host)
	case !ok:
		return "", errors.New("not a unix socket address")
	case !filepath.IsAbs(path):
		return "", fmt.Errorf("socket path %q is not absolute", path)
	}
	return filepath.Clean(path), nil
}

// engineCandidate is an address Load may find an engine at, and where the
// address came from, for messages.
type engineCandidate struct {
	host, from string
}

// engineCandidates lists where to look for the engine, in order: the
// address given by LoadInto, else $DOCKER_HOST, else the default sockets
// of Docker and Podman. It also returns what to do when none answers.
func engineCandidates(given string) ([]engineCandidate, string, error) {
	if given != "" {
		return []engineCandidate{{given, "LoadInto"}}, "start the engine there, or name a running one with LoadInto", nil
	}
	if env := os.Getenv("DOCKER_HOST"); env != "" {
		if _, err := engineSocket(env); err != nil {
			return nil, "", fmt.Errorf("$DOCKER_HOST is %q: %w (set it to a unix socket address such as \"unix:///var/run/docker.sock\", or name the engine with LoadInto)", env, err)
		}
		return []engineCandidate{{env, "$DOCKER_HOST"}}, "start the engine there, or point $DOCKER_HOST at a running one", nil
	}
	cands := []engineCandidate{{"unix:///var/run/docker.sock", "Docker's default"}}
	if xdg := os.Getenv("XDG_RUNTIME_DIR"); filepath.IsAbs(xdg) {
		cands = append(cands, engineCandidate{"unix://" + filepath.Join(xdg, "podman", "podman.sock"), "Podman's default"})
	}
	cands = append(cands, engineCandidate{"unix:///run/podman/podman.sock", "Podman's default"})
	return cands, "start Docker or Podman, or set $DOCKER_HOST to a running engine's socket", nil
}

// findEngine returns the first engine of engineCandidates that answers.
func findEngine(given string) (*engineAPI, error) {
	cands, fix, err := engineCandidates(given)
	if err != nil {
		return nil, err
	}
	var tried []string
	for _, c := range cands {
		e, err := newEngineAPI(c.host)
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
			err = e.ping(ctx)
			cancel()
		}
		if err == nil {
			return e, nil
		}
		tried = append(tried, fmt.Sprintf("%s (%s): %v", c.host, c.from, err))
	}
	return nil, fmt.Errorf("no container engine answers at %s (%s)", strings.Join(tried, "; "), fix)
}

// engineAPI is the HTTP API of a Docker or Podman engine, on its unix
// socket.
type engineAPI struct {
	host   string // unix:///path, for messages
	client *http.Client
}

func newEngineAPI(host string) (*engineAPI, error) {
	path, err := engineSocket(host)
	if err != nil {
		return nil, err
	}
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}
	tr := &http.Transport{DialContext: dial, DisableCompression: true, DisableKeepAlives: true}
	return &engineAPI{host: host, client: &http.Client{Transport: tr}}, nil
}

// do sends a request for the API path, with body when not nil.
func (e *engineAPI) do(ctx context.Context, method, path string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://engine"+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-tar")
	}
	return e.client.Do(req)
}

// ping checks that an engine answers at the socket.
func (e *engineAPI) ping(ctx context.Context) error {
	path, _ := engineSocket(e.host)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return errors.New("no socket there")
	}
	resp, err := e.do(ctx, http.MethodGet, "/_ping", nil)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return fmt.Errorf("no answer within %v", pingTimeout)
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/_ping: %s", answerError(resp))
	}
	return nil
}

// answerError is the message of an engine's answer that is not a success:
// the "message" of its JSON body, else the body itself.
func answerError(resp *http.Response) string {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var m struct {
		Message string `json:"message"`
	}
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &m) == nil && m.Message != "" {
		msg = m.Message
	}
	if msg == "" {
		return resp.Status
	}
	return fmt.Sprintf("%s: %s", resp.Status, msg)
}

// load posts the docker-load tarball read from r to the engine, and reads
// its answer: a stream of JSON messages, an error among them.
func (e *engineAPI) load(ctx context.Context, r io.Reader) error {
	// The pipe is not the request's to close: a write the engine no longer
	// reads must fail with the engine's error, which comes after.
	resp, err := e.do(ctx, http.MethodPost, "/images/load?quiet=1", io.NopCloser(r))
	if err != nil {
		return fmt.Errorf("the engine at %s: %w", e.host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("the engine at %s refused the image: %s", e.host, answerError(resp))
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var m struct {
			Error       string `json:"error"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("the engine at %s: reading its answer: %w", e.host, err)
		}
		msg := m.Error
		if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
			msg = m.ErrorDetail.Message
		}
		if msg != "" {
			return fmt.Errorf("the engine at %s could not load the image: %s", e.host, msg)
		}
	}
}

// loadFile loads the image tarball at path into the engine.
func (e *engineAPI) loadFile(ctx context.Context, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return e.load(ctx, f)
}

// errEngineDone is what a write gets when the engine answered before the
// tarball ended.
var errEngineDone = errors.New("the engine stopped reading the image before its end")

// loader returns a writer that streams the tarball written to it into the
// engine's /images/load. Its Close waits for the engine's answer and
// returns its error, with the prefix fn.
func (e *engineAPI) loader(fn string) io.WriteCloser {
	pr, pw := io.Pipe()
	l := &engineLoad{pw: pw, done: make(chan error, 1)}
	go func() {
		// BuildKit's stream ends the load: a cancelled solve closes it.
		err := e.load(context.Background(), pr)
		if err != nil {
			err = fmt.Errorf("%s: %w", fn, err)
			pr.CloseWithError(err)
		} else {
			pr.CloseWithError(errEngineDone)
		}
		l.done <- err
	}()
	return l
}

// engineLoad is the writer loader returns.
type engineLoad struct {
	pw   *io.PipeWriter
	done chan error
	once sync.Once
	err  error
}

func (l *engineLoad) Write(p []byte) (int, error) { return l.pw.Write(p) }

// Close ends the tarball and returns the engine's answer.
func (l *engineLoad) Close() error {
	l.once.Do(func() {
		l.pw.Close()
		l.err = <-l.done
	})
	return l.err
}

// engineStoresIndexes reports whether the engine at host, such as
// "unix:///var/run/docker.sock", keeps its images in containerd's image
// store, which holds a multi-platform index under one tag: its /info lists
// ["driver-type", "io.containerd.snapshotter.v1"] in DriverStatus. Docker's
// classic store (overlay2 and the like, the only one of Debian's docker.io
// 20.10) holds one platform's image per tag. Podman's /info does not list
// that driver type, so for Podman it reports false.
func engineStoresIndexes(ctx context.Context, host string) (bool, error) {
	e, err := newEngineAPI(host)
	if err != nil {
		return false, fmt.Errorf("engine %q: %w", host, err)
	}
	resp, err := e.do(ctx, http.MethodGet, "/info", nil)
	if err != nil {
		return false, fmt.Errorf("the engine at %s: %w", host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("the engine at %s: /info: %s", host, answerError(resp))
	}
	var info struct {
		DriverStatus [][]string `json:"DriverStatus"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		return false, fmt.Errorf("the engine at %s: /info: %w", host, err)
	}
	for _, kv := range info.DriverStatus {
		if len(kv) == 2 && kv[0] == "driver-type" && kv[1] == "io.containerd.snapshotter.v1" {
			return true, nil
		}
	}
	return false, nil
}
