package restic

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/repo"
)

// The testdata repositories were written by restic 0.19.1 (built by the Makefile) and by Debian's
// restic 0.14.0 package, password "pw", one snapshot each with host "volsync": v1 with
// --repository-version 1, v2 with version 2. Only config, keys/ and snapshots/ are kept.
const testPassword = "pw"

type fixture struct {
	dir, snapID string
	version     int
	tags        []string
}

var fixtures = []fixture{
	{dir: "testdata/restic-0.19-v1", snapID: "76bf81769c021511c2a876e19162f60d3bfc77ca1866a14bae77a5c82556dead", version: 1},
	{dir: "testdata/restic-0.19-v2", snapID: "f3a849d66b153e3025638d8b111920a0bcc0ce92cd237031c2cccf96230c2045", version: 2, tags: []string{"ns/pvc"}},
	{dir: "testdata/restic-0.14-v1", snapID: "3219149add56e6a8b2cd0d7a9584e6c567ac1dd7930e3c899f7023b2c584d3a2", version: 1, tags: []string{"ns/pvc"}},
	{dir: "testdata/restic-0.14-v2", snapID: "4971c1cb7a1836a12bda64631ecf4d6d09483711825da638a980f77c8d04e314", version: 2, tags: []string{"ns/pvc"}},
}

func readOnly(t testing.TB, dir, sub string) []byte {
	t.Helper()

	if sub == "keys" {
		entries, err := os.ReadDir(filepath.Join(dir, "keys"))
		require.NoError(t, err)
		require.Len(t, entries, 1)
		sub = filepath.Join("keys", entries[0].Name())
	}

	b, err := os.ReadFile(filepath.Join(dir, sub))
	require.NoError(t, err)

	return b
}

func masterKeyOf(t testing.TB, dir string) *key {
	t.Helper()

	kf, err := parseKeyFile(readOnly(t, dir, "keys"))
	require.NoError(t, err)

	k, err := openKeyFile(kf, []byte(testPassword))
	require.NoError(t, err)

	return k
}

func TestOpenRealRepositories(t *testing.T) {
	dec, err := newDecoder()
	require.NoError(t, err)

	for _, fx := range fixtures {
		t.Run(fx.dir, func(t *testing.T) {
			k := masterKeyOf(t, fx.dir)

			doc, err := dec.openFile(k, "", readOnly(t, fx.dir, "config"))
			require.NoError(t, err)
			cfg, err := parseConfig(doc)
			require.NoError(t, err)
			assert.Equal(t, fx.version, cfg.Version)
			assert.Len(t, cfg.ID, 64)

			doc, err = dec.openFile(k, fx.snapID, readOnly(t, fx.dir, "snapshots/"+fx.snapID))
			require.NoError(t, err)
			s, err := parseSnapshot(fx.snapID, doc)
			require.NoError(t, err)
			assert.Equal(t, "volsync", s.Host)
			assert.Equal(t, fx.tags, s.Tags)
			assert.Len(t, s.Paths, 1)
			assert.False(t, s.StartTime.IsZero())
			assert.True(t, s.EndTime.IsZero() || !s.EndTime.Before(s.StartTime), "restic 0.14 writes no summary")
		})
	}
}

func TestOpenRejects(t *testing.T) {
	dec, err := newDecoder()
	require.NoError(t, err)

	fx := fixtures[1]
	k := masterKeyOf(t, fx.dir)
	snap := readOnly(t, fx.dir, "snapshots/"+fx.snapID)

	flip := func(b []byte, i int) []byte {
		c := append([]byte{}, b...)
		c[i] ^= 1

		return c
	}

	tests := []struct {
		name string
		id   string
		blob []byte
	}{
		{"content does not hash to its name", fx.snapID, flip(snap, 20)},
		{"ciphertext tampered", "", flip(snap, 20)},
		{"mac tampered", "", flip(snap, len(snap)-1)},
		{"iv tampered", "", flip(snap, 0)},
		{"truncated", "", snap[:len(snap)-1]},
		{"too short", "", snap[:overhead-1]},
		{"zero iv", "", append(make([]byte, ivSize), snap[ivSize:]...)},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := dec.openFile(k, tt.id, tt.blob)
			assert.Error(t, err)
		})
	}
}

func TestWrongPassword(t *testing.T) {
	kf, err := parseKeyFile(readOnly(t, fixtures[0].dir, "keys"))
	require.NoError(t, err)

	_, err = openKeyFile(kf, []byte("not the password"))
	require.ErrorIs(t, err, errUnauthenticated)
}

