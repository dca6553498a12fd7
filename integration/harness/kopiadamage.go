package harness

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"time"

	kopiarepo "github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/blob/filesystem"
	"github.com/kopia/kopia/repo/manifest"
	"github.com/kopia/kopia/snapshot"
)

// How a Kopia snapshot manifest becomes unreadable, as found in kopia v0.22.3
// (repo/manifest/committed_manifest_manager.go, snapshot/manager.go):
//
// Manifests are stored in batches: each "m" content is a gzipped JSON list of entries, each entry
// carrying its labels (type, username, hostname, path) and its payload (the snapshot as JSON).
// Contents are encrypted and authenticated, packed into "q" pack blobs. FindManifests loads every
// "m" content; one that cannot be read or authenticated (a flipped byte, a missing pack blob)
// fails the whole listing, so no entry of the repository is listed: the adapter's whole load
// fails, every PVC is unknown (CorruptContent produces this). Only with
// KOPIA_IGNORE_MALFORMED_MANIFEST_CONTENTS set does kopia skip such a content, silently dropping
// its entries from the list.
//
// An entry that is listed but whose snapshot cannot be loaded (snapshot.LoadSnapshot fails) is
// therefore an entry whose payload does not decode as this kopia version's snapshot.Manifest,
// although its batch is authentic: what a writer with another manifest schema (a newer or
// patched kopia in the mover image) or a buggy writer leaves. No kopia CLI command writes such
// an entry, so AddUndecodableSnapshotManifest writes it with the kopia library, the way such a
// writer would, into a repository otherwise written by the real CLI.

// ManifestContent is one "m" content as `kopia content list --json` reports it.
type ManifestContent struct {
	ID         string `json:"contentID"`
	PackFile   string `json:"packFile"`
	PackOffset int64  `json:"packOffset"`
	Length     int64  `json:"length"`
}

// ManifestContents lists the repository's manifest contents with the real CLI.
func (k *KopiaCLI) ManifestContents() []ManifestContent {
	k.t.Helper()

	var out []ManifestContent
	if err := json.Unmarshal([]byte(k.Run("content", "list", "--prefix", "m", "--json")), &out); err != nil {
		k.t.Fatalf("kopia content list: %v", err)
	}

	return out
}

// SnapshotWithCorruptManifest snapshots dir as source with the real CLI, then flips one byte in
// the middle of every manifest content that snapshot wrote, in its pack blob (filesystem
// repositories only). The repository's manifest list can no longer be read.
func (k *KopiaCLI) SnapshotWithCorruptManifest(dir, source string) {
	k.t.Helper()

	before := map[string]bool{}
	for _, c := range k.ManifestContents() {
		before[c.ID] = true
	}

	k.Snapshot(dir, source)

	corrupted := 0

	for _, c := range k.ManifestContents() {
		if !before[c.ID] {
			k.CorruptContent(c)
			corrupted++
		}
	}

	if corrupted == 0 {
		k.t.Fatalf("kopia snapshot of %s wrote no new manifest content", source)
	}
}

// CorruptContent flips one byte in the middle of content c in its pack blob file.
func (k *KopiaCLI) CorruptContent(c ManifestContent) {
	k.t.Helper()

	var file string

	err := filepath.WalkDir(k.Path, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}

		rel, _ := filepath.Rel(k.Path, p)
		if strings.ReplaceAll(rel, string(filepath.Separator), "") == c.PackFile+".f" {
			file = p
		}

		return nil
	})
	if err != nil || file == "" {
		k.t.Fatalf("pack blob %s of content %s not found under %s: %v", c.PackFile, c.ID, k.Path, err)
	}

	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		k.t.Fatal(err)
	}
	defer f.Close()

	b := make([]byte, 1)
	at := c.PackOffset + c.Length/2

	if _, err := f.ReadAt(b, at); err != nil {
		k.t.Fatal(err)
	}

	if _, err := f.WriteAt([]byte{^b[0]}, at); err != nil {
		k.t.Fatal(err)
	}
}

// AddUndecodableSnapshotManifest writes, with the kopia library, one snapshot manifest entry
// for source ("user@host:/path") whose labels are those kopia writes but whose payload's
// startTime is not a time: FindManifests lists it, snapshot.LoadSnapshot fails on it
// (filesystem repositories only).
func (k *KopiaCLI) AddUndecodableSnapshotManifest(source string) {
	k.t.Helper()

	user, rest, _ := strings.Cut(source, "@")
	host, path, _ := strings.Cut(rest, ":")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	st, err := filesystem.New(ctx, &filesystem.Options{Path: k.Path}, false)
	if err != nil {
		k.t.Fatalf("open %s: %v", k.Path, err)
	}

	cfg := filepath.Join(k.t.TempDir(), "writer.config")
	if err := kopiarepo.Connect(ctx, cfg, st, k.Password, &kopiarepo.ConnectOptions{ //nolint:forbidigo // the harness writes a damaged repository with kopia as a client would; the oracle never connects this way
		ClientOptions: kopiarepo.ClientOptions{Hostname: "other-writer", Username: "other-writer"},
	}); err != nil {
		k.t.Fatalf("connect %s: %v", k.Path, err)
	}

	rep, err := kopiarepo.Open(ctx, cfg, k.Password, &kopiarepo.Options{DisableRepositoryLog: true, OnFatalError: func(error) {}})
	if err != nil {
		k.t.Fatalf("open %s: %v", k.Path, err)
	}
	defer rep.Close(ctx)

	labels := map[string]string{
		manifest.TypeLabelKey: snapshot.ManifestType, snapshot.UsernameLabel: user,
		snapshot.HostnameLabel: host, snapshot.PathLabel: path,
	}
	payload := json.RawMessage(`{"source":{"host":"` + host + `","userName":"` + user + `","path":"` + path + `"},` +
		`"startTime":"yesterday at two","endTime":"2026-11-20T02:00:04Z","stats":{"totalSize":1,"fileCount":1}}`)

	err = kopiarepo.WriteSession(ctx, rep, kopiarepo.WriteSessionOptions{Purpose: "undecodable manifest"},
		func(ctx context.Context, w kopiarepo.RepositoryWriter) error {
			_, err := w.PutManifest(ctx, labels, payload)
			return err
		})
	if err != nil {
		k.t.Fatalf("write manifest for %s: %v", source, err)
	}
}
