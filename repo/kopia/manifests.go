package kopia

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"github.com/klauspost/compress/gzip"
	"github.com/kopia/kopia/repo/content"
	"github.com/kopia/kopia/repo/content/index"
	"github.com/kopia/kopia/repo/manifest"
	"github.com/kopia/kopia/snapshot"

	"github.com/backup-oracle/backup-oracle/repo"
)

// Kopia keeps its manifests (snapshots, policies, ...) in contents whose id starts with "m": each
// holds a gzip-compressed JSON document {"entries": [{"id", "labels", "modified", "deleted",
// "data"}, ...]}, written once per write session and merged by maintenance ("compaction") into
// one. Kopia's own manifest manager keeps every entry's full JSON in memory, and re-reads every
// content whenever the repository changes: about 2 KB per snapshot. This file reads those
// contents itself, read-only, through the content API, and keeps of each entry only what the
// index reports (about 70 bytes). A content is immutable (its id is a hash of it), so each is
// parsed once and kept until it disappears from the repository.

// manifestKey is a manifest id: kopia's are 16 random bytes written as 32 hex digits, kept as
// bytes here. Any other id is kept as a hash of it, its text in manifestContent.oddIDs.
type manifestKey [16]byte

func keyOf(id []byte) (k manifestKey, odd bool) {
	if len(id) == 2*len(k) && isLowerHex(id) {
		if _, err := hex.Decode(k[:], id); err == nil {
			return k, false
		}
	}

	sum := sha256.Sum256(id)
	copy(k[:], sum[:])

	return k, true
}

func isLowerHex(b []byte) bool {
	for _, c := range b {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}

	return true
}

// Entry flags.
const (
	flagDeleted    = 1 << iota // a deletion marker: the id is gone if this is its latest entry
	flagSnapshot               // a snapshot manifest (label type=snapshot)
	flagIncomplete             // a checkpoint of an interrupted backup
	flagBroken                 // a snapshot whose data could not be decoded (error in manifestContent.broken)
	flagOddID                  // id is not 32 hex digits (text in manifestContent.oddIDs)
)

// entry is what the index keeps of one manifest entry: about 70 bytes plus its source, which is
// shared by every snapshot of that source.
type entry struct {
	key     manifestKey
	modTime int64 // UnixNano of "modified": the latest entry of an id wins, as kopia merges them
	start   int64 // UnixNano
	end     int64 // UnixNano
	size    int64
	files   int64
	src     *repo.KopiaSource // nil unless flagSnapshot
	flags   uint8
}

// manifestContent is one parsed manifest content.
type manifestContent struct {
	entries []entry
	broken  map[manifestKey]error  // why a snapshot's data could not be decoded
	oddIDs  map[manifestKey]string // ids that are not 32 hex digits
}

// interner shares one *repo.KopiaSource per distinct source across contents and loads.
type interner map[repo.KopiaSource]*repo.KopiaSource

func (in interner) get(s repo.KopiaSource) *repo.KopiaSource {
	if p, ok := in[s]; ok {
		return p
	}

	p := &s
	in[s] = p

	return p
}

// parseManifestContent decodes one manifest content (gzip-compressed JSON). Any error means the
// content could not be read as a whole: nothing of it may be used.
func parseManifestContent(data []byte) (*manifestContent, error) {
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	defer gz.Close()

	s := newStream(gz)
	c := &manifestContent{}

	if err := s.expect('{'); err != nil {
		return nil, err
	}

	for first := true; ; first = false {
		b, err := s.peek()
		if err != nil {
			return nil, err
		}

		if b == '}' {
			break
		}

		if !first {
			if err := s.expect(','); err != nil {
				return nil, err
			}
		}

		key, err := s.value()
		if err != nil {
			return nil, err
		}

		name, err := jsonString(key)
		if err != nil {
			return nil, err
		}

		if err := s.expect(':'); err != nil {
			return nil, err
		}

		if name != "entries" {
			if _, err := s.value(); err != nil {
				return nil, err
			}

			continue
		}

		if err := c.readEntries(s, &localSources{byLabels: map[string]*repo.KopiaSource{}}); err != nil {
			return nil, err
		}
	}

	s.pos++ // the closing brace

	if cap(c.entries) > len(c.entries)+len(c.entries)/8 { // kept for the content's life: no slack
		c.entries = slices.Clone(c.entries)
	}

	// The stream must end here: a gzip member that is cut or corrupted fails its checksum only
	// when read to its end.
	switch _, err := s.peek(); {
	case err == nil:
		return nil, fmt.Errorf("%w: data after the document", errSyntax)
	case !errors.Is(err, errSyntax):
		return nil, err
	}

	return c, nil
}

func (c *manifestContent) readEntries(s *stream, sources *localSources) error {
	if err := s.expect('['); err != nil {
		return err
	}

	for first := true; ; first = false {
		b, err := s.peek()
		if err != nil {
			return err
		}

		if b == ']' {
			s.pos++
			return nil
		}

		if !first {
			if err := s.expect(','); err != nil {
				return err
			}
		}

		if err := s.parse(func(b []byte) (int, error) { return c.add(b, sources) }); err != nil {
			return fmt.Errorf("entry %d: %w", len(c.entries), err)
		}
	}
}

