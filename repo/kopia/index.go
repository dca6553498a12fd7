package kopia

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/kopia/kopia/repo/manifest"

	"github.com/backup-oracle/backup-oracle/repo"
)

// Index is an immutable view of every snapshot source of a Kopia repository.
// It is safe for concurrent use.
type Index struct {
	identity repo.KopiaIdentity
	sources  map[repo.KopiaSource]*sourceEntry
	stats    repo.IndexStats
	hosts    hostIndex // built on first use by NearMisses

	storedOnce sync.Once
	stored     []repo.Stored
}

type sourceEntry struct {
	snapshots  []repo.Snapshot // complete snapshots, oldest first
	incomplete int             // checkpoints of unfinished backups
	err        error           // a manifest of this source could not be loaded
}

func newIndex(identity repo.KopiaIdentity, manifests map[manifest.ID]manifestSummary, broken map[repo.KopiaSource]error) *Index {
	idx := &Index{identity: identity, sources: map[repo.KopiaSource]*sourceEntry{}}

	entry := func(src repo.KopiaSource) *sourceEntry {
		e, ok := idx.sources[src]
		if !ok {
			e = &sourceEntry{}
			idx.sources[src] = e
		}

		return e
	}

	for _, m := range manifests {
		e := entry(m.source)
		if m.incomplete {
			e.incomplete++
			continue
		}

		e.snapshots = append(e.snapshots, m.snapshot)
		idx.stats.Snapshots++
	}

	for src, err := range broken {
		entry(src).err = err
	}

	for _, e := range idx.sources {
		repo.SortSnapshots(e.snapshots)
	}

	idx.stats.Sources = len(idx.sources)

	return idx
}

// Find returns the complete snapshots of the source pvc maps to. A source with a manifest that
// could not be loaded, or with only incomplete snapshots, is an error wrapping
// repo.ErrUnverifiable: data may exist that the index cannot vouch for.
func (i *Index) Find(_ context.Context, pvc repo.PVC) (repo.Finding, error) {
	src := i.identity.Source(pvc)
	f := repo.Finding{Source: src.String()}

	e, ok := i.sources[src]
	if !ok {
		return f, nil
	}

	f.Snapshots = e.snapshots

	switch {
	case e.err != nil:
		return f, fmt.Errorf("kopia: source %s: %w: %w", src, repo.ErrUnverifiable, e.err)
	case len(e.snapshots) == 0 && e.incomplete > 0:
		return f, fmt.Errorf("kopia: source %s: %w: only %d incomplete snapshot(s), a backup was interrupted", src, repo.ErrUnverifiable, e.incomplete)
	}

	return f, nil
}

// Stats counts sources and complete snapshots.
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
