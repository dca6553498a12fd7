package kopia

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/repo"
)

// gz compresses doc as kopia stores a manifest content.
func gz(t testing.TB, doc string) []byte {
	t.Helper()

	var b bytes.Buffer

	w := gzip.NewWriter(&b)
	_, err := w.Write([]byte(doc))
	require.NoError(t, err)
	require.NoError(t, w.Close())

	return b.Bytes()
}

// Entries as kopia's manifest manager writes them (repo/manifest/serialized.go: id, labels,
// modified, deleted, data), with snapshot data as snapshot.Manifest marshals it.
const (
	idA = "d3a372ca9ce625d6296cdfb92d712497"
	idB = "2b6f1e36a074687295c1a90707ba21da"
	idC = "0123456789abcdef0123456789abcdef"

	snapA = `{"id":"` + idA + `","labels":{"hostname":"web","path":"/data","type":"snapshot","username":"app-backup"},` +
		`"modified":"2026-11-30T09:26:08.658475119Z","data":{"id":"","source":{"host":"web","userName":"app-backup","path":"/data"},` +
		`"description":"","startTime":"2026-01-02T07:00:00Z","endTime":"2026-01-02T07:01:00.5+01:00",` +
		`"stats":{"totalSize":1234,"excludedTotalSize":0,"fileCount":7,"cachedFiles":0},` +
		`"rootEntry":{"name":"data","type":"d","mode":"0755","obj":"k8b51","summ":{"size":1,"files":1,"maxTime":"2026-11-30T09:25:37Z"}}}}`
)

func TestParseManifestContent(t *testing.T) {
	cases := []struct {
		name string
		doc  string
		want []entry // src compared by value
		// err: the content as a whole is unreadable
		err     bool
		broken  []manifestKey
		oddText map[manifestKey]string
	}{
		{
			name: "snapshot",
			doc:  `{"entries":[` + snapA + `]}`,
			want: []entry{{
				key:     mustKey(idA),
				modTime: time.Date(2026, 11, 30, 9, 26, 8, 658475119, time.UTC).UnixNano(),
				start:   time.Date(2026, 1, 2, 7, 0, 0, 0, time.UTC).UnixNano(),
				end:     time.Date(2026, 1, 2, 6, 1, 0, 5e8, time.UTC).UnixNano(), // +01:00
				size:    1234, files: 7, flags: flagSnapshot,
				src: &repo.KopiaSource{UserName: "app-backup", Host: "web", Path: "/data"},
			}},
		},
		{
			name: "deletion marker, policy, checkpoint, whitespace and unknown keys",
			doc: "{ \"other\": [1, {\"x\": \"}\"}],\n \"entries\" : [\n" +
				`{"id":"` + idA + `","labels":null,"modified":"2026-11-30T10:00:00Z","deleted":true,"data":null},` + // as kopia writes one
				`{"id":"` + idB + `","labels":{"type":"policy","hostname":"web"},"modified":"2026-11-30T10:00:00Z","data":{"retention":{"keepLatest":3}}},` +
				`{"id":"` + idC + `","labels":{"type":"snapshot","username":"a","hostname":"b","path":"/c"},"modified":"2026-11-30T10:00:00Z",` +
				`"data":{"startTime":"2026-11-30T09:00:00Z","endTime":"2026-11-30T09:00:00Z","incomplete":"checkpoint","stats":{"totalSize":1,"fileCount":1}}}` +
				"\n ] }\n",
			want: []entry{
				{key: mustKey(idA), modTime: time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC).UnixNano(), flags: flagDeleted},
				{key: mustKey(idB), modTime: time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC).UnixNano()},
				{
					key: mustKey(idC), modTime: time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC).UnixNano(),
					start: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC).UnixNano(), end: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC).UnixNano(),
					size: 1, files: 1, flags: flagSnapshot | flagIncomplete, src: &repo.KopiaSource{UserName: "a", Host: "b", Path: "/c"},
				},
			},
		},
		{
			name: "escaped label values and an id that is not hex",
			doc: `{"entries":[{"id":"not-hex","labels":{"type":"snap\u0073hot","username":"a\"b","hostname":"web","path":"/d\\ata"},` +
				`"modified":"2026-11-30T10:00:00Z","data":{"startTime":"2026-11-30T09:00:00Z","endTime":null,"stats":{"totalSize":0,"fileCount":0}}}]}`,
			want: []entry{{
				key: keyOfString("not-hex"), modTime: time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC).UnixNano(),
				start: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC).UnixNano(), flags: flagSnapshot | flagOddID,
				src: &repo.KopiaSource{UserName: `a"b`, Host: "web", Path: `/d\ata`},
			}},
			oddText: map[manifestKey]string{keyOfString("not-hex"): "not-hex"},
		},
		{
			name: "snapshot whose data does not decode: broken, the rest is kept",
			doc: `{"entries":[{"id":"` + idA + `","labels":{"type":"snapshot","username":"u","hostname":"h","path":"/p"},` +
				`"modified":"2026-11-30T10:00:00Z","data":{"startTime":42}},` + snapA + `]}`,
			want: []entry{
				{key: mustKey(idA), modTime: time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC).UnixNano(), flags: flagSnapshot | flagBroken,
					src: &repo.KopiaSource{UserName: "u", Host: "h", Path: "/p"}},
				{key: mustKey(idA), modTime: time.Date(2026, 11, 30, 9, 26, 8, 658475119, time.UTC).UnixNano(),
					start: time.Date(2026, 1, 2, 7, 0, 0, 0, time.UTC).UnixNano(), end: time.Date(2026, 1, 2, 6, 1, 0, 5e8, time.UTC).UnixNano(),
					size: 1234, files: 7, flags: flagSnapshot, src: &repo.KopiaSource{UserName: "app-backup", Host: "web", Path: "/data"}},
			},
			broken: []manifestKey{mustKey(idA)},
		},
		{name: "empty entries", doc: `{"entries":[]}`},
		{name: "cut short", doc: `{"entries":[` + snapA[:200], err: true},
		{name: "not an object", doc: `[` + snapA + `]`, err: true},
		{name: "entry without id", doc: `{"entries":[{"labels":{}}]}`, err: true},
		{name: "modified is not a time", doc: `{"entries":[{"id":"` + idA + `","modified":"yesterday"}]}`, err: true},
		{name: "garbage after the document", doc: `{"entries":[]} {}`, err: true},
		{name: "missing comma", doc: `{"entries":[` + snapA + snapA + `]}`, err: true},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseManifestContent(gz(t, tc.doc))
			if tc.err {
				require.Error(t, err)
				return
			}

			require.NoError(t, err)
			require.Len(t, c.entries, len(tc.want))

			for i, want := range tc.want {
				got := c.entries[i]
				assert.Equal(t, want.src, got.src, "entry %d source", i)
				got.src, want.src = nil, nil
				assert.Equal(t, want, got, "entry %d", i)
			}

			for _, k := range tc.broken {
				assert.Error(t, c.broken[k])
			}

			assert.Len(t, c.broken, len(tc.broken))

			if tc.oddText != nil {
				assert.Equal(t, tc.oddText, c.oddIDs)
			}
		})
	}
}

