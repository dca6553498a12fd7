package kopia

import (
	"bytes"
	"cmp"
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/backup-oracle/backup-oracle/repo"
)

// Index is an immutable view of every snapshot source of a Kopia repository.
// It is safe for concurrent use.
type Index struct {
	identity repo.KopiaIdentity
	sources  map[repo.KopiaSource]*sourceEntry
	oddIDs   map[manifestKey]string // manifest ids that are not 32 hex digits
	stats    repo.IndexStats
	hosts    hostIndex // built on first use by NearMisses
	match    *repo.SourceMatcher
	schemes  repo.Schemes // the naming schemes the sources show (learn)

	storedOnce sync.Once
	stored     []repo.Stored
}

type sourceEntry struct {
	snapshots  []*entry // complete snapshots, oldest first (entries are shared with the parsed contents)
	incomplete int      // checkpoints of unfinished backups
	err        error    // a manifest of this source could not be decoded
}

// Estimated memory cost, for IndexStats.Bytes: every manifest entry kept (snapshots, policies,
// superseded entries until compaction), the index's pointer to each complete snapshot, a source
// with its map slots and strings. The measured heap is in README.md (Benchmarks).
const (
	bytesPerEntry    = int64(unsafe.Sizeof(entry{}))
	bytesPerSnapshot = 8
	bytesPerSource   = int64(unsafe.Sizeof(sourceEntry{})+unsafe.Sizeof(repo.KopiaSource{})) + 128
)

// winner is the latest entry of one manifest id and the content it came from.
type winner struct {
	e *entry
	c *manifestContent
}

// newIndex merges the entries of every manifest content as kopia does: for each manifest id the
// entry with the latest modification time wins, and an id whose latest entry is a deletion marker
// is gone. contents must be ordered (by content id) so that equal times resolve the same way on
// every load.
func newIndex(identity repo.KopiaIdentity, declared []repo.NamingScheme, contents []*manifestContent) *Index {
	total := 0
	for _, c := range contents {
		total += len(c.entries)
	}

	latest := make(map[manifestKey]winner, total)

	for _, c := range contents {
		for i := range c.entries {
			e := &c.entries[i]
			if prev, ok := latest[e.key]; !ok || e.modTime > prev.e.modTime {
				latest[e.key] = winner{e: e, c: c}
			}
		}
	}

	idx := &Index{identity: identity}
	bySource := map[*repo.KopiaSource]*sourceEntry{} // sources are shared: a pointer is a source

	for k, w := range latest {
		e := w.e
		if e.flags&flagSnapshot == 0 || e.flags&flagDeleted != 0 {
			continue
		}

		s, ok := bySource[e.src]
		if !ok {
			s = &sourceEntry{}
			bySource[e.src] = s
		}

		if e.flags&flagOddID != 0 {
			if idx.oddIDs == nil {
				idx.oddIDs = map[manifestKey]string{}
			}

			idx.oddIDs[k] = w.c.oddIDs[k]
		}

		switch {
		case e.flags&flagBroken != 0:
			s.err = w.c.broken[k]
		case e.flags&flagIncomplete != 0:
			s.incomplete++
		default:
			s.snapshots = append(s.snapshots, e)
			idx.stats.Snapshots++
		}
	}

	idx.sources = make(map[repo.KopiaSource]*sourceEntry, len(bySource))

	for src, s := range bySource {
		slices.SortFunc(s.snapshots, idx.compare)
		s.snapshots = slices.Clip(s.snapshots)

		if prev, ok := idx.sources[*src]; ok { // the same source under two pointers: merge
			prev.snapshots = append(prev.snapshots, s.snapshots...)
			slices.SortFunc(prev.snapshots, idx.compare)
			prev.incomplete += s.incomplete
			prev.err = cmp.Or(prev.err, s.err)

			continue
		}

		idx.sources[*src] = s
	}

	idx.stats.Sources = len(idx.sources)
	idx.learn(declared)
	idx.stats.Bytes = int64(total)*bytesPerEntry + int64(idx.stats.Snapshots)*bytesPerSnapshot + int64(idx.stats.Sources)*bytesPerSource

	return idx
}

