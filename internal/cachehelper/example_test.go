package cachehelper_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/larder-build/larder/internal/cachehelper"
)

// A cache packed on one builder, restored on the next, and saved again:
// the second layer holds only the file added since.
func Example() {
	tmp, err := os.MkdirTemp("", "cachehelper-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	cache := filepath.Join(tmp, "cache")
	os.MkdirAll(filepath.Join(cache, "pkgs"), 0o755)
	os.WriteFile(filepath.Join(cache, "pkgs", "a.deb"), []byte("package a"), 0o644)
	os.WriteFile(filepath.Join(cache, "lock"), nil, 0o644)

	first, err := cachehelper.Save(cachehelper.SaveOptions{
		Cache: cache,
		Out:   filepath.Join(tmp, "first"),
		Leave: []string{"lock"},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("first layer: %d entries, %d bytes\n", first.Files, first.Bytes)

	next := filepath.Join(tmp, "next")
	os.Mkdir(next, 0o755)
	index := filepath.Join(tmp, "index")
	restored, err := cachehelper.Restore(cachehelper.RestoreOptions{
		Cache:  next,
		Index:  index,
		Layers: []string{filepath.Join(tmp, "first", cachehelper.LayerFile)},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(restored)

	os.WriteFile(filepath.Join(next, "pkgs", "b.deb"), []byte("package b"), 0o644)
	second, err := cachehelper.Save(cachehelper.SaveOptions{
		Cache: next,
		Index: index,
		Out:   filepath.Join(tmp, "second"),
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("second layer: %d entries, %d bytes, of %d in the cache\n", second.Files, second.Bytes, second.CacheFiles)
	// Output:
	// first layer: 2 entries, 9 bytes
	// restored 1 files, 1 dirs, 0 symlinks; skipped 0 pre-existing; rejected 0
	// second layer: 1 entries, 9 bytes, of 3 in the cache
}
