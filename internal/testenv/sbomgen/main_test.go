package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func TestRunWritesStatements(t *testing.T) {
	tmp := t.TempDir()
	core := filepath.Join(tmp, "src", "core", "sbom")
	extras := filepath.Join(tmp, "src", "extras")
	out := filepath.Join(tmp, "out")
	for path, body := range map[string]string{
		filepath.Join(core, "hi"):                        "hi\n",
		filepath.Join(core, "bin", "tool"):               "#!/bin/sh\n",
		filepath.Join(extras, "sbom-context", "ctxfile"): "context\n",
	} {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("tool", filepath.Join(core, "bin", "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{envSource: core, envExtras: extras, envDestination: out}
	now := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := run(func(k string) string { return env[k] }, now); err != nil {
		t.Fatal(err)
	}

	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"sbom-context.spdx.json", "sbom.spdx.json"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("destination holds %v, want %v", names, want)
	}

	stmt := readStatement(t, filepath.Join(out, "sbom.spdx.json"))
	if stmt.Type != statementType || stmt.PredicateType != predicateSPDX || len(stmt.Subject) != 0 {
		t.Errorf("statement header = %q %q %v", stmt.Type, stmt.PredicateType, stmt.Subject)
	}
	doc := stmt.Predicate
	if doc.SPDXVersion != "SPDX-2.3" || doc.SPDXID != "SPDXRef-DOCUMENT" || doc.Name != "sbom" || doc.CreationInfo.Created != "2024-01-02T03:04:05Z" {
		t.Errorf("document header = %+v", doc)
	}
	var got []string
	for _, f := range doc.Files {
		got = append(got, f.FileName)
	}
	if want := []string{"/bin/tool", "/hi"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("files = %v, want %v (regular files only)", got, want)
	}
	sum := sha256.Sum256([]byte("hi\n"))
	if c := doc.Files[1].Checksums; len(c) != 2 || c[1] != (checksum{"SHA256", hex.EncodeToString(sum[:])}) || c[0].Algorithm != "SHA1" {
		t.Errorf("/hi checksums = %v", c)
	}
	if len(doc.Relationships) != 2 || doc.Relationships[1] != (relationship{"SPDXRef-DOCUMENT", "DESCRIBES", doc.Files[1].SPDXID}) {
		t.Errorf("relationships = %v", doc.Relationships)
	}

	extra := readStatement(t, filepath.Join(out, "sbom-context.spdx.json")).Predicate
	if extra.Name != "sbom-context" || len(extra.Files) != 1 || extra.Files[0].FileName != "/ctxfile" {
		t.Errorf("extra document = %+v", extra)
	}
	if extra.DocumentNamespace == doc.DocumentNamespace {
		t.Errorf("both documents have namespace %s", doc.DocumentNamespace)
	}
}

func TestRunNeedsTheProtocolsVariables(t *testing.T) {
	if err := run(func(string) string { return "" }, time.Now()); err == nil {
		t.Fatal("run without BUILDKIT_SCAN_SOURCE succeeded")
	}
}

func readStatement(t *testing.T, path string) statement {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var stmt statement
	if err := json.Unmarshal(data, &stmt); err != nil {
		t.Fatal(err)
	}
	return stmt
}
