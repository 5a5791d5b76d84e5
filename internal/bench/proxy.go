package bench

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy is a forward HTTP proxy on 127.0.0.1 that build steps reach over the
// host network. It passes plain HTTP requests on and tunnels HTTPS (CONNECT),
// delivers what it receives from servers at a fixed rate shared by all its
// connections, like one slow link, and counts those bytes exactly.
type Proxy struct {
	ln   net.Listener
	srv  *http.Server
	rate *limiter // nil: no limit
	tr   *http.Transport

	down atomic.Int64 // bytes from servers to clients: response bodies and tunnelled bytes

	mu      sync.Mutex
	tunnels map[net.Conn]bool // hijacked connections, which the server no longer tracks
}

// StartProxy serves a proxy on 127.0.0.1 that delivers at most bytesPerSec
// bytes per second to its clients, or without limit when bytesPerSec is 0.
func StartProxy(bytesPerSec int64) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: proxy: %w", err)
	}
	p := &Proxy{ln: ln, tunnels: map[net.Conn]bool{}, tr: &http.Transport{
		Proxy:               nil,
		DisableCompression:  true, // pass bodies on byte for byte
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     30 * time.Second,
	}}
	if bytesPerSec > 0 {
		p.rate = &limiter{perSec: float64(bytesPerSec)}
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 30 * time.Second}
	go p.srv.Serve(ln)
	return p, nil
}

// URL is the proxy's address as http_proxy takes it: "http://127.0.0.1:PORT".
func (p *Proxy) URL() string { return "http://" + p.ln.Addr().String() }

// Bytes returns how many bytes the proxy delivered to clients since it
// started or since the last Reset.
func (p *Proxy) Bytes() int64 { return p.down.Load() }

// Reset sets the byte count to zero and returns what it was.
func (p *Proxy) Reset() int64 { return p.down.Swap(0) }

// Close stops the proxy and ends its connections, tunnels included.
func (p *Proxy) Close() error {
	err := p.srv.Close()
	p.tr.CloseIdleConnections()
	p.mu.Lock()
	for c := range p.tunnels {
		c.Close()
	}
	p.mu.Unlock()
	return err
}

// hopHeaders are the headers that concern one connection, not the request.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// ServeHTTP serves one request to the proxy: CONNECT opens a tunnel, any
// other method with an absolute URL is sent on to its server.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodConnect {
		p.tunnel(w, r)
		return
	}
	if r.URL.Host == "" {
		http.Error(w, "bench proxy: not a proxy request", http.StatusBadRequest)
		return
	}
	out := r.Clone(r.Context())
	out.RequestURI = ""
	for _, h := range hopHeaders {
		out.Header.Del(h)
	}
	resp, err := p.tr.RoundTrip(out)
	if err != nil {
		http.Error(w, "bench proxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for _, h := range hopHeaders {
		resp.Header.Del(h)
	}
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	p.copy(w, resp.Body)
}

// tunnel serves a CONNECT request: it dials the host and copies bytes both
// ways, the server's at the proxy's rate.
func (p *Proxy) tunnel(w http.ResponseWriter, r *http.Request) {
	d := net.Dialer{Timeout: 30 * time.Second}
	upstream, err := d.DialContext(r.Context(), "tcp", r.Host)
	if err != nil {
		http.Error(w, "bench proxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		upstream.Close()
		http.Error(w, "bench proxy: can't tunnel", http.StatusInternalServerError)
		return
	}
	client, buf, err := hj.Hijack()
	if err != nil {
		upstream.Close()
		return
	}
	p.mu.Lock()
	p.tunnels[client], p.tunnels[upstream] = true, true
	p.mu.Unlock()
	defer func() {
		client.Close()
		upstream.Close()
		p.mu.Lock()
		delete(p.tunnels, client)
		delete(p.tunnels, upstream)
		p.mu.Unlock()
	}()
	if _, err := client.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		// What the client sent after its request, then the rest.
		if n := buf.Reader.Buffered(); n > 0 {
			b, _ := buf.Reader.Peek(n)
			upstream.Write(b)
		}
		io.Copy(upstream, client)
		if c, ok := upstream.(*net.TCPConn); ok {
			c.CloseWrite()
		}
	}()
	p.copy(client, upstream)
	if c, ok := client.(*net.TCPConn); ok {
		c.CloseWrite()
	}
	// The server is done; give the client a moment to finish too.
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
}

// copy copies src to dst at the proxy's rate, counting the bytes.
func (p *Proxy) copy(dst io.Writer, src io.Reader) {
	buf := make([]byte, 32<<10)
	fl, _ := dst.(http.Flusher)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.rate.wait(n)
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
			p.down.Add(int64(n))
			if fl != nil {
				fl.Flush()
			}
		}
		if err != nil {
			return
		}
	}
}

// limiter spaces out deliveries so that they never exceed a rate, with no
// burst: time not used while idle is not saved up. A delivery may run up to
// slack ahead of its schedule, so that short sleeps, which the runtime
// rounds up, do not slow the link below its rate.
const slack = 5 * time.Millisecond

type limiter struct {
	perSec float64 // bytes per second
	mu     sync.Mutex
	next   time.Time
}

// wait returns when n more bytes may be delivered.
func (l *limiter) wait(n int) {
	if l == nil {
		return
	}
	cost := time.Duration(float64(n) / l.perSec * float64(time.Second))
	l.mu.Lock()
	now := time.Now()
	if l.next.Before(now) {
		l.next = now
	}
	l.next = l.next.Add(cost)
	at := l.next
	l.mu.Unlock()
	if d := time.Until(at); d > slack {
		time.Sleep(d - slack)
	}
}
