// Command larder-install builds buildkitd and buildctl of the BuildKit
// version Larder is built with into Larder's cache directory
// ($LARDER_CACHE/bin, else ~/.cache/larder/bin), where remote.Start,
// remote.Auto and buildtest find them:
//
//	go run github.com/larder-build/larder/cmd/larder-install@latest [-dir DIR] [-v]
//
// It needs the Go toolchain and the Go module proxy, and takes a few
// minutes the first time; it does nothing when the binaries are there.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/larder-build/larder/remote"
)

func main() {
	dir := flag.String("dir", "", "the directory to put the binaries in (default: Larder's cache directory's bin)")
	verbose := flag.Bool("v", false, "show what the go command prints")
	flag.Parse()
	var w io.Writer
	if *verbose {
		w = os.Stderr
	}
	got, err := remote.Install(context.Background(), *dir, w)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("buildkitd and buildctl %s are in %s\n", remote.BuildKitVersion, got)
}
