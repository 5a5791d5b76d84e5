package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/moby/buildkit/client/llb"
)

// The node project's lockfiles pin what its package.json names, and v2's
// add left-pad to v1's and nothing else.
func TestNodeProjectLockfiles(t *testing.T) {
	for _, v := range []string{"v1", "v2"} {
		var pkg struct{ Dependencies map[string]string }
		b, err := nodeProject.ReadFile("testdata/node/" + v + "/package.json")
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &pkg); err != nil {
			t.Fatal(err)
		}
		if _, ok := pkg.Dependencies["left-pad"]; ok != (v == "v2") {
			t.Errorf("%s/package.json: left-pad in the dependencies is %v", v, ok)
		}
		for _, lock := range []struct {
			file   string
			pinned func(name, version string) string
		}{
			{"package-lock.json", func(n, ver string) string {
				return `"node_modules/` + n + `": {` + "\n" + `      "version": "` + ver + `"`
			}},
			{"yarn.lock", func(n, ver string) string { return n + "@" + ver + ":\n  version \"" + ver + "\"" }},
			{"pnpm-lock.yaml", func(n, ver string) string { return "  " + n + "@" + ver + ":\n" }},
		} {
			b, err := nodeProject.ReadFile("testdata/node/" + v + "/" + lock.file)
			if err != nil {
				t.Fatal(err)
			}
			for name, version := range pkg.Dependencies {
				if !strings.Contains(string(b), lock.pinned(name, version)) {
					t.Errorf("%s/%s does not pin %s@%s", v, lock.file, name, version)
				}
			}
			if v == "v1" && bytes.Contains(b, []byte("left-pad")) {
				t.Errorf("v1/%s has left-pad", lock.file)
			}
		}
	}
}

// The project reaches the steps as a bind mount that the definition
// carries.
func TestProjectMount(t *testing.T) {
	opt, err := projectMount()
	if err != nil {
		t.Fatal(err)
	}
	def, err := llb.Image("debian").Run(llb.Shlex("true"), opt).Root().Marshal(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var all []byte
	for _, d := range def.Def {
		all = append(all, d...)
	}
	for _, f := range []string{"/v1/package-lock.json", "/v2/yarn.lock", "/v2/pnpm-lock.yaml", projectDir} {
		if !bytes.Contains(all, []byte(f)) {
			t.Errorf("the definition has no %s", f)
		}
	}
}