func TestParseManifestContentRejectsDamagedCompression(t *testing.T) {
	data := gz(t, `{"entries":[`+snapA+`]}`)

	for name, damaged := range map[string][]byte{
		"truncated":   data[:len(data)-6],
		"not gzip":    []byte(`{"entries":[]}`),
		"bit flipped": flip(data, len(data)-12),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parseManifestContent(damaged)
			assert.Error(t, err)
		})
	}
}

func flip(b []byte, i int) []byte {
	out := bytes.Clone(b)
	out[i] ^= 0x40

	return out
}

func mustKey(id string) manifestKey {
	k, odd := keyOf([]byte(id))
	if odd {
		panic(id)
	}

	return k
}

func keyOfString(id string) manifestKey {
	k, _ := keyOf([]byte(id))
	return k
}

// snapshotEntry builds a snapshot manifest entry with the given id, modification and start
// times (minutes after a fixed instant).
func snapshotEntry(id string, modified, start int, user string, extra string) string {
	base := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	ts := func(m int) string { return base.Add(time.Duration(m) * time.Minute).Format(time.RFC3339Nano) }

	return `{"id":"` + id + `","labels":{"type":"snapshot","username":"` + user + `","hostname":"web","path":"/data"},"modified":"` + ts(modified) +
		`","data":{"startTime":"` + ts(start) + `","endTime":"` + ts(start) + `","stats":{"totalSize":1,"fileCount":1}` + extra + `}}`
}

func deletion(id string, modified int) string {
	base := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	return `{"id":"` + id + `","labels":null,"modified":"` + base.Add(time.Duration(modified)*time.Minute).Format(time.RFC3339Nano) + `","deleted":true,"data":null}`
}

