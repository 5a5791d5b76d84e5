package cache_test

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/larder-build/larder/cache"
)

// printAttrs prints attributes one per line, sorted by key.
func printAttrs(attrs map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		fmt.Printf("  %s=%s\n", k, attrs[k])
	}
}

func ExampleRegistry() {
	b := cache.Registry("registry.example.com/team/app:buildcache",
		cache.ModeMax,
		cache.Compression(cache.Zstd),
		cache.CompressionLevel(3),
	)
	fmt.Println(b)

	exp, err := b.ExportAttrs()
	if err != nil {
		panic(err)
	}
	fmt.Println("export:")
	printAttrs(exp)

	imp, err := b.ImportAttrs()
	if err != nil {
		panic(err)
	}
	fmt.Println("import:")
	printAttrs(imp)
	// Output:
	// type=registry,ref=registry.example.com/team/app:buildcache,mode=max,compression=zstd,compression-level=3
	// export:
	//   compression=zstd
	//   compression-level=3
	//   mode=max
	//   ref=registry.example.com/team/app:buildcache
	// import:
	//   ref=registry.example.com/team/app:buildcache
}

func ExampleRegistry_invalid() {
	b := cache.Registry("registry.example.com/team/App:buildcache", cache.Mode("maxx"))
	_, err := b.ExportAttrs()
	fmt.Println(err)
	// Output:
	// cache: registry backend: ref "registry.example.com/team/App:buildcache": invalid reference: repository can only contain the characters `abcdefghijklmnopqrstuvwxyz0123456789_-./`: team/App
	// cache: registry backend: mode "maxx": unknown mode (use cache.ModeMin or cache.ModeMax)
}

func ExampleLocal() {
	b := cache.Local("/var/cache/larder", cache.ModeMax, cache.Tag("main"))
	fmt.Println(b)

	exp, _ := b.ExportAttrs()
	fmt.Println("export:")
	printAttrs(exp)

	imp, _ := b.ImportAttrs()
	fmt.Println("import:")
	printAttrs(imp)
	// Output:
	// type=local,dest=/var/cache/larder,src=/var/cache/larder,mode=max,tag=main
	// export:
	//   dest=/var/cache/larder
	//   mode=max
	//   tag=main
	// import:
	//   src=/var/cache/larder
	//   tag=main
}

func ExampleInline() {
	b := cache.Inline()
	fmt.Println(b)

	// Inline cache is imported from the pushed image.
	_, err := b.ImportAttrs()
	fmt.Println(err)
	from := cache.Registry("registry.example.com/team/app:1.2")
	fmt.Println(from)
	// Output:
	// type=inline
	// cache: inline backend: cannot be imported: inline cache travels in the pushed image (import it with cache.Registry(imageRef))
	// type=registry,ref=registry.example.com/team/app:1.2,mode=min
}

func ExampleGHA() {
	// On a GitHub Actions runner, cache.GHA(cache.Scope("app"), cache.ModeMax)
	// reads the service URL and token from the environment. Here they are
	// given explicitly; the token is never shown.
	b := cache.GHA(
		cache.Scope("app"),
		cache.ModeMax,
		cache.Version(2),
		cache.URLV2("https://results-receiver.actions.githubusercontent.com/"),
		cache.Token("ghs_example"),
		cache.Timeout(5*time.Minute),
	)
	fmt.Println(b)
	// Output:
	// type=gha,scope=app,mode=max,timeout=5m0s,token=<redacted>,url_v2=https://results-receiver.actions.githubusercontent.com/,version=2
}

func ExampleS3() {
	b := cache.S3("build-cache", "eu-west-1",
		cache.Prefix("app/"),
		cache.Endpoint("http://minio.internal:9000"),
		cache.PathStyle(true),
		cache.Credentials("AKIAEXAMPLE", "secret-example", ""),
		cache.ModeMax,
	)
	fmt.Println(b)
	// Output:
	// type=s3,bucket=build-cache,region=eu-west-1,mode=max,access_key_id=<redacted>,endpoint_url=http://minio.internal:9000,prefix=app/,secret_access_key=<redacted>,use_path_style=true
}

func ExampleParseMode() {
	for _, s := range []string{"max", "maximum"} {
		m, err := cache.ParseMode(s)
		fmt.Printf("%q %v\n", m, err)
	}
	// Output:
	// "max" <nil>
	// "" cache: mode "maximum": unknown mode (use cache.ModeMin or cache.ModeMax)
}

func ExampleError() {
	_, err := cache.S3("build-cache", "", cache.UploadParallelism(0)).ExportAttrs()

	var e *cache.Error
	if errors.As(err, &e) {
		fmt.Printf("backend=%s option=%s reason=%q\n", e.Backend, e.Option, e.Reason)
	}
	fmt.Println(err)
	// Output:
	// backend=s3 option=region reason="must not be empty (give the bucket's region, such as \"eu-west-1\", or \"us-east-1\" for a service without regions)"
	// cache: s3 backend: region: must not be empty (give the bucket's region, such as "eu-west-1", or "us-east-1" for a service without regions)
	// cache: s3 backend: upload_parallelism "0": must be positive
}
