package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/docker/cli/cli/config/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/auth/authprovider"
	"github.com/moby/buildkit/session/secrets/secretsprovider"
	"github.com/moby/buildkit/session/sshforward/sshprovider"
	"github.com/moby/buildkit/solver/pb"
)

// sessionAttachables returns what the client session offers the builder:
// registry credentials from the solve's keychain, secrets and SSH agents.
func sessionAttachables(o *solveOptions) []session.Attachable {
	var as []session.Attachable
	if !o.noAuth {
		as = append(as, authprovider.NewDockerAuthProvider(authprovider.DockerAuthProviderConfig{
			AuthConfigProvider: keychainAuth(o.auth()),
		}))
	}
	if len(o.secrets) > 0 {
		as = append(as, secretsprovider.FromMap(o.secrets))
	}
	if o.sshProvider != nil {
		as = append(as, o.sshProvider)
	}
	return as
}

// checkSession finds the local sources and required secrets the definition
// uses and checks that the options provide them.
func checkSession(def *llb.Definition, o *solveOptions) error {
	var errs []error
	for _, dt := range def.Def {
		var op pb.Op
		if err := op.UnmarshalVT(dt); err != nil {
			return err
		}
		if src := op.GetSource(); src != nil {
			if name, ok := strings.CutPrefix(src.Identifier, "local://"); ok {
				if _, have := o.locals[name]; !have {
					errs = append(errs, fmt.Errorf("the graph uses Local(%q) but no WithLocal(%q, dir) was given", name, name))
				}
			}
		}
		if ex := op.GetExec(); ex != nil {
			for _, m := range ex.Mounts {
				if so := m.SecretOpt; so != nil {
					if _, have := o.secrets[so.ID]; !have && !so.Optional {
						errs = append(errs, fmt.Errorf("a step mounts the required secret %q but no WithSecret(%q, …) was given", so.ID, so.ID))
					} else if !have {
						o.warn(fmt.Sprintf("a step mounts the optional secret %q at %s, which no WithSecret gives: it runs without it (a typo of the id?)", so.ID, m.Dest))
					}
				}
				if so := m.SSHOpt; so != nil && !so.Optional && !slices.ContainsFunc(o.ssh, func(a sshprovider.AgentConfig) bool { return a.ID == so.ID }) {
					errs = append(errs, fmt.Errorf("a step mounts the required SSH agent %q but no WithSSH(%q, …) was given", so.ID, so.ID))
				}
			}
			for _, se := range ex.Secretenv {
				if _, have := o.secrets[se.ID]; !have && !se.Optional {
					errs = append(errs, fmt.Errorf("a step reads the required secret %q into $%s but no WithSecret(%q, …) was given", se.ID, se.Name, se.ID))
				} else if !have {
					o.warn(fmt.Sprintf("a step reads the optional secret %q into $%s, which no WithSecret gives: it runs without it (a typo of the id?)", se.ID, se.Name))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// warn adds msg to the solve's warnings, once.
func (o *solveOptions) warn(msg string) {
	if !slices.Contains(o.warnings, msg) {
		o.warnings = append(o.warnings, msg)
	}
}

// localUniqueID names the client's local directories for the builder, which
// keeps what it received of them under this id and sends only changes next
// time. It depends on the directories' absolute paths, so a solve gives the
// same definition each time it sends the same directories.
func localUniqueID(locals map[string]string) string {
	names := slices.Sorted(maps.Keys(locals))
	h := sha256.New()
	for _, n := range names {
		abs, err := filepath.Abs(locals[n])
		if err != nil {
			abs = locals[n]
		}
		fmt.Fprintf(h, "%s=%s\n", n, abs)
	}
	return "larder-" + hex.EncodeToString(h.Sum(nil))[:32]
}

// exportsFor returns the export entries of the solve of p. With several
// platforms, local directories get a subdirectory per platform and images
// are pushed by digest, to be put in an index afterwards.

// keychainAuth answers the builder's requests for registry credentials
// from k, the keychain Larder's own registry calls use too.
func keychainAuth(k authn.Keychain) authprovider.AuthConfigProvider {
	return func(ctx context.Context, host string, _ []string, _ authprovider.ExpireCachedAuthCheck) (types.AuthConfig, error) {
		if host == authprovider.DockerHubRegistryHost {
			host = name.DefaultRegistry // as the Docker configuration names Docker Hub
		}
		reg, err := name.NewRegistry(host)
		if err != nil {
			return types.AuthConfig{}, fmt.Errorf("registry credentials for %q: %w", host, err)
		}
		a, err := authn.Resolve(ctx, k, reg)
		if err != nil {
			return types.AuthConfig{}, fmt.Errorf("registry credentials for %s: %w", host, err)
		}
		c, err := authn.Authorization(ctx, a)
		if err != nil {
			return types.AuthConfig{}, fmt.Errorf("registry credentials for %s: %w", host, err)
		}
		return types.AuthConfig{
			Username:      c.Username,
			Password:      c.Password,
			Auth:          c.Auth,
			IdentityToken: c.IdentityToken,
			RegistryToken: c.RegistryToken,
			ServerAddress: host,
		}, nil
	}
}
