// Command sbomgen is a small SBOM generator that follows BuildKit's SBOM
// scanner protocol, for the integration-test environment (see
// testenv.Env.SBOMGenerator), where the default generator image
// (docker/buildkit-syft-scanner) can't be pulled.
//
// BuildKit runs the generator image's entrypoint with the root filesystem to
// scan mounted read-only at $BUILDKIT_SCAN_SOURCE (/run/src/core/sbom), any
// extra filesystems (build context, stages marked with
// BUILDKIT_SBOM_SCAN_STAGE) in directories under
// $BUILDKIT_SCAN_SOURCE_EXTRAS (/run/src/extras/sbom-NAME), and an empty
// directory at $BUILDKIT_SCAN_DESTINATION (/run/out). For each scanned
// filesystem, sbomgen writes NAME.spdx.json there (NAME being the base name
// of the scanned directory: "sbom" for the core one, as BuildKit expects):
// an in-toto statement, with no subject (BuildKit fills in the image), whose
// predicate is an SPDX 2.3 JSON document listing every regular file, with its
// SHA1 (which SPDX requires) and SHA256 checksums. Symbolic links,
// directories and special files are not listed, and there are no packages:
// sbomgen knows no package manager.
package main

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// The protocol's environment variables, as BuildKit sets them
// (frontend/attestations/sbom/sbom.go).
const (
	envSource      = "BUILDKIT_SCAN_SOURCE"
	envExtras      = "BUILDKIT_SCAN_SOURCE_EXTRAS"
	envDestination = "BUILDKIT_SCAN_DESTINATION"
)

const (
	statementType = "https://in-toto.io/Statement/v0.1"
	predicateSPDX = "https://spdx.dev/Document"
	toolName      = "larder-sbomgen"
)

func main() {
	if err := run(os.Getenv, time.Now()); err != nil {
		fmt.Fprintln(os.Stderr, "sbomgen:", err)
		os.Exit(1)
	}
}

// run scans the filesystems the environment names and writes one statement
// for each into the destination.
func run(getenv func(string) string, now time.Time) error {
	src, dest := getenv(envSource), getenv(envDestination)
	if src == "" || dest == "" {
		return fmt.Errorf("%s and %s must be set (is this running as a BuildKit SBOM generator?)", envSource, envDestination)
	}
	targets := []string{src}
	if extras := getenv(envExtras); extras != "" {
		entries, err := os.ReadDir(extras)
		if err != nil {
			return err
		}
		for _, e := range entries {
			targets = append(targets, filepath.Join(extras, e.Name()))
		}
	}
	for _, target := range targets {
		name := filepath.Base(target)
		doc, err := scan(target, name, now)
		if err != nil {
			return fmt.Errorf("scanning %s: %w", target, err)
		}
		out := filepath.Join(dest, name+".spdx.json")
		if err := writeStatement(out, doc); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "sbomgen: %s: %d files -> %s\n", target, len(doc.Files), out)
	}
	return nil
}

// statement is an in-toto statement (ITE-6) as BuildKit decodes it.
type statement struct {
	Type          string    `json:"_type"`
	PredicateType string    `json:"predicateType"`
	Subject       []subject `json:"subject"`
	Predicate     *document `json:"predicate"`
}

type subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// document is the part of an SPDX 2.3 document (JSON serialization) that
// sbomgen fills in.
type document struct {
	SPDXVersion       string         `json:"spdxVersion"`
	DataLicense       string         `json:"dataLicense"`
	SPDXID            string         `json:"SPDXID"`
	Name              string         `json:"name"`
	DocumentNamespace string         `json:"documentNamespace"`
	Comment           string         `json:"comment,omitempty"`
	CreationInfo      creationInfo   `json:"creationInfo"`
	Files             []file         `json:"files"`
	Relationships     []relationship `json:"relationships"`
}

type creationInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type file struct {
	FileName         string     `json:"fileName"`
	SPDXID           string     `json:"SPDXID"`
	Checksums        []checksum `json:"checksums"`
	LicenseConcluded string     `json:"licenseConcluded"`
	CopyrightText    string     `json:"copyrightText"`
}

type checksum struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"checksumValue"`
}

type relationship struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

// scan walks root (without following symbolic links) and describes its
// regular files, named by their absolute path inside root.
func scan(root, name string, now time.Time) (*document, error) {
	doc := &document{
		SPDXVersion: "SPDX-2.3",
		DataLicense: "CC0-1.0",
		SPDXID:      "SPDXRef-DOCUMENT",
		Name:        name,
		Comment:     "Regular files only: symbolic links, directories and special files are not listed.",
		CreationInfo: creationInfo{
			Created:  now.UTC().Format(time.RFC3339),
			Creators: []string{"Tool: " + toolName},
		},
		Files:         []file{},
		Relationships: []relationship{},
	}
	// The namespace must be unique to this document: derive it from what it
	// lists.
	listing := sha256.New()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		sum1, sum256, err := hashFile(p)
		if err != nil {
			return err
		}
		f := file{
			FileName: "/" + filepath.ToSlash(rel),
			SPDXID:   "SPDXRef-File-" + strconv.Itoa(len(doc.Files)+1),
			Checksums: []checksum{
				{Algorithm: "SHA1", Value: sum1},
				{Algorithm: "SHA256", Value: sum256},
			},
			LicenseConcluded: "NOASSERTION",
			CopyrightText:    "NOASSERTION",
		}
		doc.Files = append(doc.Files, f)
		doc.Relationships = append(doc.Relationships, relationship{Element: doc.SPDXID, Type: "DESCRIBES", Related: f.SPDXID})
		fmt.Fprintf(listing, "%s\x00%s\n", f.FileName, sum256)
		return nil
	})
	if err != nil {
		return nil, err
	}
	doc.DocumentNamespace = "https://larder.invalid/sbomgen/" + name + "-" + hex.EncodeToString(listing.Sum(nil))
	return doc, nil
}

func hashFile(p string) (sum1, sum256 string, err error) {
	f, err := os.Open(p)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	h1, h256 := sha1.New(), sha256.New()
	if _, err := io.Copy(io.MultiWriter(h1, h256), f); err != nil {
		return "", "", err
	}
	return hex.EncodeToString(h1.Sum(nil)), hex.EncodeToString(h256.Sum(nil)), nil
}

// writeStatement writes doc, wrapped in an in-toto statement, to path.
func writeStatement(path string, doc *document) error {
	stmt := statement{
		Type:          statementType,
		PredicateType: predicateSPDX,
		Subject:       []subject{},
		Predicate:     doc,
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	err = json.NewEncoder(f).Encode(stmt)
	return errors.Join(err, f.Close())
}
