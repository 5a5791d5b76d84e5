package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// decodeAWSChunked is middleware that turns a request whose body is
// aws-chunked encoded (x-amz-content-sha256 is one of the STREAMING-…
// payloads: signed chunks, with or without signed trailers, or unsigned
// chunks with trailers) into a plain request with the decoded body and its
// length, before gofakes3 sees it.
//
// gofakes3 v1.2.0 decodes only STREAMING-AWS4-HMAC-SHA256-PAYLOAD, and only
// in PutObject: it stores the chunk headers and signatures as part of the
// object for a multipart upload's parts (which minio-go signs that way over
// plain HTTP) and for the -TRAILER variants. Like gofakes3, this checks no
// signatures; it ignores trailing checksums.
func decodeAWSChunked(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.Header.Get("X-Amz-Content-Sha256"), "STREAMING-") {
			h.ServeHTTP(w, r)
			return
		}
		n, err := strconv.ParseInt(r.Header.Get("X-Amz-Decoded-Content-Length"), 10, 64)
		if err != nil || n < 0 {
			http.Error(w, "aws-chunked body without a valid x-amz-decoded-content-length", http.StatusBadRequest)
			return
		}
		r.Body = struct {
			io.Reader
			io.Closer
		}{&chunkedReader{r: bufio.NewReader(r.Body)}, r.Body}
		r.ContentLength = n
		r.Header.Set("Content-Length", strconv.FormatInt(n, 10))
		r.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
		r.Header.Del("X-Amz-Decoded-Content-Length")
		r.Header.Del("X-Amz-Trailer")
		// aws-chunked describes the request, not the object: S3 does not
		// keep it, and gofakes3 would hand it back on GET.
		var encs []string
		for e := range strings.SplitSeq(r.Header.Get("Content-Encoding"), ",") {
			if e = strings.TrimSpace(e); e != "" && !strings.EqualFold(e, "aws-chunked") {
				encs = append(encs, e)
			}
		}
		if len(encs) == 0 {
			r.Header.Del("Content-Encoding")
		} else {
			r.Header.Set("Content-Encoding", strings.Join(encs, ","))
		}
		h.ServeHTTP(w, r)
	})
}

// chunkedReader decodes an aws-chunked body:
//
//	SIZE[;chunk-signature=SIG]\r\n DATA \r\n ... 0[;chunk-signature=SIG]\r\n [TRAILER\r\n ...] \r\n
//
// with SIZE in hexadecimal. A body that ends before its last chunk is an
// io.ErrUnexpectedEOF.
type chunkedReader struct {
	r        *bufio.Reader
	left     int64 // bytes of the current chunk not yet read
	needCRLF bool  // a chunk's data was read; its \r\n was not
	err      error // sticky: io.EOF after the last chunk
}

var errChunkFormat = errors.New("malformed aws-chunked body")

func (c *chunkedReader) Read(p []byte) (int, error) {
	for c.err == nil && c.left == 0 {
		c.err = c.nextChunk()
	}
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.r.Read(p[:min(int64(len(p)), c.left)])
	c.left -= int64(n)
	if c.left == 0 {
		c.needCRLF = true
	}
	if err == io.EOF {
		err = nil
		if c.left > 0 {
			err = io.ErrUnexpectedEOF
		}
	}
	if err != nil {
		c.err = err
	}
	return n, err
}

// nextChunk reads up to the next chunk's data, or past the trailers after
// the last chunk, when it returns io.EOF.
func (c *chunkedReader) nextChunk() error {
	if c.needCRLF {
		line, err := c.line()
		if err != nil {
			return err
		}
		if len(line) != 0 {
			return fmt.Errorf("%w: chunk data followed by %q, not CRLF", errChunkFormat, line)
		}
		c.needCRLF = false
	}
	line, err := c.line()
	if err != nil {
		return err
	}
	sizeText, _, _ := bytes.Cut(line, []byte(";"))
	size, err := strconv.ParseInt(string(bytes.TrimSpace(sizeText)), 16, 64)
	if err != nil || size < 0 {
		return fmt.Errorf("%w: chunk header %q", errChunkFormat, line)
	}
	if size > 0 {
		c.left = size
		return nil
	}
	// The last chunk: skip the trailers up to the empty line that ends
	// them, or the end of the body.
	for {
		line, err := c.line()
		if err == io.ErrUnexpectedEOF || (err == nil && len(line) == 0) {
			return io.EOF
		}
		if err != nil {
			return err
		}
	}
}

// line reads a line and returns it without its line ending. A body that
// ends before the line does is io.ErrUnexpectedEOF.
func (c *chunkedReader) line() ([]byte, error) {
	line, err := c.r.ReadSlice('\n')
	if err == io.EOF {
		return nil, io.ErrUnexpectedEOF
	}
	if err == bufio.ErrBufferFull {
		return nil, fmt.Errorf("%w: a line longer than %d bytes", errChunkFormat, c.r.Size())
	}
	if err != nil {
		return nil, err
	}
	return bytes.TrimRight(line, "\r\n"), nil
}
