package build

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/moby/buildkit/client/llb"
	gateway "github.com/moby/buildkit/frontend/gateway/client"

	"github.com/larder-build/larder/mounts"
)

// account is a user of an image, from its /etc/passwd.
type account struct {
	name     string
	uid, gid int
	home     string
}

// accounts are the users and groups of an image.
type accounts struct {
	users  []account
	groups map[string]int // name: gid
}

// stepOf returns what the step with args on st, of a stage whose settings
// are conf, tells its options: its platform, environment and user, with
// the user's ids and home from the passwd and group files of the image the
// stage is built on, which the builder is asked for when it is there.
// Steps run as the stage's User, or as the user a Dockerfile they follow
// sets, else as root: llb does not take an image's user for its steps.
func (e *marshalEnv) stepOf(args []string, st llb.State, conf imageConfig) mounts.Step {
	s := mounts.Step{Args: args, Platform: e.platform, UID: -1, GID: -1, User: conf.user}
	if env, err := st.Env(e.ctx, llb.Platform(e.platform)); err == nil {
		s.Env = env.ToArray()
	}
	if df := e.dockerfiles[conf.dockerfile]; s.User == "" && conf.dockerfile != nil && df != nil {
		s.User = df.image.Config.User
	}
	root := conf.root
	if s.User == "" || s.User == "root" || s.User == "0" || s.User == "0:0" {
		s.UID, s.GID, s.Home = 0, 0, "/root"
	}
	name, group, _ := strings.Cut(s.User, ":")
	if uid, err := strconv.Atoi(name); err == nil && s.User != "" {
		s.UID = uid
		if group == "" {
			s.GID = uid
		}
	}
	if gid, err := strconv.Atoi(group); err == nil {
		s.GID = gid
	}
	if s.UID != 0 || s.Home == "" {
		if a := e.accountsOf(root); a != nil {
			for _, u := range a.users {
				if u.name == name || strconv.Itoa(u.uid) == name {
					s.UID, s.Home = u.uid, u.home
					if group == "" {
						s.GID = u.gid
					}
					break
				}
			}
			if gid, ok := a.groups[group]; ok {
				s.GID = gid
			}
		}
	}
	if home := s.Getenv("HOME"); strings.HasPrefix(home, "/") {
		s.Home = home
	}
	return s
}

// accountsOf returns the users and groups of the image the node root is,
// read through the builder once per marshalling; nil without a builder, or
// when root is not an image.
func (e *marshalEnv) accountsOf(root *node) *accounts {
	gc, ok := e.resolver.(gateway.Client)
	if !ok || root == nil {
		return nil
	}
	if a, ok := e.accounts[root]; ok {
		return a
	}
	a, err := readAccounts(e, gc, root)
	if err != nil {
		e.warn(fmt.Sprintf("reading the users of %s: %v", root.config.base, err))
	}
	e.accounts[root] = a
	return a
}

func readAccounts(e *marshalEnv, gc gateway.Client, root *node) (*accounts, error) {
	ctx := e.ctx
	def, err := Stage{n: root}.state(e).Marshal(ctx, llb.Platform(e.platform))
	if err != nil {
		return nil, err
	}
	res, err := gc.Solve(ctx, gateway.SolveRequest{Definition: def.ToPB()})
	if err != nil {
		return nil, err
	}
	ref, err := res.SingleRef()
	if err != nil {
		return nil, err
	}
	a := &accounts{groups: map[string]int{}}
	if dt, err := ref.ReadFile(ctx, gateway.ReadRequest{Filename: "/etc/passwd"}); err == nil {
		a.users = parsePasswd(dt)
	}
	if dt, err := ref.ReadFile(ctx, gateway.ReadRequest{Filename: "/etc/group"}); err == nil {
		for _, f := range colonLines(dt, 3) {
			if gid, err := strconv.Atoi(f[2]); err == nil {
				a.groups[f[0]] = gid
			}
		}
	}
	return a, nil
}

// parsePasswd reads the entries of an /etc/passwd file.
func parsePasswd(dt []byte) []account {
	var out []account
	for _, f := range colonLines(dt, 6) {
		uid, err1 := strconv.Atoi(f[2])
		gid, err2 := strconv.Atoi(f[3])
		if err1 == nil && err2 == nil {
			out = append(out, account{name: f[0], uid: uid, gid: gid, home: f[5]})
		}
	}
	return out
}

// colonLines splits each line of dt that is not a comment into its
// colon-separated fields, keeping lines with at least n of them.
func colonLines(dt []byte, n int) [][]string {
	var out [][]string
	sc := bufio.NewScanner(bytes.NewReader(dt))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if f := strings.Split(line, ":"); len(f) >= n {
			out = append(out, f)
		}
	}
	return out
}
