package kopia

import (
	"cmp"
	"path"
	"slices"
	"strings"
	"sync"

	"github.com/backup-oracle/backup-oracle/repo"
)

// Near-miss rules: how a source can hold a PVC's data under an identity that is not the one
// the PVC maps to. The naming-scheme rule's text is repo.SchemeMatch.Describe.
const (
	ruleOtherPath   = "same username and hostname, another path"
	ruleCut         = "the username the mover derives by itself, cut at 50 characters and possibly shared with another PVC"
	rulePathNamesIt = "a path naming the PVC (its directory holds one PVC per path)"
)

// hostIndex groups sources by hostname; built once per index, on first use.
type hostIndex struct {
	once   sync.Once
	byHost map[string][]repo.KopiaSource
}

func (i *Index) sourcesOfHost(host string) []repo.KopiaSource {
	i.hosts.once.Do(func() {
		i.hosts.byHost = map[string][]repo.KopiaSource{}
		for src := range i.sources {
			i.hosts.byHost[src.Host] = append(i.hosts.byHost[src.Host], src)
		}
	})

	return i.hosts.byHost[host]
}

// learn runs once per index, after its sources are known: it counts the sources the settings
// fit, learns the naming schemes the other sources show (repo.LearnNamingSchemes) and measures
// the settings' fit (repo.LayoutFit).
func (i *Index) learn(declared []repo.NamingScheme) {
	i.match = i.identity.Matcher()
	ownAffix := len(i.identity.OwnAffixes()) > 0

	fits := make(map[repo.KopiaSource]bool, len(i.sources))
	users := map[repo.HostUser]bool{}
	paths := map[string]bool{}

	for src := range i.sources {
		f := i.match.Fits(src)
		fits[src] = f
		paths[src.Path] = true

		if !f || !ownAffix { // a source the settings' own word explains says nothing of other schemes
			users[repo.HostUser{Host: src.Host, User: src.UserName}] = true
		}
	}

	i.schemes = repo.LearnNamingSchemes(sortedKeys(users, func(a, b repo.HostUser) int {
		return cmp.Or(strings.Compare(a.Host, b.Host), strings.Compare(a.User, b.User))
	}), sortedKeys(paths, strings.Compare), i.identity, declared)

	i.stats.Fitting = 0
	for _, f := range fits {
		if f {
			i.stats.Fitting++
		}
	}

	i.stats.Layout = i.layoutFit(fits, ownAffix)
}

func sortedKeys[K comparable](m map[K]bool, less func(a, b K) int) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}

	slices.SortFunc(out, less)

	return out
}

// layoutFit: among the sources whose hostname the settings give a namespace, those the settings
// produce (without reading a learned word as part of the PVC name when the settings add no word
// of their own) or a declared scheme explains, and the schemes the others follow.
func (i *Index) layoutFit(fits map[repo.KopiaSource]bool, ownAffix bool) repo.LayoutFit {
	var f repo.LayoutFit

	others := map[string]*repo.SchemeCount{}
	note := func(scheme string, src repo.KopiaSource) {
		o := others[scheme]
		if o == nil {
			o = &repo.SchemeCount{Scheme: scheme}
			others[scheme] = o
		}

		o.Sources++
		o.Examples = append(o.Examples, src.String())
		slices.Sort(o.Examples) // the three smallest: the same on every load

		if len(o.Examples) > 3 {
			o.Examples = o.Examples[:3]
		}
	}

	for src, fit := range fits {
		if !i.match.HostFits(src.Host) {
			continue
		}

		f.Considered++

		carrier, carries := i.schemes.Carrier(src.UserName)

		switch {
		case fit && (ownAffix || !carries):
			f.Expected++
		case src.Path == i.identity.Path && carries && carrier.Origin == repo.SchemeDeclared,
			src.Path == i.identity.Path && !carries && declaresBare(i.schemes.Declared):
			f.Expected++
		case src.Path != i.identity.Path:
			if dir := path.Dir(src.Path); i.schemes.PathParents[dir] {
				note("path "+dir+"/{pvc}", src)
			} else {
				note("path "+src.Path, src)
			}
		case carries:
			note(carrier.Template(), src)
		default:
			note("{pvc}", src)
		}
	}

	for _, o := range others {
		f.Others = append(f.Others, *o)
	}

	slices.SortFunc(f.Others, func(a, b repo.SchemeCount) int {
		return cmp.Or(b.Sources-a.Sources, strings.Compare(a.Scheme, b.Scheme))
	})

	return f
}

