//go:build unix

package cachehelper

import (
	"io/fs"
	"syscall"
)

// owner returns the numeric owner and group of the file info describes.
func owner(info fs.FileInfo) (uid, gid int) {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid), int(st.Gid)
	}
	return 0, 0
}