// compare orders snapshots as repo.SortSnapshots does: by start time, then by id.
func (i *Index) compare(a, b *entry) int {
	if a.start != b.start {
		if a.start < b.start {
			return -1
		}

		return 1
	}

	if (a.flags|b.flags)&flagOddID == 0 {
		return bytes.Compare(a.key[:], b.key[:]) // hex digits sort as the bytes they encode
	}

	return strings.Compare(i.id(a), i.id(b))
}

func (i *Index) id(e *entry) string {
	if e.flags&flagOddID != 0 {
		return i.oddIDs[e.key]
	}

	return hex.EncodeToString(e.key[:])
}

// snapshot is the domain view of a snapshot entry.
func (i *Index) snapshot(e *entry) repo.Snapshot {
	return repo.Snapshot{
		ID:        i.id(e),
		StartTime: time.Unix(0, e.start).UTC(),
		EndTime:   time.Unix(0, e.end).UTC(),
		TotalSize: e.size,
		FileCount: e.files,
	}
}

// Find returns the complete snapshots of the source pvc maps to. A source with a manifest that
// could not be decoded, or with only incomplete snapshots, is an error wrapping
// repo.ErrUnverifiable: data may exist that the index cannot vouch for.
func (i *Index) Find(_ context.Context, pvc repo.PVC) (repo.Finding, error) {
	return i.find(i.identity.Source(pvc))
}

// FindSource implements repo.Index: the source a PVC names, when it is one of its namespace's
// (repo.KopiaIdentity.CheckOwner) and VolSync's Kopia mover can restore it
// (repo.KopiaDestinationOf), looked up as Find looks up the PVC's own.
func (i *Index) FindSource(_ context.Context, pvc repo.PVC, src repo.KopiaSource) (repo.Finding, error) {
	if err := i.identity.CheckOwner(pvc, src); err != nil {
		return repo.Finding{Source: src.String()}, fmt.Errorf("kopia: %w", err)
	}

	if _, err := repo.KopiaDestinationOf(src); err != nil {
		return repo.Finding{Source: src.String()}, fmt.Errorf("kopia: %w", err)
	}

	return i.find(src)
}

// find returns the complete snapshots of src (see Find).
func (i *Index) find(src repo.KopiaSource) (repo.Finding, error) {
	f := repo.Finding{Source: src.String()}

	e, ok := i.sources[src]
	if !ok {
		return f, nil
	}

	if len(e.snapshots) > 0 {
		f.Snapshots = make([]repo.Snapshot, len(e.snapshots))
		for j, s := range e.snapshots {
			f.Snapshots[j] = i.snapshot(s)
		}
	}

	switch {
	case e.err != nil:
		return f, fmt.Errorf("kopia: source %s: %w: %w", src, repo.ErrUnverifiable, e.err)
	case len(e.snapshots) == 0 && e.incomplete > 0:
		return f, fmt.Errorf("kopia: source %s: %w: only %d incomplete snapshot(s), a backup was interrupted", src, repo.ErrUnverifiable, e.incomplete)
	}

	return f, nil
}

// Stats counts sources and complete snapshots, and estimates the index's memory.
func (i *Index) Stats() repo.IndexStats { return i.stats }

// Nearby implements repo.Index: the other sources stored under the hostname pvc maps to,
// sorted, so an operator whose PVC maps to a source without snapshots can see what the
// namespace's backups are actually called.
func (i *Index) Nearby(pvc repo.PVC) []string {
	self := i.identity.Source(pvc)

	var out []string

	for src := range i.sources {
		if src.Host == self.Host && src != self {
			out = append(out, src.String())
		}
	}

	slices.Sort(out)

	return out
}
