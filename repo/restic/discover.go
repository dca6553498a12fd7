package restic

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/backup-oracle/backup-oracle/repo"
)

// discover lists, level by level, the directories the layout's placeholders can expand to, then
// the snapshots/ of each repository found: 1 request per placeholder directory plus 1 per
// repository (more only when a listing pages), never a listing of data/, plus what looking for
// stray repositories costs (nearmiss.go: usually nothing). It returns each repository directory
// with its snapshot objects; a directory absent from the result holds no repository. Any listing
// error fails the whole discovery with an error wrapping repo.ErrUnavailable: an incomplete view
// must never be taken for "no snapshots".
func (r *Repo) discover(ctx context.Context) (fleet, error) {
	f, _, err := r.discoverTop(ctx)
	return f, err
}

// discoverTop is discover that also returns the directories the first placeholder expanded to
// (the namespaces, with the default template), sorted.
func (r *Repo) discoverTop(ctx context.Context) (fleet, []string, error) {
	dirs := []string{""}
	seen := map[string]Listing{} // the directories listed above the repositories, for strays

	var (
		top     []string
		haveTop bool
	)

	for i, seg := range r.layout.segments {
		if r.layout.patterns[i] == nil {
			for j := range dirs {
				dirs[j] += seg + "/"
			}

			continue
		}

		listings, err := r.listAll(ctx, dirs)
		if err != nil {
			return fleet{}, nil, err
		}

		var next []string

		for j, l := range listings {
			seen[dirs[j]] = l

			for _, child := range l.Dirs {
				name := strings.TrimSuffix(strings.TrimPrefix(child, dirs[j]), "/")
				if r.layout.matches(i, name) {
					next = append(next, dirs[j]+name+"/")
				}
			}
		}

		if !haveTop {
			top, haveTop = slices.Sorted(slices.Values(next)), true
		}

		dirs = next
	}

	snapDirs := make([]string, len(dirs))
	for i, d := range dirs {
		snapDirs[i] = d + "snapshots/"
	}

	listings, err := r.listAll(ctx, snapDirs)
	if err != nil {
		return fleet{}, nil, err
	}

	repos := make(map[string][]Object, len(dirs))

	for i, l := range listings {
		repos[dirs[i]] = snapshotObjects(snapDirs[i], l)
	}

	strays, err := r.discoverStrays(ctx, seen, repos)
	if err != nil {
		return fleet{}, nil, err
	}

	return fleet{repos: repos, strays: strays}, top, nil
}

// snapshotObjects keeps the snapshot files of a listing of snapDir ("<repository>/snapshots/").
func snapshotObjects(snapDir string, l Listing) []Object {
	var snaps []Object

	for _, o := range l.Objects {
		if isStorageID(strings.TrimPrefix(o.Key, snapDir)) {
			snaps = append(snaps, o)
		}
	}

	return snaps
}

// topLevel lists the directory the layout's first placeholder expands in (one request, more
// only when the listing pages) and returns the matching sub-directories, sorted: what
// discoverTop's top would be now.
func (r *Repo) topLevel(ctx context.Context) ([]string, error) {
	dir := ""

	for i, seg := range r.layout.segments {
		if r.layout.patterns[i] != nil {
			listings, err := r.listAll(ctx, []string{dir})
			if err != nil {
				return nil, err
			}

			top := []string{}

			for _, child := range listings[0].Dirs {
				if name := strings.TrimSuffix(strings.TrimPrefix(child, dir), "/"); r.layout.matches(i, name) {
					top = append(top, dir+name+"/")
				}
			}

			slices.Sort(top)

			return top, nil
		}

		dir += seg + "/"
	}

	return nil, nil
}

// listAll lists dirs with at most ListConcurrency requests in flight; the first error cancels
// the others.
func (r *Repo) listAll(ctx context.Context, dirs []string) ([]Listing, error) {
	out := make([]Listing, len(dirs))

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.opts.ListConcurrency)

	for i, d := range dirs {
		g.Go(func() error {
			l, err := r.store.List(gctx, d)
			if err != nil {
				return fmt.Errorf("restic: list %q: %w: %w", r.store.Location(d), repo.ErrUnavailable, err)
			}

			out[i] = l

			return nil
		})
	}

	if err := g.Wait(); err != nil {
		return nil, err
	}

	return out, nil
}

// isStorageID reports whether name is a restic storage id: 64 lowercase hex digits.
func isStorageID(name string) bool {
	if len(name) != 64 {
		return false
	}

	for _, c := range name {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}

	return true
}
