// Command larder-cache-helper packs and restores persisted cache mounts on
// a BuildKit builder. A build step runs it with the cache mounted, in a
// root filesystem that holds nothing but this program:
//
//	larder-cache-helper restore -cache DIR -index FILE LAYER...
//	larder-cache-helper save -cache DIR [-index FILE] -out OUT [-full] [-leave a,b,...]
//
// restore applies the gzip-compressed tar files LAYER, oldest first, into
// DIR and writes the index of what they hold to FILE; save writes the
// entries of DIR that changed since (all of them with -full) to
// OUT/layer.tar.gz, and its description to OUT/layer.json. Each prints one
// summary line. See package cachehelper for the details.
//
// On failure it prints one line on stderr and exits with status 1.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/larder-build/larder/internal/cachehelper"
)

const usage = `usage:
  larder-cache-helper restore -cache DIR -index FILE LAYER...
  larder-cache-helper save -cache DIR [-index FILE] -out OUT [-full] [-leave a,b,...]
`

func main() {
	summary, err := run(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(os.Stderr, usage)
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "larder-cache-helper: %v\n", err)
		os.Exit(1)
	}
	fmt.Println(summary)
}

// run runs the command args and returns its summary line.
func run(args []string) (string, error) {
	if len(args) == 0 {
		return "", errors.New(`no command: want "restore" or "save" (-h for usage)`)
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cache := fs.String("cache", "", "the cache `directory`")
	index := fs.String("index", "", "the index `file`")
	switch args[0] {
	case "restore":
		if err := fs.Parse(args[1:]); err != nil {
			return "", fmt.Errorf("%s: %w", args[0], err)
		}
		switch {
		case *cache == "":
			return "", errors.New("restore: -cache is required")
		case *index == "":
			return "", errors.New("restore: -index is required")
		}
		res, err := cachehelper.Restore(cachehelper.RestoreOptions{
			Cache:  *cache,
			Index:  *index,
			Layers: fs.Args(),
			Log:    os.Stderr,
		})
		return res.String(), err
	case "save":
		out := fs.String("out", "", "the output `directory`")
		full := fs.Bool("full", false, "pack every entry, changed or not")
		leave := fs.String("leave", "", "comma-separated `paths` to leave out")
		if err := fs.Parse(args[1:]); err != nil {
			return "", fmt.Errorf("%s: %w", args[0], err)
		}
		switch {
		case *cache == "":
			return "", errors.New("save: -cache is required")
		case *out == "":
			return "", errors.New("save: -out is required")
		case fs.NArg() > 0:
			return "", fmt.Errorf("save: unexpected argument %q", fs.Arg(0))
		}
		var paths []string
		if *leave != "" {
			paths = strings.Split(*leave, ",")
		}
		res, err := cachehelper.Save(cachehelper.SaveOptions{
			Cache: *cache,
			Index: *index,
			Out:   *out,
			Full:  *full,
			Leave: paths,
			Log:   os.Stderr,
		})
		return res.String(), err
	case "-h", "-help", "--help", "help":
		return "", flag.ErrHelp
	default:
		return "", fmt.Errorf("unknown command %q: want \"restore\" or \"save\"", args[0])
	}
}
