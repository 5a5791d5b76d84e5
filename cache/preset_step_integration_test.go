package cache_test

import (
	"strings"
	"testing"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/cache"
	"github.com/larder-build/larder/internal/testenv"
)

// A preset follows the image it runs on: the cargo preset takes the
// CARGO_HOME the base image's configuration sets.
func TestCargoPresetFollowsTheImagesCargoHome(t *testing.T) {
	env, bb := presetDebian(t)
	n := presetNonce()
	base := env.Registry + "/test/cargo-home:" + n
	if _, err := build.Solve(presetCtx(t), env.Builder, build.Image(bb).Env("CARGO_HOME", "/usr/local/cargo"), build.Push(base)); err != nil {
		t.Fatal(err)
	}
	step := build.Image(base).Run("mkdir /out && echo $CARGO_HOME > /out/home.txt && test -d /usr/local/cargo/registry && test -d /usr/local/cargo/git/db && echo mounted > /out/ok.txt # "+n,
		cache.Cargo(cache.Project("cargo-home-"+n)))
	files, _, lines := presetFiles(t, env, step)
	if files["home.txt"] != "/usr/local/cargo\n" || files["ok.txt"] != "mounted\n" {
		t.Errorf("CARGO_HOME %q, caches mounted %q; output:\n%s", files["home.txt"], files["ok.txt"], strings.Join(lines, "\n"))
	}
}

// After User("1000:1000"), whose home is /home/app in the base image's
// passwd, the npm preset's cache is /home/app/.npm, owned by 1000:1000,
// and npm ci as that user fills it and installs from it offline.
func TestNpmPresetFollowsTheStepsUser(t *testing.T) {
	env, tools := toolStage(t)
	n := presetNonce()
	base := env.Registry + "/test/npm-user:" + n
	pkg := `{"name": "app", "version": "1.0.0", "private": true, "dependencies": {"is-number": "7.0.0"}}`
	withUser := tools.Run("useradd -u 1000 -U -m -d /home/app app && mkdir /app && cd /app && printf '%s' '"+pkg+"' > package.json && "+
		"npm install --package-lock-only --no-audit --no-fund && rm -rf /root/.npm && chown -R 1000:1000 /app && mkdir -m 777 /out", hostTrust(t)...)
	if _, err := build.Solve(presetCtx(t), env.Builder, withUser, build.Push(base)); err != nil {
		t.Fatal(err)
	}
	npm := cache.Npm(cache.Project("npm-user-" + n))
	app := build.Image(base).User("1000:1000").Dir("/app")
	first := app.Run("npm ci --loglevel=http --no-audit --no-fund && stat -c '%u:%g %n' $npm_config_cache $npm_config_cache/_cacache > /out/cache.txt # "+n,
		append(hostTrust(t), npm)...)
	files, res, lines := presetFiles(t, env, first)
	if got := files["cache.txt"]; got != "1000:1000 /home/app/.npm\n1000:1000 /home/app/.npm/_cacache\n" {
		t.Errorf("the cache, as the step sees it: %q; output:\n%s", got, strings.Join(lines, "\n"))
	}
	if down, _ := npmFetches(lines); len(down) != 1 {
		t.Errorf("npm ci downloaded %v, want is-number", down)
	}
	for _, w := range res.Report.Warnings {
		t.Errorf("warning: %s", w)
	}
	// The cache holds what npm ci fetched: offline, it installs from it.
	second := app.Run("rm -rf node_modules && npm ci --offline --no-audit --no-fund && test -f node_modules/is-number/package.json && echo ok > /out/ok.txt # "+n,
		append(hostTrust(t), npm)...)
	if files, _, lines := presetFiles(t, env, second); files["ok.txt"] != "ok\n" {
		t.Errorf("npm ci --offline did not install from the cache:\n%s", strings.Join(lines, "\n"))
	}
}

// A user an earlier step made, whom the base image does not know: the
// preset can't tell the user's home or ids, and the report says so.
func TestPresetSaysWhenItCannotTellTheUser(t *testing.T) {
	env, deb := presetDebian(t)
	n := presetNonce()
	res, _ := presetSolve(t, env, build.Image(deb).Run("useradd ghost # "+n).User("ghost").Run("true # "+n, cache.Npm(cache.Project("npm-ghost-"+n))))
	found := 0
	for _, w := range res.Report.Warnings {
		if strings.Contains(w, `the step runs as "ghost"`) {
			found++
		}
	}
	if found != 2 {
		t.Errorf("warnings %q, want two about the home and ids of ghost", res.Report.Warnings)
	}
}

// With DockerfileIDs, a Larder step and a Dockerfile's RUN that mounts a
// cache at the same target share it on the builder.
func TestDockerfileIDsShareACacheWithADockerfile(t *testing.T) {
	env := testenv.Get(t)
	bb, err := env.Busybox(presetCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	n := presetNonce()
	npm := cache.Npm(cache.DockerfileIDs())
	if got := npm.Caches()[0].ID; got != "//root/.npm" {
		t.Errorf("id %q, want the Dockerfile's //root/.npm", got)
	}
	step := build.Image(bb).Run("mkdir -p /root/.npm/"+n+" && echo from larder > /root/.npm/"+n+"/marker", npm)
	if _, err := build.Solve(presetCtx(t), env.Builder, step); err != nil {
		t.Fatal(err)
	}
	df := build.Dockerfile([]byte("FROM "+bb+"\nRUN --mount=type=cache,target=/root/.npm mkdir /out && cat /root/.npm/"+n+"/marker > /out/seen\n"), build.Scratch())
	files, _, lines := presetFiles(t, env, df)
	if files["seen"] != "from larder\n" {
		t.Errorf("the Dockerfile's RUN read %q from the cache; output:\n%s", files["seen"], strings.Join(lines, "\n"))
	}
}
