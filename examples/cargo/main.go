// Command cargo shows the cargo preset: it builds a small workspace of two
// crates, then changes the top crate and builds again. With cache.Cargo(),
// the target directory is a cache mount, so the second build recompiles
// only the changed crate ("Compiling app" but no "Compiling greeting" in
// cargo's output). The crates use no registry; with dependencies from
// crates.io, the registry cache would keep their downloads too.
//
// Run it with a local builder set up for it:
//
//	go run ./internal/cmd/withenv -- go run ./examples/cargo
//
// It reads BUILDKIT_HOST and LARDER_DEBIAN_IMAGE (default debian:bookworm).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/larder-build/larder/build"
	"github.com/larder-build/larder/cache"
	"github.com/larder-build/larder/remote"
)

// workspace writes a workspace whose app prints message, with a path
// dependency on the greeting crate. The files that do not change keep one
// time, as files from a checkout or a bind mount would: cargo tells a
// changed path dependency by its files' times.
func workspace(message string) string {
	return fmt.Sprintf(`set -e; mkdir -p /src/app/src /src/greeting/src; cd /src
printf '[workspace]\nmembers = ["app", "greeting"]\n' > Cargo.toml
printf '[package]\nname = "greeting"\nversion = "0.1.0"\nedition = "2021"\n' > greeting/Cargo.toml
printf 'pub fn hello() -> &'"'"'static str { "hello" }\n' > greeting/src/lib.rs
touch -d @1600000000 Cargo.toml greeting/Cargo.toml greeting/src/lib.rs
printf '[package]\nname = "app"\nversion = "0.1.0"\nedition = "2021"\n[dependencies]\ngreeting = { path = "../greeting" }\n' > app/Cargo.toml
printf 'fn main() { println!("{} %s", greeting::hello()); }\n' > app/src/main.rs
cargo build --release && cp "$CARGO_TARGET_DIR/release/app" /usr/local/bin/app && app`, message)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "cargo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	b, err := remote.Auto(ctx)
	if err != nil {
		return err
	}
	defer b.Close()
	base := os.Getenv("LARDER_DEBIAN_IMAGE")
	if base == "" {
		base = "debian:bookworm"
	}
	withCargo := build.Image(base).
		Run("apt-get update && apt-get install -y --no-install-recommends cargo", cache.Apt())
	for _, msg := range []string{"world", "again"} {
		if _, err := build.Solve(ctx, b, withCargo.Run(workspace(msg), cache.Cargo()), build.Progress(os.Stderr, "plain")); err != nil {
			return err
		}
	}
	fmt.Println("the second build's output shows only app recompiled")
	return nil
}