func TestParseKeyFileBounds(t *testing.T) {
	salt := `"` + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==" + `"`

	tests := []struct {
		name, doc string
		ok        bool
	}{
		{"restic defaults", `{"kdf":"scrypt","N":32768,"r":8,"p":3,"salt":` + salt + `}`, true},
		{"other kdf", `{"kdf":"argon2","N":32768,"r":8,"p":3,"salt":` + salt + `}`, false},
		{"N not a power of two", `{"kdf":"scrypt","N":30000,"r":8,"p":1,"salt":` + salt + `}`, false},
		{"N too large", `{"kdf":"scrypt","N":4194304,"r":8,"p":1,"salt":` + salt + `}`, false},
		{"memory too large", `{"kdf":"scrypt","N":1048576,"r":8,"p":16,"salt":` + salt + `}`, false},
		{"short salt", `{"kdf":"scrypt","N":32768,"r":8,"p":1,"salt":"AAAA"}`, false},
		{"not json", `{`, false},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseKeyFile([]byte(tt.doc))
			assert.Equal(t, tt.ok, err == nil, "error: %v", err)
		})
	}
}

func TestUnpack(t *testing.T) {
	dec, err := newDecoder()
	require.NoError(t, err)

	enc, err := zstd.NewWriter(nil)
	require.NoError(t, err)

	doc := []byte(`{"version":2}`)

	tests := []struct {
		name  string
		plain []byte
		want  []byte
	}{
		{"plain object", doc, doc},
		{"plain array", []byte(`[1]`), []byte(`[1]`)},
		{"zstd", append([]byte{encodingZstd}, enc.EncodeAll(doc, nil)...), doc},
		{"bad zstd", []byte{encodingZstd, 1, 2, 3}, nil},
		{"unknown encoding", []byte{3, '{'}, nil},
		{"empty", nil, nil},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := dec.unpack(tt.plain)
			if tt.want == nil {
				assert.Error(t, err)
				return
			}

			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseSnapshot(t *testing.T) {
	const tree = `"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"`

	tests := []struct {
		name, doc string
		ok        bool
	}{
		{"complete", `{"time":"2024-05-01T02:00:00Z","tree":` + tree + `,"paths":["/data"],"hostname":"volsync","tags":["a/b"]}`, true},
		{"no time", `{"tree":` + tree + `,"paths":["/data"]}`, false},
		{"no tree", `{"time":"2024-05-01T02:00:00Z","paths":["/data"]}`, false},
		{"short tree", `{"time":"2024-05-01T02:00:00Z","tree":"ab"}`, false},
		{"array", `[]`, false},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseSnapshot("id", []byte(tt.doc))
			assert.Equal(t, tt.ok, err == nil, "error: %v", err)
		})
	}
}

// Every fixture read end to end through Load and Find from a directory laid out as VolSync does.
func TestFixturesThroughDirectory(t *testing.T) {
	root := t.TempDir()

	for i, fx := range fixtures {
		copyDir(t, fx.dir, filepath.Join(root, "volsync", "ns", fmt.Sprintf("pvc-%d", i)))
	}

	// data/ and index/ exist, as in real repositories, and must never be read.
	for i := range fixtures {
		for _, sub := range []string{"data/ab", "index"} {
			d := filepath.Join(root, "volsync", "ns", fmt.Sprintf("pvc-%d", i), sub)
			require.NoError(t, os.MkdirAll(d, 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(d, "abcd"), []byte("x"), 0o644))
		}
	}

	var (
		mu      sync.Mutex
		touched []string
	)

	record := func(k string) {
		mu.Lock()
		touched = append(touched, k)
		mu.Unlock()
	}

	store := NewDirStorage(root)
	spy := &fakeStorage{
		list:     func(ctx context.Context, dir string) (Listing, error) { record(dir); return store.List(ctx, dir) },
		get:      func(ctx context.Context, key string) ([]byte, error) { record(key); return store.Get(ctx, key) },
		location: store.Location,
	}

	r, err := NewWithStorage(Options{Prefix: "volsync", Password: testPassword, VerifyWait: time.Minute}, spy)
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close(context.Background()) })

	idx, err := r.Load(context.Background())
	require.NoError(t, err)

	for i, fx := range fixtures {
		t.Run(fx.dir, func(t *testing.T) {
			f, err := idx.Find(context.Background(), repo.PVC{Namespace: "ns", Name: fmt.Sprintf("pvc-%d", i)})
			require.NoError(t, err)
			require.Len(t, f.Snapshots, 1)
			assert.Equal(t, fx.snapID, f.Snapshots[0].ID)
			assert.Equal(t, "volsync", f.Snapshots[0].Host)
		})
	}

	require.NotEmpty(t, touched)

	for _, k := range touched {
		assert.NotContains(t, k, "/data/")
		assert.NotContains(t, k, "/index/")
	}
}

// fakeStorage is a Storage made of functions.
type fakeStorage struct {
	list     func(ctx context.Context, dir string) (Listing, error)
	get      func(ctx context.Context, key string) ([]byte, error)
	location func(key string) string
}

func (f *fakeStorage) List(ctx context.Context, dir string) (Listing, error) { return f.list(ctx, dir) }
func (f *fakeStorage) Get(ctx context.Context, key string) ([]byte, error)   { return f.get(ctx, key) }
func (f *fakeStorage) Location(key string) string                            { return f.location(key) }

func copyDir(t *testing.T, src, dst string) {
	t.Helper()

	require.NoError(t, filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}

		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}

		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}

		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	}))
}

// FuzzDecodeSnapshot feeds arbitrary bytes to every decoding step of an untrusted snapshot
// object: decryption and authentication with a real master key, then (as if it had
// authenticated) unpacking and JSON decoding. Seeds are the real snapshot objects of testdata
// and their decrypted plaintexts. Nothing may panic, and a blob that is not the seed must not
// authenticate.
func FuzzDecodeSnapshot(f *testing.F) {
	dec, err := newDecoder()
	require.NoError(f, err)

	fx := fixtures[1]
	k := masterKeyOf(f, fx.dir)

	seeds := map[string]bool{}

	for _, x := range fixtures {
		blob := readOnly(f, x.dir, "snapshots/"+x.snapID)
		f.Add(blob)

		plain, err := masterKeyOf(f, x.dir).open(blob)
		require.NoError(f, err)
		f.Add(plain)

		if x.dir == fx.dir {
			seeds[string(blob)] = true
		}
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		if doc, err := dec.openFile(k, "", data); err == nil {
			if !seeds[string(data)] {
				t.Fatalf("forged blob of %d bytes authenticated", len(data))
			}

			_, _ = parseSnapshot("id", doc)
		}

		if doc, err := dec.unpack(data); err == nil {
			_, _ = parseSnapshot("id", doc)
		}
	})
}

// BenchmarkKeyDerivation is the cost of opening one repository with restic 0.19's calibrated
// scrypt parameters (testdata/v2's key file): what the background verification pays per
// repository, once.
func BenchmarkKeyDerivation(b *testing.B) {
	kf, err := parseKeyFile(readOnly(b, fixtures[1].dir, "keys"))
	require.NoError(b, err)
	b.Logf("scrypt N=%d r=%d p=%d", kf.N, kf.R, kf.P)

	for b.Loop() {
		_, err := openKeyFile(kf, []byte(testPassword))
		require.NoError(b, err)
	}
}

// A repository deleted and initialised again at the same place has a new master key: the cached
// key must not be trusted, and the old snapshots must be forgotten.
func TestReinitialisedRepository(t *testing.T) {
	root := t.TempDir()
	at := filepath.Join(root, "volsync", "ns", "app")
	p := repo.PVC{Namespace: "ns", Name: "app"}

	r, err := New(Options{Dir: root, Prefix: "volsync", Password: testPassword, VerifyWait: time.Minute})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close(context.Background()) })

	for _, fx := range []fixture{fixtures[1], fixtures[3], fixtures[1]} {
		require.NoError(t, os.RemoveAll(at))
		copyDir(t, fx.dir, at)

		idx, err := r.Load(context.Background())
		require.NoError(t, err)

		f, err := idx.Find(context.Background(), p)
		require.NoError(t, err)
		require.Len(t, f.Snapshots, 1)
		assert.Equal(t, fx.snapID, f.Snapshots[0].ID)
	}

	// Everything gone: no repository, no snapshot, authoritatively.
	require.NoError(t, os.RemoveAll(at))

	idx, err := r.Load(context.Background())
	require.NoError(t, err)

	f, err := idx.Find(context.Background(), p)
	require.NoError(t, err)
	assert.Empty(t, f.Snapshots)
}
