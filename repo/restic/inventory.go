package restic

import (
	"regexp"
	"slices"
	"strings"

	"github.com/backup-oracle/backup-oracle/repo"
)

// Stored implements repo.Index. Per-PVC layout: every repository holding snapshots (or whose
// snapshots are not verified yet, with the error), mapped back to its PVC through the repository
// template. Shared layout: one entry per "<namespace>/<pvc>" tag of verified snapshots, and the
// repository itself while any of its snapshots is unverified (its tags are unknown then).
// Snapshots without such a tag are not listed: no PVC restores them. Computed once per index.
func (x *Index) Stored() []repo.Stored {
	x.storedOnce.Do(func() {
		if x.layout.shared {
			x.stored = x.storedShared()
		} else {
			x.stored = x.storedPerPVC()
		}

		slices.SortFunc(x.stored, func(a, b repo.Stored) int { return strings.Compare(a.Source, b.Source) })
	})

	return x.stored
}

func (x *Index) storedPerPVC() []repo.Stored {
	out := make([]repo.Stored, 0, len(x.repos))

	for dir, v := range x.repos {
		if len(v.snapshots) == 0 && v.err == nil {
			continue // initialised, never backed up: not a backup (DOMAIN.md 1)
		}

		s := repo.Stored{Source: x.store.Location(strings.TrimSuffix(dir, "/")), PVC: x.layout.pvcOf(dir), Err: v.err}
		if v.err == nil {
			s.Snapshots, s.Newest = len(v.snapshots), newest(v.snapshots)
		}

		out = append(out, s)
	}

	return out
}

func (x *Index) storedShared() []repo.Stored {
	var out []repo.Stored

	for dir, v := range x.repos {
		location := x.store.Location(strings.TrimSuffix(dir, "/"))
		byTag := map[string][]repo.Snapshot{}

		for _, s := range v.snapshots {
			for _, t := range s.Tags {
				if ns, name, ok := strings.Cut(t, "/"); ok && (repo.PVC{Namespace: ns, Name: name}).Validate() == nil {
					byTag[t] = append(byTag[t], s)
				}
			}
		}

		for t, snaps := range byTag {
			ns, name, _ := strings.Cut(t, "/")
			out = append(out, repo.Stored{Source: location + "#tag=" + t, PVC: repo.PVC{Namespace: ns, Name: name},
				Snapshots: len(snaps), Newest: newest(snaps)})
		}

		if v.err != nil {
			out = append(out, repo.Stored{Source: location, Err: v.err})
		}
	}

	return out
}

// newest returns a copy of the last snapshot of a list ordered oldest first (nil when empty).
func newest(snaps []repo.Snapshot) *repo.Snapshot {
	if len(snaps) == 0 {
		return nil
	}

	s := snaps[len(snaps)-1]

	return &s
}

// pvcOf inverts dir: the PVC whose repository the template places at dir (ending with "/"), or
// the zero PVC when none does or when several could ("{namespace}-{pvc}" and "web-my-app"):
// the directory is then listed by its location alone.
func (l layout) pvcOf(dir string) repo.PVC {
	greedy, lazy := l.match(dir, `+`), l.match(dir, `+?`)
	if greedy != lazy {
		return repo.PVC{}
	}

	if greedy.Validate() != nil || l.dir(greedy) != dir {
		return repo.PVC{}
	}

	return greedy
}

// match matches dir against the template with placeholders repeated by quantifier.
func (l layout) match(dir, quantifier string) repo.PVC {
	names := placeholderRe.FindAllString(l.template, -1)
	re := strings.NewReplacer(`\{namespace\}`, `([a-z0-9-]`+quantifier+`)`, `\{pvc\}`, `([a-z0-9.-]`+quantifier+`)`).
		Replace(regexp.QuoteMeta(l.template + "/"))

	m := regexp.MustCompile("^" + re + "$").FindStringSubmatch(dir)
	if m == nil {
		return repo.PVC{}
	}

	var p repo.PVC

	for i, n := range names {
		field := &p.Name
		if n == "{namespace}" {
			field = &p.Namespace
		}

		if *field != "" && *field != m[i+1] {
			return repo.PVC{}
		}

		*field = m[i+1]
	}

	return p
}

var placeholderRe = regexp.MustCompile(`\{namespace\}|\{pvc\}`)
