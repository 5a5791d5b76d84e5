package build

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// imageConfig is what a Stage adds to the exported image's configuration
// beyond what the llb state carries (env, working dir, user, platform).
type imageConfig struct {
	base     string             // the image the stage started from, "" for none
	root     *node              // the node of that image, nil for none
	platform *ocispecs.Platform // set by Platform on the stage or its image; nil: the solve's
	// basePlatform is the platform base was pulled for, when Image was
	// given one; nil: the solve's.
	basePlatform *ocispecs.Platform
	user         string // set by User; "" keeps the base image's
	entrypoint   []string
	cmd          []string
	labels       map[string]string
	// dockerfile names the Dockerfile stage the stage is built on, whose
	// image configuration is the base; nil for none.
	dockerfile *dockerfileKey
	ports      []string // set by Expose, as port/protocol
	volumes    []string
	health     *Health
	stopSignal string
	// history is the image's history after the base's.
	history []historyEntry
	// rawLayers is set when the stage is built on a raw llb.State ([From]),
	// whose layers Larder can't count: the builder writes the history.
	rawLayers bool
}

func (s Stage) cfg() imageConfig {
	if s.n == nil {
		return imageConfig{}
	}
	return s.n.config
}

// Entrypoint sets the exported image's entrypoint; with no arguments, the
// image has none (the base image's is cleared). It does not change any
// step or cache key.
func (s Stage) Entrypoint(args ...string) Stage {
	s = s.setting(fmt.Sprintf("ENTRYPOINT %q", args))
	s.n.config.entrypoint = append([]string{}, args...) // non-nil: set, even to nothing
	return s
}

// Cmd sets the exported image's default command; with no arguments, the
// image has none (the base image's is cleared). It does not change any step
// or cache key.
func (s Stage) Cmd(args ...string) Stage {
	s = s.setting(fmt.Sprintf("CMD %q", args))
	s.n.config.cmd = append([]string{}, args...) // non-nil: set, even to nothing
	return s
}

// Label sets a label of the exported image. It does not change any step or
// cache key.
func (s Stage) Label(key, value string) Stage {
	if key == "" {
		return s.withErr(fmt.Errorf("build: Label(%q): empty key (give a label key, such as \"org.opencontainers.image.source\")", key))
	}
	s = s.setting(fmt.Sprintf("LABEL %s=%s", key, value))
	labels := make(map[string]string, len(s.n.config.labels)+1)
	for k, v := range s.n.config.labels {
		labels[k] = v
	}
	labels[key] = value
	s.n.config.labels = labels
	return s
}

