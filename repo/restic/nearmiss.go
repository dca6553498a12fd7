package restic

import (
	"context"
	"regexp"
	"slices"
	"strings"

	"github.com/backup-oracle/backup-oracle/repo"
)

// fleet is what one fleet listing found.
type fleet struct {
	// repos: every repository directory the layout maps a PVC to, with its snapshot objects.
	repos map[string][]Object
	// strays: repository directories of a variant layout (see variants) that the layout maps no
	// PVC to, holding at least one snapshot object, with those objects.
	strays map[string][]Object
}

// variant is another layout under which a PVC's repository is found in the wild, relative to
// the configured template (per-PVC layout only).
type variant struct {
	rule   string
	layout layout
}

// Near-miss rules of the per-PVC layout. The same PVC's data one level off is what a secret
// template that differs from the oracle's looks like: home-operations style templates
// (onedr0p, bjw-s: RESTIC_REPOSITORY "<base>/${APP}") have no namespace level, and flat buckets
// join the namespace and the PVC in one name.
const (
	ruleNoNamespace = "a repository named after the PVC without the namespace level (it may hold this PVC's data from any namespace)"
	ruleJoined      = "a repository named <namespace>-<pvc>, one level instead of two"
	ruleSplit       = "a repository at <namespace>/<pvc>, two levels instead of one"
	ruleDeeper      = "a repository one directory level deeper than the oracle's template puts it (the movers' repository base has a level the oracle's prefix lacks, e.g. <base>/clusterA/<namespace>/<pvc>)"
)

// variants derives the variant layouts of the per-PVC template t (prefix expanded): where t
// holds "{namespace}/{pvc}", the same without the namespace level and joined as
// "{namespace}-{pvc}"; where it holds "{namespace}-{pvc}", the same without "{namespace}-"
// and split as "{namespace}/{pvc}". Other templates have no variants (README.md, "What the
// oracle refuses to guess").
func variants(t string) []variant {
	type swap struct{ from, to, rule string }

	var out []variant

	for _, s := range []swap{
		{"{namespace}/{pvc}", "{pvc}", ruleNoNamespace},
		{"{namespace}/{pvc}", "{namespace}-{pvc}", ruleJoined},
		{"{namespace}-{pvc}", "{pvc}", ruleNoNamespace},
		{"{namespace}-{pvc}", "{namespace}/{pvc}", ruleSplit},
	} {
		if strings.Contains(t, s.from) {
			out = append(out, variant{rule: s.rule, layout: templateLayout(strings.Replace(t, s.from, s.to, 1), false)})
		}
	}

	// One level deeper: a directory of any name before the first placeholder.
	segs := splitPath(t)
	if i := slices.IndexFunc(segs, func(s string) bool { return strings.Contains(s, "{") }); i >= 0 {
		deeper := append(append(slices.Clone(segs[:i]), "{any}"), segs[i:]...)
		out = append(out, variant{rule: ruleDeeper, layout: templateLayout(strings.Join(deeper, "/"), false)})
	}

	return out
}

// discoverStrays finds the repositories of the variant layouts that hold snapshots and that the
// configured layout maps no PVC to (repos: those it does). It reuses the listings the fleet
// discovery made (seen, by directory), so with the default template it costs one listing of
// snapshots/ per stray repository and nothing when there is none; a variant that reaches
// directories the discovery did not list (a custom template) lists them once per fleet listing.
// A directory whose listing shows a restic repository (a config and a snapshots/) is not
// descended into. Any listing error fails the discovery (wrapping repo.ErrUnavailable).
func (r *Repo) discoverStrays(ctx context.Context, seen map[string]Listing, repos map[string][]Object) (map[string][]Object, error) {
	candidates := map[string]bool{}

	for _, v := range r.variants {
		dirs, err := r.expand(ctx, v.layout, seen, repos)
		if err != nil {
			return nil, err
		}

		for _, d := range dirs {
			candidates[d] = true
		}
	}

	var dirs []string

	for d := range candidates {
		if l, ok := seen[d]; ok && !isRepository(l, d) {
			continue // listed already: a directory of repositories (a namespace), not one
		}

		dirs = append(dirs, d)
	}

	slices.Sort(dirs)

	snapDirs := make([]string, len(dirs))
	for i, d := range dirs {
		snapDirs[i] = d + "snapshots/"
	}

	listings, err := r.listAll(ctx, snapDirs)
	if err != nil {
		return nil, err
	}

	strays := map[string][]Object{}

	for i, l := range listings {
		if objs := snapshotObjects(snapDirs[i], l); len(objs) > 0 {
			strays[dirs[i]] = objs
		}
	}

	return strays, nil
}

