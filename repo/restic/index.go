package restic

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/backup-oracle/backup-oracle/repo"
)

// repoView is one repository as an index saw it.
type repoView struct {
	// snapshots: verified ones with a password, else one per object under snapshots/ dated by
	// the object's modification time. Oldest first.
	snapshots []repo.Snapshot
	// err, when set, is what keeps the repository from answering (wraps repo.ErrUnverifiable).
	err error
	// listed holds the repository's snapshot objects while some are not verified yet, so a
	// lookup can make their verification urgent and use its result at once.
	listed []Object
}

// Index is a view of the repositories at one point in time, safe for concurrent use. It
// implements repo.Index. Its listing never changes; with a password, a lookup of a repository
// whose snapshots were not verified yet when the index was built uses the verifications done
// since (a verified snapshot stays verified: it is immutable).
type Index struct {
	repo   *Repo
	store  Storage
	layout layout
	repos  map[string]repoView // repository dir → view
	// strays: repositories outside the layout, by dir, with their snapshot objects (nearmiss.go).
	strays map[string][]Object
	stats  repo.IndexStats

	storedOnce sync.Once
	stored     []repo.Stored
	// confirm: a lookup lists its repository's snapshots/ itself (Options.FleetRefreshInterval).
	confirm bool
}

// Bytes estimated per repository and per snapshot an index holds (IndexStats.Bytes).
const (
	bytesPerRepository = 200
	bytesPerSnapshot   = 300
)

func (r *Repo) newIndex(f fleet) *Index {
	idx := &Index{repo: r, store: r.store.Storage, layout: r.layout, repos: make(map[string]repoView, len(f.repos)), confirm: r.confirms(),
		strays: f.strays}

	for dir, list := range f.repos {
		v := repoView{}
		skipped := 0

		switch {
		case len(list) == 0:
		case !r.verifies(dir):
			v.snapshots = unverified(list)
		default:
			var (
				pending int
				failed  error
			)

			v.snapshots, pending, failed = r.verifier.view(dir, list)
			v.err = r.verdict(dir, pending, len(list), failed)

			if pending > 0 {
				v.listed = list
			}

			v.snapshots, skipped = r.restorable(dir, v.snapshots, pending, &v.err)
		}

		idx.repos[dir] = v
		idx.stats.Snapshots += len(list) - skipped
		idx.stats.Unrestorable += skipped

		if len(list)-skipped > 0 {
			idx.stats.Sources++
		}
	}

	if r.layout.shared {
		idx.stats.Sources = idx.countTags()
	}

	// Every repository (or "<namespace>/<pvc>" tag) found is one the layout maps a PVC to.
	idx.stats.Fitting = idx.stats.Sources
	idx.stats.Bytes = int64(len(idx.repos))*bytesPerRepository + int64(idx.stats.Snapshots)*bytesPerSnapshot

	return idx
}

// unverified is what a repository's snapshot objects say without the password: one snapshot
// per object, dated by the object's modification time (ApproxTime: not the time restic
// recorded, so no point in time can be placed on it), oldest first. The fleet listing and a
// lookup's own listing both use it: they must agree.
func unverified(objs []Object) []repo.Snapshot {
	out := make([]repo.Snapshot, 0, len(objs))
	for _, o := range objs {
		out = append(out, repo.Snapshot{ID: snapshotID(o.Key), StartTime: o.ModTime, ApproxTime: true})
	}

	repo.SortSnapshots(out)

	return out
}

// verdict is what keeps a repository with pending unverified snapshots out of n from answering:
// nil when all are verified (an older failure concerned snapshots since removed), the last
// failure, or "not verified yet" (wrapping repo.ErrPending: it changes within seconds).
func (r *Repo) verdict(dir string, pending, n int, failed error) error {
	switch {
	case pending == 0:
		return nil
	case failed != nil:
		return failed
	default:
		return fmt.Errorf("restic: repository %q: %d of %d snapshots not verified yet (verification runs in the background; a lookup puts its repository first): %w: %w",
			r.store.Location(strings.TrimSuffix(dir, "/")), pending, n, repo.ErrUnverifiable, repo.ErrPending)
	}
}

// decide answers for the repository at dir from its snapshot objects, verifying them first when
// a password is set: a pending verification is made urgent and awaited at most LookupWait
// (within ctx).
func (x *Index) decide(ctx context.Context, f repo.Finding, dir string, objs []Object) (repo.Finding, error) {
	r := x.repo

	switch {
	case len(objs) == 0:
		return f, nil
	case !r.verifies(dir):
		f.Snapshots = unverified(objs)

		return f, nil
	}

	snaps, pending, failed := r.verifier.view(dir, objs)
	if pending > 0 && failed == nil {
		done := r.verifier.urgent(dir, objs)

		if r.opts.LookupWait > 0 {
			wait, cancel := context.WithTimeout(ctx, r.opts.LookupWait)

			select {
			case <-done:
				snaps, pending, failed = r.verifier.view(dir, objs)
			case <-wait.Done():
			}

			cancel()
		}
	}

	err := r.verdict(dir, pending, len(objs), failed)
	if err == nil {
		snaps, _ = r.restorable(dir, snaps, pending, &err)
	}

	if err != nil {
		return f, err
	}

	f.Snapshots = snaps

	return f, nil
}

