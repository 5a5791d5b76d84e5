package build_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/solver/pb"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/cache"
)

func TestUnitDockerfileWarnings(t *testing.T) {
	for _, tc := range []struct {
		name, dockerfile string
		want             []string // substrings of the one warning; none: no warning
	}{{
		name: "lists removed under the apt lists cache",
		dockerfile: `FROM debian
RUN rm -f /etc/apt/apt.conf.d/docker-clean
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt,sharing=locked \
    apt-get update && apt-get install -y gcc && rm -rf /var/lib/apt/lists/*
`,
		want: []string{`Dockerfile:3: RUN "apt-get update`, `"rm -rf /var/lib/apt/lists/*" deletes what the cache at /var/lib/apt holds`},
	}, {
		name:       "pip told not to cache under the pip cache",
		dockerfile: "FROM python\nRUN --mount=type=cache,target=/root/.cache/pip pip install --no-cache-dir flask\n",
		want:       []string{`Dockerfile:2: RUN "pip install --no-cache-dir flask": pip preset: --no-cache-dir turns pip's cache off`},
	}, {
		name:       "lists removed when only the archives are a cache",
		dockerfile: "FROM debian\nRUN --mount=type=cache,target=/var/cache/apt apt-get update && apt-get install -y gcc && rm -rf /var/lib/apt/lists/*\n",
	}, {
		name:       "no cache mount",
		dockerfile: "FROM python\nRUN pip install --no-cache-dir flask\n",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			s := build.Dockerfile([]byte(tc.dockerfile), build.Scratch())
			if err := s.Err(); err != nil {
				t.Fatal(err)
			}
			got := s.Warnings()
			if len(got) != min(len(tc.want), 1) {
				t.Fatalf("warnings %q, want one with %q", got, tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(strings.Join(got, "\n"), w) {
					t.Errorf("warnings %q, want one with %q", got, w)
				}
			}
		})
	}
}

// The Dockerfile is converted by BuildKit's converter when the stage is
// marshalled, for the platform asked, with its build arguments and target;
// Larder's steps follow it on the same state.
func TestUnitDockerfileMarshal(t *testing.T) {
	df := `FROM busybox AS base
ARG TARGETARCH
ARG MODE=debug
RUN --mount=type=cache,target=/var/cache/thing,id=thing echo $TARGETARCH $MODE
FROM base AS other
RUN exit 1
FROM base
RUN echo last
`
	s := build.Dockerfile([]byte(df), build.Scratch(), build.BuildArg("MODE", "release"), build.Target("base")).
		Run("cat /etc/hostname", cache.Apt())
	g := uMarshalFor(t, s, "linux/arm64")
	run := g.exec(t, "echo $TARGETARCH $MODE").GetExec()
	if env := run.GetMeta().GetEnv(); !slices.Contains(env, "TARGETARCH=arm64") || !slices.Contains(env, "MODE=release") {
		t.Errorf("RUN's environment %q, want TARGETARCH=arm64 and MODE=release", env)
	}
	var cacheMount *pb.Mount
	for _, m := range run.GetMounts() {
		if m.GetMountType() == pb.MountType_CACHE {
			cacheMount = m
		}
	}
	// The frontend's id, as it names it.
	if cacheMount == nil || cacheMount.GetDest() != "/var/cache/thing" || cacheMount.GetCacheOpt().GetID() != "/thing" {
		t.Errorf("RUN's cache mount %+v", cacheMount)
	}
	for _, e := range g.execs() {
		if args := e.GetMeta().GetArgs(); slices.Contains(args, "exit 1") || slices.Contains(args, "echo last") {
			t.Errorf("a step of a stage Target left out was marshalled: %q", args)
		}
	}
	if g.exec(t, "cat /etc/hostname") == nil {
		t.Error("the step after the Dockerfile is not in the graph")
	}
}

func TestUnitDockerfileErrorHasTheLine(t *testing.T) {
	for _, tc := range []struct {
		dockerfile string
		line       int
		msg        string
	}{
		{"FROM busybox\n\nCOPY\n", 3, "COPY requires at least two arguments"},
		{"FROM busybox\nFOO bar\n", 2, "unknown instruction: FOO"},
		{"RUN true\n", 1, "no build stage"},
		{"# a comment\n\n", 2, "file with no instructions"},
	} {
		err := build.Dockerfile([]byte(tc.dockerfile), build.Scratch(), build.DockerfileName("ci/Dockerfile")).Err()
		var de *build.DockerfileError
		if !errors.As(err, &de) || de.Line != tc.line || de.File != "ci/Dockerfile" || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%q: %v (%+v), want line %d and %q", tc.dockerfile, err, de, tc.line, tc.msg)
		}
	}
}

// A Dockerfile stage can be another's named context; both convert in one
// marshalling.
func TestUnitDockerfileAsContext(t *testing.T) {
	inner := build.Dockerfile([]byte("FROM busybox\nRUN --mount=type=cache,target=/var/cache/apt echo inner > /inner\n"), build.Scratch())
	outer := build.Dockerfile([]byte("FROM busybox\nCOPY --from=tools /inner /inner\nRUN --mount=from=tools,target=/t cat /t/inner\n"), build.Scratch(), build.BuildContext("tools", inner))
	g := uMarshal(t, outer)
	g.exec(t, "echo inner > /inner")
	g.exec(t, "cat /t/inner")
}