// TestIndexMergesAsKopia: kopia merges manifest entries of every content by id, the latest
// modification winning, and drops ids whose latest entry is a deletion
// (repo/manifest/committed_manifest_manager.go, mergeEntryLocked and loadManifestContentsLocked).
func TestIndexMergesAsKopia(t *testing.T) {
	id := repo.DefaultKopiaIdentity()
	pvc := func(name string) repo.PVC { return repo.PVC{Namespace: "web", Name: name} }

	cases := []struct {
		name     string
		contents []string
		// snapshots per PVC name (its source is <name>-backup@web:/data), oldest first, by id
		want map[string][]string
		// unverifiable PVC names
		unverifiable []string
	}{
		{
			name:     "a deletion later than the snapshot removes it",
			contents: []string{snapshotEntry(idA, 1, 1, "a-backup", ""), deletion(idA, 2) + "," + snapshotEntry(idB, 2, 2, "a-backup", "")},
			want:     map[string][]string{"a": {idB}},
		},
		{
			name:     "a deletion earlier than the snapshot does not",
			contents: []string{deletion(idA, 1), snapshotEntry(idA, 2, 1, "a-backup", "")},
			want:     map[string][]string{"a": {idA}},
		},
		{
			name:     "the same entry in two contents (compaction under way) counts once",
			contents: []string{snapshotEntry(idA, 1, 1, "a-backup", ""), snapshotEntry(idA, 1, 1, "a-backup", "") + "," + snapshotEntry(idB, 1, 0, "a-backup", "")},
			want:     map[string][]string{"a": {idB, idA}},
		},
		{
			name:     "the latest entry of an id decides its source",
			contents: []string{snapshotEntry(idA, 1, 1, "a-backup", ""), snapshotEntry(idA, 3, 1, "b-backup", "")},
			want:     map[string][]string{"a": nil, "b": {idA}},
		},
		{
			name:         "only a checkpoint: unverifiable",
			contents:     []string{snapshotEntry(idA, 1, 1, "a-backup", `,"incomplete":"checkpoint"`)},
			want:         map[string][]string{"a": nil},
			unverifiable: []string{"a"},
		},
		{
			name: "a broken manifest makes its source unverifiable, and no other",
			contents: []string{snapshotEntry(idA, 1, 1, "a-backup", "") + "," +
				`{"id":"` + idB + `","labels":{"type":"snapshot","username":"a-backup","hostname":"web","path":"/data"},"modified":"2026-11-30T00:00:00Z","data":{"stats":{"fileCount":"many"}}}` +
				"," + snapshotEntry(idC, 1, 1, "c-backup", "")},
			want:         map[string][]string{"a": {idA}, "c": {idC}},
			unverifiable: []string{"a"},
		},
		{
			// An id kopia did not make (not 32 hex digits) keeps its text, and at an equal start
			// time snapshots sort by their ids' text, hex or not (repo.SortSnapshots).
			name: "ids that are not 32 hex digits keep their text",
			contents: []string{
				snapshotEntry("zz-restored-by-hand", 1, 1, "a-backup", "") + "," + snapshotEntry(idA, 1, 1, "a-backup", ""),
				snapshotEntry("00-imported", 1, 1, "a-backup", "") + "," + snapshotEntry("k", 1, 0, "a-backup", "") + "," +
					snapshotEntry(idC, 1, 1, "c-backup", ""),
			},
			want: map[string][]string{"a": {"k", "00-imported", idA, "zz-restored-by-hand"}, "c": {idC}},
		},
		{
			name:     "a broken manifest deleted later is gone",
			contents: []string{`{"id":"` + idB + `","labels":{"type":"snapshot","username":"a-backup","hostname":"web","path":"/data"},"modified":"2026-11-30T00:00:00Z","data":[]}`, deletion(idB, 5)},
			want:     map[string][]string{"a": nil},
		},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var contents []*manifestContent

			for _, doc := range tc.contents {
				c, err := parseManifestContent(gz(t, `{"entries":[`+doc+`]}`))
				require.NoError(t, err)

				contents = append(contents, c)
			}

			idx := newIndex(id, nil, contents)

			for name, ids := range tc.want {
				f, err := idx.Find(context.Background(), pvc(name))

				var got []string
				for _, s := range f.Snapshots {
					got = append(got, s.ID)
				}

				assert.Equal(t, ids, got, name)

				if contains(tc.unverifiable, name) {
					assert.ErrorIs(t, err, repo.ErrUnverifiable, name)
				} else {
					assert.NoError(t, err, name)
				}
			}
		})
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}

	return false
}

func FuzzParseRFC3339(f *testing.F) {
	for _, s := range []string{
		"2026-01-02T07:00:00Z", "2026-11-30T09:26:08.658475119Z", "2026-01-02T07:01:00.5+01:00", "2024-02-29T00:00:00-12:30",
		"2023-02-29T00:00:00Z", "2026-13-01T00:00:00Z", "2026-01-01T24:00:00Z", "2026-01-01T00:00:00.Z", "2026-01-01T00:00:00.1234567891Z",
		"2026-01-01 00:00:00Z", "0000-01-01T00:00:00Z",
	} {
		f.Add(s)
	}

	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseRFC3339([]byte(s))
		if !ok {
			return // the caller falls back to time.Parse
		}

		want, err := time.Parse(time.RFC3339Nano, s)
		require.NoError(t, err, "fast path accepted %q, time.Parse does not", s)
		assert.Equal(t, want.UnixNano(), got, s)
	})
}

