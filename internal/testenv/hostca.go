package testenv

import (
	"fmt"
	"os"
	"path"

	"github.com/moby/buildkit/client/llb"

	"github.com/larder-build/larder/mounts"
)

// hostCAPath is where HostCA shows the host's certificates to a step.
const hostCAPath = "/run/larder-host-ca/ca-certificates.crt"

// HostCA returns run options that let a step trust the certificate
// authorities this machine trusts, for machines whose traffic to package
// registries goes through a proxy that signs with a CA of its own: the
// host's CA bundle ($SSL_CERT_FILE, else /etc/ssl/certs/ca-certificates.crt),
// mounted read-only at a path of its own, and SSL_CERT_FILE,
// NODE_EXTRA_CA_CERTS, PIP_CERT and CARGO_HTTP_CAINFO pointing at it, which
// go, npm, pip and cargo read. The image's own bundle is left alone, so the
// step may install ca-certificates. The bundle travels in the definition.
func HostCA() ([]llb.RunOption, error) {
	src := os.Getenv("SSL_CERT_FILE")
	if src == "" {
		src = "/etc/ssl/certs/ca-certificates.crt"
	}
	pem, err := os.ReadFile(src)
	if err != nil {
		return nil, fmt.Errorf("testenv: the host's CA bundle: %w", err)
	}
	bundle := mounts.FromState(llb.Scratch().File(llb.Mkfile("/"+path.Base(hostCAPath), 0o644, pem)))
	return []llb.RunOption{
		mounts.Bind(path.Dir(hostCAPath), bundle),
		llb.AddEnv("SSL_CERT_FILE", hostCAPath),
		llb.AddEnv("NODE_EXTRA_CA_CERTS", hostCAPath),
		llb.AddEnv("PIP_CERT", hostCAPath),
		llb.AddEnv("CARGO_HTTP_CAINFO", hostCAPath),
	}, nil
}
