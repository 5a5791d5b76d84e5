package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/larder-build/larder/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// The smoke run: every scenario once, on tiny graphs, so that the benchmark
// program can't rot. It checks that each scenario measured its figures,
// not what they are: timings on a shared machine are not for assertions.
func TestSmoke(t *testing.T) {
	env := testenv.Get(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var log bytes.Buffer
	table, err := Run(ctx, Config{Smoke: true, Env: env, Log: &log})
	t.Log("\n" + log.String())
	if table != nil {
		var out strings.Builder
		table.Write(&out)
		t.Log("\n" + out.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range table.Rows {
		id, _, _ := strings.Cut(r.Scenario, " ")
		seen[id] = true
		if r.Verdict == NotRun && !strings.HasPrefix(r.Note, "unavailable here") {
			t.Errorf("scenario %s, %s: %s", r.Scenario, r.Figure, r.Note)
		}
	}
	for _, id := range []string{"1", "2", "3", "4", "5"} {
		if !seen[id] {
			t.Errorf("no row for scenario %s", id)
		}
	}
	// Byte counts are exact: the rebuild with the cache mount fetches only
	// the added package, the baseline all three.
	if got := find(t, table, "1 pkg", "bytes"); got.Value != "100.0 kB / 2.10 MB = 4.8%" {
		t.Errorf("scenario 1's bytes: %q, want the added package's 100 kB of all three's 2.1 MB", got.Value)
	}
	if got := find(t, table, "2 pkg", "bytes"); got.Value != "100.0 kB / 2.10 MB = 4.8%" {
		t.Errorf("scenario 2's bytes: %q, want the added package's 100 kB of all three's 2.1 MB", got.Value)
	}
	if got := find(t, table, "2 pkg", "lost"); got.Value != "0 of 3" {
		t.Errorf("scenario 2's concurrent saves lost %s additions, want 0 of 3", got.Value)
	}
}

func find(t *testing.T, table *Table, scenario, figure string) Row {
	t.Helper()
	for _, r := range table.Rows {
		if r.Scenario == scenario && strings.Contains(r.Figure, figure) {
			return r
		}
	}
	t.Fatalf("no row %q / %q", scenario, figure)
	return Row{}
}

// The proxy passes plain HTTP through byte for byte and counts the body.
func TestProxyCountsHTTP(t *testing.T) {
	body := bytes.Repeat([]byte("larder"), 50_000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
	defer srv.Close()
	p, err := StartProxy(100_000_000)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	u, _ := url.Parse(p.URL())
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(u)}}
	for range 2 {
		resp, err := c.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("read %d bytes (%v), want the %d the server sent", len(got), err, len(body))
		}
	}
	if n := p.Reset(); n != int64(2*len(body)) {
		t.Errorf("proxy counted %d bytes, want %d", n, 2*len(body))
	}
	if n := p.Bytes(); n != 0 {
		t.Errorf("after Reset, %d bytes", n)
	}
}

// HTTPS goes through a CONNECT tunnel, whose bytes from the server are
// counted: the body and TLS's own.
func TestProxyTunnelsHTTPS(t *testing.T) {
	body := bytes.Repeat([]byte("larder"), 50_000)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
	defer srv.Close()
	p, err := StartProxy(0)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	u, _ := url.Parse(p.URL())
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.Proxy = http.ProxyURL(u)
	tr.TLSClientConfig = &tls.Config{RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
	resp, err := (&http.Client{Transport: tr}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("read %d bytes (%v), want the %d the server sent", len(got), err, len(body))
	}
	tr.CloseIdleConnections()
	if n := p.Bytes(); n < int64(len(body)) || n > int64(len(body))+20_000 {
		t.Errorf("proxy counted %d bytes, want the body's %d and TLS's overhead", n, len(body))
	}
}
