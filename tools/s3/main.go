// Command larder-s3 is the S3-compatible server Larder's integration tests
// run on 127.0.0.1: gofakes3 with its in-memory backend, so every start is
// empty and nothing is written to disk. It accepts any credentials and
// addresses buckets by path (http://HOST:PORT/BUCKET/KEY). It decodes
// aws-chunked request bodies itself, for every request (see
// decodeAWSChunked), as gofakes3 does so only for single-request uploads.
//
// Usage:
//
//	larder-s3 [-addr 127.0.0.1:0] [-bucket NAME]... [-keep-stdin]
//
// It listens on -addr and, once the buckets exist and the listener is
// bound, prints the address it listens on (host:port, with the port it was
// given when -addr's port is 0) as the first line of its standard output.
// -bucket, which may be repeated or list names separated by commas, creates
// buckets at start.
//
// It exits on SIGINT or SIGTERM, and when its standard input reaches end of
// file: a parent that keeps the write end of a pipe on larder-s3's stdin
// stops it by closing that end, and, should the parent die, the kernel
// closes it, so the server never outlives the process that started it.
// -keep-stdin turns that off, for running it by hand with stdin at
// /dev/null.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// buckets is the -bucket flag: names, repeated or separated by commas.
type buckets []string

func (b *buckets) String() string { return strings.Join(*b, ",") }

func (b *buckets) Set(s string) error {
	for name := range strings.SplitSeq(s, ",") {
		if name = strings.TrimSpace(name); name != "" {
			*b = append(*b, name)
		}
	}
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "larder-s3: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:0", "`host:port` to listen on; port 0 picks a free port")
	var names buckets
	flag.Var(&names, "bucket", "create bucket `NAME` at start (repeatable, or comma-separated)")
	keepStdin := flag.Bool("keep-stdin", false, "do not exit when standard input reaches end of file")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}

	backend := s3mem.New()
	for _, name := range names {
		if err := gofakes3.ValidateBucketName(name); err != nil {
			return fmt.Errorf("-bucket %q: %w", name, err)
		}
		if err := backend.CreateBucket(name); err != nil && !gofakes3.IsAlreadyExists(err) {
			return fmt.Errorf("creating bucket %q: %w", name, err)
		}
	}
	faker := gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog()))

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: decodeAWSChunked(faker.Server()), ReadHeaderTimeout: 30 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if _, err := fmt.Println(ln.Addr().String()); err != nil {
		return fmt.Errorf("printing the address: %w", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if !*keepStdin {
		go func() {
			io.Copy(io.Discard, os.Stdin)
			stop()
		}()
	}

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
