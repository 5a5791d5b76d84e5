package build_test

import (
	"archive/tar"
	"crypto/sha256"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/secrets/secretsprovider"
	"github.com/tonistiigi/fsutil"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/internal/testenv"
)

// Three Dockerfiles built by build.Dockerfile and by BuildKit's own
// dockerfile.v0 frontend on the same builder give images with the same
// configuration, history and files.
func TestDockerfileMatchesTheFrontend(t *testing.T) {
	env, bb := setup(t)
	secret := []byte("s3cr3t-token-value")
	for _, tc := range []struct {
		name       string
		dockerfile string
		args       map[string]string
		target     string
		extra      bool // the named context "extra"
	}{{
		name: "multi-stage",
		dockerfile: `FROM %[1]s AS compile
WORKDIR /src
COPY . .
RUN cat a.txt b.txt > /out.txt && mkdir -p /opt/tool && echo built > /opt/tool/flag # %[2]s
FROM %[1]s AS unused
RUN exit 1
FROM %[1]s AS final
COPY --from=compile /out.txt /app/out.txt
COPY --from=compile /opt /opt
ENTRYPOINT ["/bin/cat"]
CMD ["/app/out.txt"]
FROM final
`,
		target: "final",
	}, {
		name: "build args",
		dockerfile: `ARG BASE=none
FROM ${BASE}
ARG VERSION=0
ARG FLAVOR
LABEL org.opencontainers.image.version=$VERSION flavor="$FLAVOR"
ENV APP_VERSION=$VERSION PATH=/srv/app/bin:$PATH
WORKDIR /srv/app
RUN mkdir bin && echo "$VERSION-$FLAVOR" > version # %[2]s
EXPOSE 8080/tcp 53/udp
VOLUME /data
HEALTHCHECK --interval=10s --retries=2 CMD ["cat", "/srv/app/version"]
STOPSIGNAL SIGTERM
USER 1000:1000
`,
		args: map[string]string{"BASE": bb, "VERSION": "1.2.3", "FLAVOR": "lean"},
	}, {
		name: "named context and secret",
		dockerfile: `FROM %[1]s
COPY --from=extra notes.txt /notes.txt
RUN --mount=type=secret,id=token,required=true wc -c < /run/secrets/token > /token.len # %[2]s
RUN --mount=from=extra,target=/x cp /x/notes.txt /notes.copy
`,
		extra: true,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			n := nonce()
			dockerfile := fmt.Sprintf(tc.dockerfile, bb, n)
			ctxDir, extraDir, dfDir := t.TempDir(), t.TempDir(), t.TempDir()
			write(t, ctxDir, "a.txt", "a\n")
			write(t, ctxDir, "b.txt", "b "+n+"\n")
			write(t, extraDir, "notes.txt", "from the named context\n")
			write(t, dfDir, "Dockerfile", dockerfile)

			// Larder.
			var opts []build.DockerfileOption
			for k, v := range tc.args {
				opts = append(opts, build.BuildArg(k, v))
			}
			if tc.target != "" {
				opts = append(opts, build.Target(tc.target))
			}
			if tc.extra {
				opts = append(opts, build.BuildContext("extra", build.Local("extra")))
			}
			larderRef := env.Registry + "/test/df-larder:" + n
			_, err := build.Solve(ctxT(t), env.Builder, build.Dockerfile([]byte(dockerfile), build.Local("context"), opts...),
				build.WithLocal("context", ctxDir), build.WithLocal("extra", extraDir),
				build.WithSecret("token", secret), build.Push(larderRef))
			if err != nil {
				t.Fatal(err)
			}

			// BuildKit's frontend, as buildctl build --frontend dockerfile.v0 runs it.
			frontendRef := env.Registry + "/test/df-frontend:" + n
			attrs := map[string]string{}
			for k, v := range tc.args {
				attrs["build-arg:"+k] = v
			}
			if tc.target != "" {
				attrs["target"] = tc.target
			}
			locals := map[string]fsutil.FS{"context": dirFS(t, ctxDir), "dockerfile": dirFS(t, dfDir)}
			if tc.extra {
				attrs["context:extra"] = "local:extra"
				locals["extra"] = dirFS(t, extraDir)
			}
			_, err = env.Builder.Client().Solve(ctxT(t), nil, client.SolveOpt{
				Frontend:      "dockerfile.v0",
				FrontendAttrs: attrs,
				LocalMounts:   locals,
				Session:       []session.Attachable{secretsprovider.FromMap(map[string][]byte{"token": secret})},
				Exports:       []client.ExportEntry{{Type: client.ExporterImage, Attrs: map[string]string{"name": frontendRef, "push": "true"}}},
			}, nil)
			if err != nil {
				t.Fatal(err)
			}

			got, want := testenv.Pull(t, larderRef), testenv.Pull(t, frontendRef)
			gc, wc := configOf(t, got), configOf(t, want)
			if !reflect.DeepEqual(gc, wc) {
				t.Errorf("config:\nLarder   %+v\nfrontend %+v", gc, wc)
			}
			if g, w := historyOf(t, got), historyOf(t, want); !reflect.DeepEqual(g, w) {
				t.Errorf("history:\nLarder   %q\nfrontend %q", g, w)
			}
			if g, w := entriesOf(t, got), entriesOf(t, want); !maps.Equal(g, w) {
				for p := range mergedKeys(g, w) {
					if g[p] != w[p] {
						t.Errorf("%s: Larder %q, frontend %q", p, g[p], w[p])
					}
				}
			}
			if files := testenv.ImageFiles(t, got); strings.Contains(strings.Join(slices.Collect(maps.Values(files)), ""), string(secret)) {
				t.Error("the secret is in a layer")
			}
		})
	}
}

func write(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func dirFS(t *testing.T, dir string) fsutil.FS {
	t.Helper()
	fs, err := fsutil.NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

// configOf returns img's configuration without what differs between two
// builds of one Dockerfile: the time, and the history (compared apart).
func configOf(t *testing.T, img v1.Image) v1.ConfigFile {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := *cf
	c.Created, c.History = v1.Time{}, nil
	return c
}

// historyOf returns img's history as "created_by (empty layer)" lines.
func historyOf(t *testing.T, img v1.Image) []string {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, h := range cf.History {
		out = append(out, fmt.Sprintf("%s (empty %v, comment %q)", h.CreatedBy, h.EmptyLayer, h.Comment))
	}
	return out
}

// entriesOf returns each entry of img's flattened filesystem: its type,
// mode, owner, link target and content digest.
func entriesOf(t *testing.T, img v1.Image) map[string]string {
	t.Helper()
	out := map[string]string{}
	testenv.WalkImage(t, img, func(path string, h *tar.Header, r io.Reader) {
		d := sha256.New()
		if _, err := io.Copy(d, r); err != nil {
			t.Fatal(err)
		}
		out[path] = fmt.Sprintf("%c %o %d:%d %s %x", h.Typeflag, h.Mode, h.Uid, h.Gid, h.Linkname, d.Sum(nil)[:8])
	})
	return out
}

func mergedKeys(a, b map[string]string) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}