// expand lists, level by level, the directories l's placeholders can expand to, reusing and
// filling seen, and returns the candidate repository directories, leaving out those in repos.
func (r *Repo) expand(ctx context.Context, l layout, seen map[string]Listing, repos map[string][]Object) ([]string, error) {
	dirs := []string{""}

	for i, seg := range l.segments {
		if l.patterns[i] == nil {
			for j := range dirs {
				dirs[j] += seg + "/"
			}

			continue
		}

		var todo []string

		for _, d := range dirs {
			if _, ok := seen[d]; !ok {
				todo = append(todo, d)
			}
		}

		listings, err := r.listAll(ctx, todo)
		if err != nil {
			return nil, err
		}

		for j, d := range todo {
			seen[d] = listings[j]
		}

		var next []string

		// Below this level, is there another placeholder? Then an own directory without
		// snapshots may be no repository but a level of a variant (an empty prefix's deeper
		// variant: <level>/<namespace>/<pvc> looks like namespace <level>, PVC <namespace>).
		deeperPattern := slices.ContainsFunc(l.patterns[i+1:], func(p *regexp.Regexp) bool { return p != nil })

		for _, d := range dirs {
			if d != "" && (isRepository(seen[d], d) || hasConfig(seen[d], d)) {
				continue
			}

			for _, child := range seen[d].Dirs {
				name := strings.TrimSuffix(strings.TrimPrefix(child, d), "/")
				objs, own := repos[d+name+"/"]

				if l.matches(i, name) && (!own || deeperPattern && len(objs) == 0) {
					next = append(next, d+name+"/")
				}
			}
		}

		dirs = next
	}

	return dirs, nil
}

// hasConfig reports whether the listing of dir holds a restic repository's config object: an
// initialised repository (its snapshots/ may not exist yet on S3), never descended into.
func hasConfig(l Listing, dir string) bool {
	return slices.ContainsFunc(l.Objects, func(o Object) bool { return o.Key == dir+"config" })
}

// isRepository reports whether the listing of dir shows a restic repository: a config object
// and a snapshots/ directory (restic doc/design.rst, "Repository Layout").
func isRepository(l Listing, dir string) bool {
	return slices.Contains(l.Dirs, dir+"snapshots/") && slices.ContainsFunc(l.Objects, func(o Object) bool { return o.Key == dir+"config" })
}

// strayNearMisses lists, for the per-PVC layout, the repositories pvc's variant layouts map it
// to that hold snapshots. They come from the fleet listing, which with a FleetRefreshInterval
// may be up to that old: acceptable for near misses only, because a near miss can only turn a
// "fresh" into "unknown" (a stray since removed blocks until the next fleet listing; one
// created since is not seen until then, as before this guard existed). A repository the
// layout maps a PVC to (another PVC's own, in any namespace) is never a stray. Snapshots are
// counted from the listing, not verified, and dated by their objects' modification time.
func (x *Index) strayNearMisses(pvc repo.PVC) []repo.NearMiss {
	own := x.layout.dir(pvc)

	var out []repo.NearMiss

	for _, v := range x.repo.variants {
		for _, d := range x.strayDirs(v.layout, pvc) {
			objs := x.strays[d]

			if d == own || len(objs) == 0 || slices.ContainsFunc(out, func(n repo.NearMiss) bool { return n.Source == x.location(d) }) {
				continue
			}

			n := repo.NearMiss{Source: x.location(d), Rule: v.rule, Snapshots: len(objs)}
			for _, o := range objs {
				if o.ModTime.After(n.Latest) {
					n.Latest = o.ModTime
				}
			}

			out = append(out, n)
		}
	}

	slices.SortFunc(out, func(a, b repo.NearMiss) int { return strings.Compare(a.Source, b.Source) })

	return out
}

// location names the repository at dir for humans.
func (x *Index) location(dir string) string { return x.store.Location(strings.TrimSuffix(dir, "/")) }

// strayDirs returns the stray repositories variant layout l places pvc's at: one directory, or,
// for a layout with {any}, every stray directory it matches.
func (x *Index) strayDirs(l layout, pvc repo.PVC) []string {
	if !strings.Contains(l.template, "{any}") {
		return []string{l.dir(pvc)}
	}

	re := l.dirPattern(pvc)

	var out []string

	for d := range x.strays {
		if re.MatchString(d) {
			out = append(out, d)
		}
	}

	return out
}
