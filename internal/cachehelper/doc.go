// Package cachehelper packs and restores the persisted cache mounts of a
// BuildKit builder. It is the logic of larder-cache-helper, a small static
// program that a build step runs with a cache mounted, in a root filesystem
// that holds nothing but the program: it needs no shell, no libc and no
// /tmp, and it never runs another program.
//
// Restore applies layers (gzip-compressed tar files) into a cache
// directory, in order, and writes an index of what they define. Files the
// builder already has win over the layers, a later layer overrides an
// earlier one, and nothing a layer holds is trusted: names that leave the
// directory, entries under a symbolic link, hard links, devices and sparse
// files (a few bytes that read as a file of any size) are refused,
// reported and skipped, so nothing is ever written outside the cache
// directory, and files never get the set-user-ID or set-group-ID bit
// (restored as root, a file takes its owner from the layer). Regular files are written under a temporary name
// (starting ".larder-tmp-") and renamed into place, so an interrupted
// restore never leaves a truncated file.
//
// Save compares the cache directory with that index and writes the entries
// that changed as a new layer, with a summary beside it (SaveResult). The
// layer is deterministic: the same cache contents give the same bytes, so
// the same digest.
//
// # Index format
//
// An index (version 1) is a gzip stream (compress/gzip, empty header) of
// JSON values, one a line: first {"version":1}, then one object for each
// path the layers define, sorted by path (byte order):
//
//	{"path":"a/b","type":"file","mode":420,"uid":0,"gid":0,"size":3,"mtime":1700000000123456789}
//	{"path":"c","type":"symlink","mode":511,"uid":0,"gid":0,"mtime":1700000000000000000,"link":"a/b"}
//
// The path is relative to the cache directory, with "/" separators; the
// type is "file", "dir" or "symlink"; mode holds the permission bits with
// the set-user-ID, set-group-ID and sticky bits (the low 12 bits of a tar
// header's mode); mtime is in nanoseconds since the Unix epoch; size is
// left out for directories and symbolic links, and link for anything but a
// symbolic link. The values are those of the layers' tar headers, not those
// of the files a builder already had.
//
// # Layer format
//
// A layer is a gzip stream (compress/gzip, BestSpeed, empty header) of a
// PAX tar archive: regular files, directories (named with a trailing "/")
// and symbolic links, named relative to the cache directory without a
// leading "./", in filepath.WalkDir order (each directory's entries sorted
// by name, a directory before its contents). Headers carry the numeric
// owner, the mode bits of the index, and the modification time in
// nanoseconds; no user or group names, access or change times.
package cachehelper
