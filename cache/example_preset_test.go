package cache_test

import (
	"context"
	"fmt"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/cache"
)

var (
	linuxAMD64 = ocispecs.Platform{OS: "linux", Architecture: "amd64"}
	linuxARM64 = ocispecs.Platform{OS: "linux", Architecture: "arm64"}
)

func ExampleApt() {
	apt := cache.Apt(cache.Project("shop"))

	// A stage takes the preset like a mount; the build package gives it
	// the platform of the step, which names its caches.
	img := build.Image("debian:bookworm").
		Run("apt-get update && apt-get install -y --no-install-recommends gcc", apt)
	fmt.Println("stage:", img.Err())

	for _, c := range apt.For(linuxAMD64).Caches() {
		fmt.Println(c.Target, c.Sharing, c.ID, c.Regenerable)
	}
	for _, f := range apt.Files() {
		fmt.Printf("%s %q\n", f.Path, f.Content)
	}
	// Output:
	// stage: <nil>
	// /var/cache/apt locked larder/shop/apt/var/cache/apt@linux/amd64 [pkgcache.bin srcpkgcache.bin]
	// /var/lib/apt locked larder/shop/apt/var/lib/apt@linux/amd64 []
	// /etc/apt/apt.conf.d/docker-clean ""
	// /etc/apt/apt.conf.d/larder-keep-cache "APT::Keep-Downloaded-Packages \"true\";\nBinary::apt::APT::Keep-Downloaded-Packages \"true\";\n"
	// /etc/dpkg/dpkg.cfg.d/larder-unsafe-io "force-unsafe-io\n"
}

func ExamplePip() {
	pip := cache.Pip()
	fmt.Println(pip.Env())
	for _, m := range pip.For(linuxAMD64).Mounts() {
		fmt.Println(m)
	}
	// Output:
	// [PIP_CACHE_DIR=/root/.cache/pip]
	// type=cache,target=/root/.cache/pip,id=larder/default/pip/root/.cache/pip@linux/amd64
}

func ExampleNpm() {
	// For a step that runs as the user app (uid 1000), whose home is
	// /home/app: its cache is in its home, and owned by it.
	npm := cache.Npm(cache.Home("/home/app"), cache.Owner(1000, 1000))
	fmt.Println(npm.Env())
	for _, m := range npm.For(linuxAMD64).Mounts() {
		fmt.Println(m)
	}
	// Output:
	// [npm_config_cache=/home/app/.npm]
	// type=cache,target=/home/app/.npm,id=larder/default/npm/home/app/.npm@linux/amd64,uid=1000,gid=1000
}

func ExampleGo() {
	// Modules are the same files on every platform: share them.
	gop := cache.Go(cache.Project("shop"), cache.AcrossPlatforms("/go/pkg/mod"))
	fmt.Println(gop.Env())
	for _, pl := range []ocispecs.Platform{linuxAMD64, linuxARM64} {
		for _, c := range gop.For(pl).Caches() {
			fmt.Println(c.Target, c.ID)
		}
	}
	// Output:
	// [GOCACHE=/root/.cache/go-build GOMODCACHE=/go/pkg/mod]
	// /go/pkg/mod larder/shop/go/go/pkg/mod
	// /root/.cache/go-build larder/shop/go/root/.cache/go-build@linux/amd64
	// /go/pkg/mod larder/shop/go/go/pkg/mod
	// /root/.cache/go-build larder/shop/go/root/.cache/go-build@linux/arm64
}

func ExampleCargo() {
	// The official rust images keep CARGO_HOME in /usr/local/cargo.
	cargo := cache.Cargo(cache.Project("shop"), cache.CargoHome("/usr/local/cargo"), cache.TargetDir("/cache/target"))
	fmt.Println(cargo.Env())
	for _, c := range cargo.For(linuxAMD64).Caches() {
		fmt.Println(c.Target, c.Sharing)
	}

	// The target directory is a cache, not part of the image: copy the
	// binary out in the same step.
	img := build.Image("rust:1").Dir("/src").
		Run(`cargo build --release && cp "$CARGO_TARGET_DIR/release/app" /usr/local/bin/`, cargo)
	fmt.Println("stage:", img.Err())
	// Output:
	// [CARGO_HOME=/usr/local/cargo CARGO_TARGET_DIR=/cache/target]
	// /usr/local/cargo/registry shared
	// /usr/local/cargo/git/db shared
	// /cache/target locked
	// stage: <nil>
}

func ExamplePreset_Warnings() {
	pip, apt := cache.Pip(), cache.Apt()
	for _, w := range pip.Warnings([]string{"/bin/sh", "-c", "pip install --no-cache-dir -r requirements.txt"}) {
		fmt.Println(w)
	}
	for _, w := range apt.Warnings([]string{"/bin/sh", "-c", "apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*"}) {
		fmt.Println(w)
	}
	// Output:
	// pip preset: --no-cache-dir turns pip's cache off, so the cache at /root/.cache/pip saves nothing: leave it out (the cache is not part of the image, so it does not make the image bigger)
	// apt preset: "rm -rf /var/lib/apt/lists/*" deletes what the cache at /var/lib/apt holds; the cache is not part of the image, so this saves no space and the next build downloads it again: leave it out
}

// On a raw llb.State.Run, a preset takes the platform that options given
// before it set, or one given with For.
func ExamplePreset_SetRunOption() {
	npm := cache.Npm()
	steps := map[string]llb.State{
		"no platform":    llb.Image("node:22").Run(llb.Shlex("npm ci"), npm).Root(),
		"llb.LinuxArm64": llb.Image("node:22").Run(llb.Shlex("npm ci"), llb.LinuxArm64, npm).Root(),
		"For":            llb.Image("node:22").Run(llb.Shlex("npm ci"), npm.For(linuxAMD64)).Root(),
	}
	for _, name := range []string{"no platform", "llb.LinuxArm64", "For"} {
		def, err := steps[name].Marshal(context.Background(), llb.LinuxAmd64)
		if err != nil {
			panic(err)
		}
		for _, dt := range def.Def {
			var op pb.Op
			if err := op.UnmarshalVT(dt); err != nil {
				panic(err)
			}
			for _, m := range op.GetExec().GetMounts() {
				if m.MountType == pb.MountType_CACHE {
					fmt.Printf("%s: %s %s\n", name, m.Dest, m.CacheOpt.ID)
				}
			}
		}
	}
	// Output:
	// no platform: /root/.npm larder/default/npm/root/.npm
	// llb.LinuxArm64: /root/.npm larder/default/npm/root/.npm@linux/arm64
	// For: /root/.npm larder/default/npm/root/.npm@linux/amd64
}