// restorable keeps, in the per-PVC layout, the verified snapshots VolSync's restic mover would
// restore (moverRestores) and returns how many it skipped; when it would misread one
// (moverMisreads), *err becomes errMoverMisreads; when it would skip every snapshot of a fully
// verified repository, errNothingRestorable. The shared layout selects by tag and is left alone.
func (r *Repo) restorable(dir string, snaps []repo.Snapshot, pending int, err *error) ([]repo.Snapshot, int) {
	if r.layout.shared {
		return snaps, 0
	}

	kept, skipped, misread := moverSnapshots(snaps)

	switch {
	case *err != nil:
	case misread > 0:
		*err = errMoverMisreads(r.store.Location(strings.TrimSuffix(dir, "/")), misread)
	case pending == 0 && len(kept) == 0 && skipped > 0:
		*err = errNothingRestorable(r.store.Location(strings.TrimSuffix(dir, "/")), skipped)
	}

	return kept, skipped
}

// Find implements repo.Index. A PVC whose repository does not exist, or exists without
// snapshots, gets an empty Finding and no error: the listing behind it was complete. With a
// FleetRefreshInterval (per-PVC layout) that listing is made now, for this PVC: one request
// bounded by ctx (the lookup timeout), whose failure is an error wrapping repo.ErrUnavailable;
// else it is the index's. An error wrapping repo.ErrUnverifiable means snapshots exist but are
// not (yet) verified (also repo.ErrPending while a verification is queued or running: the
// lookup made it urgent); an error wrapping repo.ErrInvalidName means pvc is not a valid
// Kubernetes name.
func (x *Index) Find(ctx context.Context, pvc repo.PVC) (repo.Finding, error) {
	if err := pvc.Validate(); err != nil {
		return repo.Finding{}, fmt.Errorf("restic: find %s: %w", pvc, err)
	}

	dir := x.layout.dir(pvc)
	f := repo.Finding{Source: x.store.Location(strings.TrimSuffix(dir, "/"))}

	if x.layout.shared {
		return x.findShared(f, dir, pvc)
	}

	if x.confirm {
		objs, err := x.repo.listSnapshots(ctx, dir)
		if err != nil {
			return f, err
		}

		return x.decide(ctx, f, dir, objs)
	}

	v, ok := x.repos[dir]
	if !ok {
		return f, nil
	}

	if v.listed != nil {
		return x.decide(ctx, f, dir, v.listed)
	}

	if v.err != nil {
		return f, v.err
	}

	f.Snapshots = v.snapshots // the index is immutable; callers only read

	return f, nil
}

// findShared selects the snapshots tagged "<namespace>/<pvc>". Verified snapshots with the tag
// answer even when others of the repository are unverified (they prove a backup exists); with
// none, an unverified snapshot could be this PVC's, so the repository's error is returned.
func (x *Index) findShared(f repo.Finding, dir string, pvc repo.PVC) (repo.Finding, error) {
	f.Source += "#tag=" + tag(pvc)

	v := x.repos[dir]
	for _, s := range v.snapshots {
		if slices.Contains(s.Tags, tag(pvc)) {
			f.Snapshots = append(f.Snapshots, s)
		}
	}

	if len(f.Snapshots) == 0 && v.err != nil {
		return f, v.err
	}

	return f, nil
}

// Stats implements repo.Index: Sources counts repositories holding snapshots (per-PVC layout) or
// distinct "<namespace>/<pvc>" tags of verified snapshots (shared layout).
func (x *Index) Stats() repo.IndexStats { return x.stats }

func (x *Index) countTags() int {
	tags := map[string]bool{}

	for _, v := range x.repos {
		for _, s := range v.snapshots {
			for _, t := range s.Tags {
				if ns, name, ok := strings.Cut(t, "/"); ok && (repo.PVC{Namespace: ns, Name: name}).Validate() == nil {
					tags[t] = true
				}
			}
		}
	}

	return len(tags)
}

// Nearby implements repo.Index: the other repositories of pvc's namespace that hold snapshots
// (per-PVC layout), or the other tags of the namespace (shared layout), sorted.
func (x *Index) Nearby(pvc repo.PVC) []string {
	if pvc.Validate() != nil {
		return nil
	}

	own := x.layout.dir(pvc)

	var out []string

	if x.layout.shared {
		seen := map[string]bool{tag(pvc): true}

		for _, v := range x.repos {
			for _, s := range v.snapshots {
				for _, t := range s.Tags {
					if strings.HasPrefix(t, pvc.Namespace+"/") && !seen[t] {
						seen[t] = true
						out = append(out, x.store.Location(strings.TrimSuffix(own, "/"))+"#tag="+t)
					}
				}
			}
		}
	} else {
		sameNamespace := x.layout.namespacePattern(pvc.Namespace)

		for dir, v := range x.repos {
			if dir != own && (len(v.snapshots) > 0 || v.err != nil) && sameNamespace.MatchString(dir) {
				out = append(out, x.store.Location(strings.TrimSuffix(dir, "/")))
			}
		}
	}

	slices.Sort(out)

	return out
}

// NearMisses implements repo.Index. Per-PVC layout: the repositories that hold snapshots at
// another level of the bucket (strayNearMisses). Shared layout: verified snapshots tagged with
// the bare PVC name instead of "<namespace>/<pvc>". No I/O.
func (x *Index) NearMisses(pvc repo.PVC) []repo.NearMiss {
	switch {
	case pvc.Validate() != nil:
		return nil
	case !x.layout.shared:
		return x.strayNearMisses(pvc)
	}

	dir := x.layout.dir(pvc)

	var snaps []repo.Snapshot

	for _, s := range x.repos[dir].snapshots {
		if slices.Contains(s.Tags, pvc.Name) {
			snaps = append(snaps, s)
		}
	}

	if len(snaps) == 0 {
		return nil
	}

	n := repo.NearMiss{
		Source: x.store.Location(strings.TrimSuffix(dir, "/")) + "#tag=" + pvc.Name,
		Rule:   "snapshots tagged with the bare PVC name instead of " + tag(pvc), Snapshots: len(snaps),
	}
	n.Latest = snaps[len(snaps)-1].StartTime

	return []repo.NearMiss{n}
}