// FuzzParseManifestContent: the scanner never panics, and on a document encoding/json accepts,
// it finds the same entries (ids and deletion flags) as encoding/json does.
func FuzzParseManifestContent(f *testing.F) {
	f.Add(`{"entries":[` + snapA + `]}`)
	f.Add(`{"entries":[` + deletion(idA, 1) + `,` + snapshotEntry(idB, 1, 1, "x", "") + `]}`)
	f.Add(`{"entries":[{"id":"x\"y","labels":{"type":"snapshot"},"modified":null,"data":{"a":"\\\"}"}}]}`)
	f.Add(`{"entries":[]}`)

	f.Fuzz(func(t *testing.T, doc string) {
		c, err := parseManifestContent(gz(t, doc))
		if err != nil {
			return
		}

		var ref struct {
			Entries []struct {
				ID      string `json:"id"`
				Deleted bool   `json:"deleted"`
			} `json:"entries"`
		}

		if json.Unmarshal([]byte(doc), &ref) != nil {
			return
		}

		require.Len(t, c.entries, len(ref.Entries))

		for i, e := range ref.Entries {
			k, _ := keyOf([]byte(e.ID))
			assert.Equal(t, k, c.entries[i].key)
			assert.Equal(t, e.Deleted, c.entries[i].flags&flagDeleted != 0)
		}
	})
}

// TestIndexStats: sources and complete snapshots are counted once each, after the merge, and
// the memory estimate (IndexStats.Bytes, which the index-size alert reads) grows by its constant
// per manifest entry read (superseded and deleted ones too, until kopia compacts them), per
// complete snapshot and per source.
func TestIndexStats(t *testing.T) {
	contents := []string{
		snapshotEntry(idA, 1, 1, "a-backup", "") + "," + snapshotEntry(idB, 1, 2, "a-backup", ""),
		deletion(idB, 2) + "," + snapshotEntry(idC, 1, 1, "c-backup", "") + "," +
			snapshotEntry("checkpoint", 1, 3, "a-backup", `,"incomplete":"checkpoint"`),
	}

	var parsed []*manifestContent

	for _, doc := range contents {
		c, err := parseManifestContent(gz(t, `{"entries":[`+doc+`]}`))
		require.NoError(t, err)

		parsed = append(parsed, c)
	}

	st := newIndex(repo.DefaultKopiaIdentity(), nil, parsed).Stats()

	assert.Equal(t, 2, st.Sources, "a-backup and c-backup")
	assert.Equal(t, 2, st.Snapshots, "idA and idC: idB is deleted, the checkpoint is incomplete")
	assert.Equal(t, 5*bytesPerEntry+2*bytesPerSnapshot+2*bytesPerSource, st.Bytes)
	assert.Positive(t, bytesPerEntry)
	assert.Positive(t, bytesPerSource)
}

// TestNearMissesWithoutCompleteSnapshots: a near miss that holds only an interrupted backup (a
// checkpoint) or only a manifest that cannot be decoded is still a near miss, with no snapshot
// counted and no time: data may be there, so the PVC must not be fresh.
func TestNearMissesWithoutCompleteSnapshots(t *testing.T) {
	at := func(path, entry string) string {
		return strings.Replace(entry, `"path":"/data"`, `"path":"`+path+`"`, 1)
	}
	doc := snapshotEntry(idA, 1, 1, "other-backup", "") + "," +
		at("/srv/app", snapshotEntry(idB, 1, 1, "app-backup", `,"incomplete":"checkpoint"`)) + "," +
		`{"id":"` + idC + `","labels":{"type":"snapshot","username":"app-backup","hostname":"web","path":"/srv/db"},"modified":"2026-11-30T00:00:00Z","data":{"stats":{"fileCount":"many"}}}`

	c, err := parseManifestContent(gz(t, `{"entries":[`+doc+`]}`))
	require.NoError(t, err)

	idx := newIndex(repo.DefaultKopiaIdentity(), nil, []*manifestContent{c})
	app := repo.PVC{Namespace: "web", Name: "app"}

	f, err := idx.Find(context.Background(), app)
	require.NoError(t, err)
	assert.Empty(t, f.Snapshots, "its own source holds nothing")

	assert.Equal(t, []repo.NearMiss{
		{Source: "app-backup@web:/srv/app", Rule: ruleOtherPath},
		{Source: "app-backup@web:/srv/db", Rule: ruleOtherPath},
	}, idx.NearMisses(app))
}