// imageConfig renders the exported image's configuration: the state's
// environment, working directory and user, the stage's entrypoint, command
// and labels, over the configuration of what the stage is built on: the
// Dockerfile's, as its conversion in e left it, or the base image's,
// resolved through r.
func (s Stage) imageConfig(ctx context.Context, e *marshalEnv, st llb.State, r llb.ImageMetaResolver, p ocispecs.Platform) ([]byte, error) {
	var img dockerspec.DockerOCIImage
	conf := s.cfg()
	env, err := st.Env(ctx, llb.Platform(p))
	if err != nil {
		return nil, err
	}
	dir, err := st.GetDir(ctx, llb.Platform(p))
	if err != nil {
		return nil, err
	}
	if df := e.dockerfiles[conf.dockerfile]; conf.dockerfile != nil && df != nil {
		// The Dockerfile's configuration, with what the steps after it
		// changed: its state also holds the build arguments, which are not
		// part of the image.
		img = *df.image
		img.Config.Labels = maps.Clone(img.Config.Labels)
		baseEnv, err := df.state.Env(ctx, llb.Platform(p))
		if err != nil {
			return nil, err
		}
		baseDir, err := df.state.GetDir(ctx, llb.Platform(p))
		if err != nil {
			return nil, err
		}
		img.Config.Env = overlayEnv(img.Config.Env, baseEnv, env)
		if dir != baseDir {
			img.Config.WorkingDir = dir
		}
	} else {
		if conf.base != "" {
			bp := &p
			if conf.basePlatform != nil {
				bp = conf.basePlatform
			}
			_, _, dt, err := r.ResolveImageConfig(ctx, conf.base, sourceresolver.Opt{
				ImageOpt: &sourceresolver.ResolveImageOpt{Platform: bp},
			})
			if err != nil {
				return nil, fmt.Errorf("resolving %s: %w", conf.base, err)
			}
			if err := json.Unmarshal(dt, &img); err != nil {
				return nil, fmt.Errorf("image config of %s: %w", conf.base, err)
			}
			img.History = baseHistory(img.History, len(img.RootFS.DiffIDs))
		}
		img.Config.Env = env.ToArray()
		img.Config.WorkingDir = dir
	}
	img.Platform = p
	// The builder sets the time: the last history entry's, or the solve's
	// SourceDateEpoch.
	img.Created = nil
	if conf.user != "" {
		img.Config.User = conf.user
	}
	if conf.entrypoint != nil {
		img.Config.Entrypoint = conf.entrypoint
		if conf.cmd == nil {
			img.Config.Cmd = nil // as in a Dockerfile, a new entrypoint resets the command
		}
	}
	if conf.cmd != nil {
		img.Config.Cmd = conf.cmd
	}
	if len(conf.labels) > 0 {
		if img.Config.Labels == nil {
			img.Config.Labels = map[string]string{}
		}
		for k, v := range conf.labels {
			img.Config.Labels[k] = v
		}
	}
	for _, p := range conf.ports {
		if img.Config.ExposedPorts == nil {
			img.Config.ExposedPorts = map[string]struct{}{}
		}
		img.Config.ExposedPorts[p] = struct{}{}
	}
	for _, v := range conf.volumes {
		if img.Config.Volumes == nil {
			img.Config.Volumes = map[string]struct{}{}
		}
		img.Config.Volumes[v] = struct{}{}
	}
	if h := conf.health; h != nil {
		img.Config.Healthcheck = &dockerspec.HealthcheckConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout,
			StartPeriod: h.StartPeriod, StartInterval: h.StartInterval, Retries: h.Retries}
	}
	if conf.stopSignal != "" {
		img.Config.StopSignal = conf.stopSignal
	}
	if conf.rawLayers {
		img.History = nil
	} else {
		img.History = slices.Clip(img.History)
		for _, h := range conf.history {
			img.History = append(img.History, ocispecs.History{CreatedBy: h.createdBy, EmptyLayer: !h.layer, Comment: historyComment})
		}
	}
	img.RootFS = ocispecs.RootFS{Type: "layers"}
	return json.Marshal(img)
}

// historyComment marks the history entries Larder writes.
const historyComment = "larder.build.v0"

// baseHistory returns the history of a base image with layers layers, with
// an entry added for each layer its history does not account for, so that
// the entries of the steps after it describe their own layers.
func baseHistory(h []ocispecs.History, layers int) []ocispecs.History {
	n := 0
	for _, e := range h {
		if !e.EmptyLayer {
			n++
		}
	}
	h = slices.Clip(h)
	for ; n < layers; n++ {
		h = append(h, ocispecs.History{Comment: "base image layer without history"})
	}
	return h
}

// overlayEnv returns the image environment list with each variable that now
// sets differently from base set as in now.
func overlayEnv(list []string, base, now *llb.EnvList) []string {
	list = slices.Clone(list)
	for _, k := range now.Keys() {
		v, _ := now.Get(k)
		if bv, ok := base.Get(k); ok && bv == v {
			continue
		}
		i := slices.IndexFunc(list, func(kv string) bool { return strings.SplitN(kv, "=", 2)[0] == k })
		if i < 0 {
			list = append(list, k+"="+v)
		} else {
			list[i] = k + "=" + v
		}
	}
	return list
}
