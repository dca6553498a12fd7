package restic

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/backup-oracle/backup-oracle/repo"
)

// maxPlainSize caps the decompressed size of an unpacked file (config, snapshot). Real snapshot
// files are a few kilobytes; the cap keeps a forged zstd frame from exhausting memory.
const maxPlainSize = 16 << 20

// encodingZstd is the first plaintext byte of a zstd-compressed unpacked file (repository v2).
const encodingZstd = 2

// decoder turns decrypted unpacked files into JSON. It is safe for concurrent use.
type decoder struct {
	zstd *zstd.Decoder
}

func newDecoder() (*decoder, error) {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxPlainSize))
	if err != nil {
		return nil, fmt.Errorf("restic: zstd decoder: %w", err)
	}

	return &decoder{zstd: d}, nil
}

// unpack returns the JSON document of a decrypted unpacked file: plain when it starts with '{' or
// '[' (repository v1, and v2 uncompressed), zstd-decompressed when it starts with byte 2.
// Anything else is an error.
func (d *decoder) unpack(plain []byte) ([]byte, error) {
	if len(plain) == 0 {
		return nil, errors.New("empty plaintext")
	}

	switch plain[0] {
	case '{', '[':
		return plain, nil
	case encodingZstd:
		out, err := d.zstd.DecodeAll(plain[1:], nil)
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}

		if len(out) > maxPlainSize {
			return nil, fmt.Errorf("zstd: plaintext larger than %d bytes", maxPlainSize)
		}

		return out, nil
	default:
		return nil, fmt.Errorf("unknown encoding version %d", plain[0])
	}
}

// openFile checks that blob's SHA-256 is its storage id (when id is not empty), then decrypts,
// authenticates and unpacks it.
func (d *decoder) openFile(k *key, id string, blob []byte) ([]byte, error) {
	if id != "" {
		sum := sha256.Sum256(blob)
		if hex.EncodeToString(sum[:]) != id {
			return nil, fmt.Errorf("content hash does not match its name: %w", errUnauthenticated)
		}
	}

	plain, err := k.open(blob)
	if err != nil {
		return nil, err
	}

	return d.unpack(plain)
}

// config is the decrypted repository config.
type repoConfig struct {
	Version int    `json:"version"`
	ID      string `json:"id"`
}

// parseConfig decodes the config and checks its version is one this package reads (1 or 2).
func parseConfig(doc []byte) (repoConfig, error) {
	var c repoConfig
	if err := json.Unmarshal(doc, &c); err != nil {
		return c, fmt.Errorf("decode config: %w", err)
	}

	if c.Version != 1 && c.Version != 2 {
		return c, fmt.Errorf("config: unsupported repository version %d", c.Version)
	}

	if c.ID == "" {
		return c, errors.New("config: empty repository id")
	}

	return c, nil
}

// snapshotJSON is the part of a restic snapshot this service reports.
type snapshotJSON struct {
	Time     time.Time `json:"time"`
	Tree     *string   `json:"tree"`
	Paths    []string  `json:"paths"`
	Hostname string    `json:"hostname"`
	Username string    `json:"username"`
	Tags     []string  `json:"tags"`
	Summary  *struct {
		BackupEnd           time.Time `json:"backup_end"`
		TotalFilesProcessed int64     `json:"total_files_processed"`
		TotalBytesProcessed int64     `json:"total_bytes_processed"`
	} `json:"summary"`
}

// parseSnapshot decodes a snapshot document into the domain type. A snapshot without a time or a
// tree is rejected: restic never writes one, so it is corrupt or forged.
func parseSnapshot(id string, doc []byte) (repo.Snapshot, error) {
	var s snapshotJSON

	dec := json.NewDecoder(bytes.NewReader(doc))
	if err := dec.Decode(&s); err != nil {
		return repo.Snapshot{}, fmt.Errorf("decode snapshot: %w", err)
	}

	if s.Time.IsZero() || s.Tree == nil || len(*s.Tree) != 64 {
		return repo.Snapshot{}, errors.New("decode snapshot: missing time or tree")
	}

	out := repo.Snapshot{ID: id, StartTime: s.Time, Host: s.Hostname, Paths: s.Paths, Tags: s.Tags}
	if s.Summary != nil {
		out.EndTime = s.Summary.BackupEnd
		out.FileCount = s.Summary.TotalFilesProcessed
		out.TotalSize = s.Summary.TotalBytesProcessed
	}

	return out, nil
}
