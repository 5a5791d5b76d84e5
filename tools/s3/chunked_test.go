package main

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
)

func TestChunkedReader(t *testing.T) {
	sig := ";chunk-signature=" + strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name, body, want string
		err              error
	}{
		{name: "signed", body: "5" + sig + "\r\nhello\r\n3" + sig + "\r\n, w\r\n0" + sig + "\r\n\r\n", want: "hello, w"},
		{name: "unsigned trailer", body: "5\r\nhello\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n", want: "hello"},
		{name: "signed trailer", body: "a" + sig + "\r\n0123456789\r\n0" + sig + "\r\nx-amz-checksum-crc32c:AAAAAA==\r\nx-amz-trailer-signature:00\r\n\r\n", want: "0123456789"},
		{name: "no final CRLF", body: "2\r\nhi\r\n0\r\n", want: "hi"},
		{name: "empty", body: "0" + sig + "\r\n\r\n", want: ""},
		{name: "truncated data", body: "5\r\nhel", want: "hel", err: io.ErrUnexpectedEOF},
		{name: "no last chunk", body: "5\r\nhello\r\n", want: "hello", err: io.ErrUnexpectedEOF},
		{name: "bad size", body: "zz\r\nhello\r\n", err: errChunkFormat},
		{name: "data longer than size", body: "2\r\nhello\r\n0\r\n\r\n", want: "he", err: errChunkFormat},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// One byte at a time, to cross every boundary.
			got, err := io.ReadAll(io.LimitReader(&chunkedReader{r: bufio.NewReader(iotest.OneByteReader(strings.NewReader(tc.body)))}, 1<<20))
			if string(got) != tc.want || !errors.Is(err, tc.err) {
				t.Errorf("decoded %q, %v; want %q, %v", got, err, tc.want, tc.err)
			}
		})
	}
}

// The middleware hands gofakes3 the decoded body and length, and drops the
// aws-chunked encoding.
func TestDecodeAWSChunked(t *testing.T) {
	var body, length, enc, sha string
	h := decodeAWSChunked(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		body, length, enc, sha = string(b), r.Header.Get("Content-Length"), r.Header.Get("Content-Encoding"), r.Header.Get("X-Amz-Content-Sha256")
	}))
	raw := "5;chunk-signature=00\r\nhello\r\n0;chunk-signature=00\r\n\r\n"
	r := httptest.NewRequest("PUT", "/b/k?partNumber=1&uploadId=x", strings.NewReader(raw))
	r.Header.Set("X-Amz-Content-Sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
	r.Header.Set("X-Amz-Decoded-Content-Length", "5")
	r.Header.Set("Content-Encoding", "aws-chunked,gzip")
	h.ServeHTTP(httptest.NewRecorder(), r)
	if body != "hello" || length != "5" || enc != "gzip" || sha != "UNSIGNED-PAYLOAD" {
		t.Errorf("handler saw body %q, Content-Length %q, Content-Encoding %q, X-Amz-Content-Sha256 %q; want hello, 5, gzip, UNSIGNED-PAYLOAD",
			body, length, enc, sha)
	}
}