func declaresBare(declared []repo.NamingScheme) bool {
	return slices.ContainsFunc(declared, func(s repo.NamingScheme) bool { return s.Affix == "" })
}

// NearMisses implements repo.Index. Candidates are the sources of the PVC's namespace (the
// hostname the settings give it, the mover's default hostname, and "<hostname>.<anything>",
// kopiur's "<namespace>.<cluster>") that hold snapshots and are not the PVC's own identity:
//   - the same username with another path (a sourcePathOverride the oracle was not told of);
//   - the cut username the mover derives by itself when the PVC's identity is the
//     collision-free one (old backups of a long name, or an RS without explicit username);
//   - the PVC's name (or the settings' username for it) under a naming scheme: one word before
//     and/or after it, from the known schemes, the schemes the repository shows (learned) and
//     the declared ones, sanitised and cut as the mover derives a username (repo.Schemes);
//   - a path naming the PVC in a directory whose paths name one PVC each (kopiur's /pvc/<pvc>).
//
// A candidate the settings map to another PVC of the namespace is that PVC's own backup, not a
// near miss, unless it matched through a learned or declared scheme: then it may be either
// PVC's, and that ambiguity must not be fresh. Other namespaces' sources are never near misses;
// the movers' default path (/data) is never read as a name.
func (i *Index) NearMisses(pvc repo.PVC) []repo.NearMiss {
	self := i.identity.Source(pvc)
	cut, isCut := i.identity.CutSource(pvc)
	names := i.schemes.Usernames(pvc, self.UserName)

	var out []repo.NearMiss

	for _, host := range i.hostsFor(pvc, self.Host) {
		for _, src := range i.sourcesOfHost(host) {
			e := i.sources[src]
			if src == self || (len(e.snapshots) == 0 && e.incomplete == 0 && e.err == nil) {
				continue
			}

			var (
				rule      string
				overrides bool
			)

			switch m, named := names[src.UserName]; {
			case isCut && src == cut:
				rule, overrides = ruleCut, true
			case src.UserName == self.UserName && src.Host == self.Host:
				rule = ruleOtherPath
			case named:
				rule, overrides = m.Describe(), m.Overrides
			case i.schemes.NamesPVC(src.Path, pvc):
				rule = rulePathNamesIt
			default:
				continue
			}

			if !overrides && i.ownedByAnother(src, pvc) {
				continue
			}

			n := repo.NearMiss{Source: src.String(), Rule: rule, Snapshots: len(e.snapshots)}
			if k := len(e.snapshots); k > 0 { // oldest first
				n.Latest = i.snapshot(e.snapshots[k-1]).StartTime
			}

			out = append(out, n)
		}
	}

	slices.SortFunc(out, func(a, b repo.NearMiss) int { return strings.Compare(a.Source, b.Source) })

	return out
}

// hostsFor lists the hostnames of pvc's namespace: the settings' (own), the mover's default (the
// sanitised namespace), and the stored hostnames "<either>.<anything>".
func (i *Index) hostsFor(pvc repo.PVC, own string) []string {
	i.sourcesOfHost(own) // builds the host index

	bases := []string{own}
	if def := repo.KopiaHostname(pvc.Namespace, pvc.Name); def != own {
		bases = append(bases, def)
	}

	out := slices.Clone(bases)

	for h := range i.hosts.byHost {
		for _, b := range bases {
			if strings.HasPrefix(h, b+".") {
				out = append(out, h)
			}
		}
	}

	return out
}

// ownedByAnother reports whether the configured identity maps src to a valid PVC of pvc's
// namespace other than pvc: then src is that PVC's own backup.
func (i *Index) ownedByAnother(src repo.KopiaSource, pvc repo.PVC) bool {
	owner, ok := i.match.Owner(src)

	return ok && owner.Namespace == pvc.Namespace && owner.Name != pvc.Name
}
