package kopia

import (
	"fmt"
	"slices"
	"strings"

	"github.com/backup-oracle/backup-oracle/repo"
)

// Stored implements repo.Index: every source with a complete snapshot, or that cannot be vouched
// for (a manifest that did not load, only incomplete snapshots), mapped back to its PVC by
// inverting the identity templates (repo.KopiaIdentity.PVCOf). Computed once per index.
func (i *Index) Stored() []repo.Stored {
	i.storedOnce.Do(func() {
		out := make([]repo.Stored, 0, len(i.sources))

		for src, e := range i.sources {
			s := repo.Stored{Source: src.String(), PVC: i.match.PVCOf(src), Snapshots: len(e.snapshots)}
			if n := len(e.snapshots); n > 0 {
				newest := i.snapshot(e.snapshots[n-1])
				s.Newest = &newest
			}

			switch {
			case e.err != nil:
				s.Err = fmt.Errorf("kopia: source %s: %w: %w", src, repo.ErrUnverifiable, e.err)
			case len(e.snapshots) == 0 && e.incomplete > 0:
				s.Err = fmt.Errorf("kopia: source %s: %w: only %d incomplete snapshot(s), a backup was interrupted", src, repo.ErrUnverifiable, e.incomplete)
			case len(e.snapshots) == 0:
				continue
			}

			out = append(out, s)
		}

		slices.SortFunc(out, func(a, b repo.Stored) int { return strings.Compare(a.Source, b.Source) })
		i.stored = out
	})

	return i.stored
}