// add reads the manifest entry {"id", "labels", "modified", "deleted", "data"} at the start of b
// and returns its length (errShort when b ends inside it: nothing is recorded). An entry whose
// id, labels, time or flag cannot be read fails the content; a snapshot whose data cannot be read
// is kept as broken (its source answers unknown). Common entries allocate nothing but their slot:
// ids, label values and times are read from the input bytes in place.
func (c *manifestContent) add(b []byte, sources *localSources) (int, error) {
	var (
		id, typ, user, host, path, data []byte
		e                               entry
		deleted, hasLabels              bool
	)

	length, err := objectAt(b, func(key, val []byte) error {
		var err error

		switch string(key) {
		case "id":
			id = val
		case "modified":
			e.modTime, err = jsonTime(val)
		case "deleted":
			deleted, err = jsonBool(val)
		case "data":
			data = val
		case "labels":
			hasLabels = true
			err = object(val, func(k, lv []byte) error {
				switch string(k) {
				case manifest.TypeLabelKey:
					typ = lv
				case snapshot.UsernameLabel:
					user = lv
				case snapshot.HostnameLabel:
					host = lv
				case snapshot.PathLabel:
					path = lv
				}

				return nil
			})
		}

		return err
	})
	if err != nil {
		return 0, err
	}

	idText, err := jsonText(id)
	if err != nil || len(idText) == 0 {
		return 0, fmt.Errorf("%w: entry without a valid id", errSyntax)
	}

	k, odd := keyOf(idText)
	e.key = k

	if odd {
		e.flags |= flagOddID

		if c.oddIDs == nil {
			c.oddIDs = map[manifestKey]string{}
		}

		c.oddIDs[k] = string(idText)
	}

	if deleted {
		e.flags |= flagDeleted
		c.entries = append(c.entries, e)

		return length, nil
	}

	if t, err := jsonText(typ); err != nil {
		return 0, err
	} else if !hasLabels || string(t) != snapshot.ManifestType {
		c.entries = append(c.entries, e)
		return length, nil
	}

	e.flags |= flagSnapshot

	if e.src, err = sources.get(user, host, path); err != nil {
		return 0, err
	}

	if err := e.readSnapshot(data); err != nil {
		e.flags |= flagBroken

		if c.broken == nil {
			c.broken = map[manifestKey]error{}
		}

		c.broken[k] = fmt.Errorf("decode snapshot manifest %s: %w", idText, err)
	}

	c.entries = append(c.entries, e)

	return length, nil
}

// localSources shares one *repo.KopiaSource per source within one content, looked up by the
// label bytes without allocating.
type localSources struct {
	byLabels map[string]*repo.KopiaSource
	scratch  []byte
}

func (l *localSources) get(user, host, path []byte) (*repo.KopiaSource, error) {
	var parts [3][]byte

	for i, v := range [3][]byte{user, host, path} {
		t, err := jsonText(v)
		if err != nil {
			return nil, err
		}

		parts[i] = t
	}

	l.scratch = append(append(append(append(append(l.scratch[:0], parts[0]...), 0), parts[1]...), 0), parts[2]...)
	if src, ok := l.byLabels[string(l.scratch)]; ok {
		return src, nil
	}

	src := &repo.KopiaSource{UserName: string(parts[0]), Host: string(parts[1]), Path: string(parts[2])}
	l.byLabels[string(l.scratch)] = src

	return src, nil
}

// readSnapshot reads the fields the index reports from a snapshot manifest (kopia's
// snapshot.Manifest: startTime, endTime, incomplete, stats.totalSize, stats.fileCount).
func (e *entry) readSnapshot(data []byte) error {
	if data == nil {
		return errors.New("no data")
	}

	return object(data, func(key, val []byte) error {
		var err error

		switch string(key) {
		case "startTime":
			e.start, err = jsonTime(val)
		case "endTime":
			e.end, err = jsonTime(val)
		case "incomplete":
			var reason []byte
			if reason, err = jsonText(val); len(reason) > 0 {
				e.flags |= flagIncomplete
			}
		case "stats":
			err = object(val, func(k, sv []byte) error {
				var err error

				switch string(k) {
				case "totalSize":
					e.size, err = jsonInt(sv)
				case "fileCount":
					e.files, err = jsonInt(sv)
				}

				return err
			})
		}

		return err
	})
}

// contentReader is what reading manifests needs of a kopia repository (content.Reader).
type contentReader interface {
	GetContent(ctx context.Context, id content.ID) ([]byte, error)
	IterateContents(ctx context.Context, opts content.IterateOptions, callback content.IterateCallback) error
}

// manifestIDs lists the ids of the repository's live manifest contents.
func manifestIDs(ctx context.Context, cr contentReader) ([]content.ID, error) {
	var ids []content.ID

	err := cr.IterateContents(ctx, content.IterateOptions{Range: index.PrefixRange(manifest.ContentPrefix)}, func(ci content.Info) error {
		ids = append(ids, ci.ContentID)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list manifest contents: %w", err)
	}

	return ids, nil
}

// errNoContent wraps a manifest content that could not be read.
var errNoContent = errors.New("manifest content unreadable")

// loadManifestContent reads and parses one manifest content; its sources are shared within it
// only (the caller shares them across contents).
func loadManifestContent(ctx context.Context, cr contentReader, id content.ID) (*manifestContent, error) {
	data, err := cr.GetContent(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("%w: read %s: %w", errNoContent, id, err)
	}

	c, err := parseManifestContent(data)
	if err != nil {
		return nil, fmt.Errorf("%w: parse %s: %w", errNoContent, id, err)
	}

	return c, nil
}
