package kopia

import (
	"slices"
	"strings"
	"sync"

	"github.com/backup-oracle/backup-oracle/repo"
)

// Near-miss rules: how a source can hold a PVC's data under an identity that is not the one
// the PVC maps to (DOMAIN.md 8: the naming schemes in use for VolSync and its successors).
const (
	ruleOtherPath   = "same username and hostname, another path"
	ruleCut         = "the username the mover derives by itself, cut at 50 characters and possibly shared with another PVC"
	ruleOtherScheme = "the PVC's username under another naming scheme"
	rulePathNamesIt = "a path naming the PVC"
)

// usernameSuffixes are the suffixes other naming schemes put after the PVC or app name
// (RS "<app>", RD "<app>-dst", "-src"/"-restore" pairs, the predecessor's "-backup").
func usernameSuffixes() []string { return []string{"", "-backup", "-dst", "-src", "-restore", "-dest"} }

// hostIndex groups sources by hostname and holds the identity's matcher; built once per
// index, on first use.
type hostIndex struct {
	once    sync.Once
	byHost  map[string][]repo.KopiaSource
	matcher *repo.SourceMatcher
}

func (i *Index) matcher() *repo.SourceMatcher {
	i.sourcesOfHost("")

	return i.hosts.matcher
}

func (i *Index) sourcesOfHost(host string) []repo.KopiaSource {
	i.hosts.once.Do(func() {
		i.hosts.matcher = i.identity.Matcher()
		i.hosts.byHost = map[string][]repo.KopiaSource{}
		for src := range i.sources {
			i.hosts.byHost[src.Host] = append(i.hosts.byHost[src.Host], src)
		}
	})

	return i.hosts.byHost[host]
}

// NearMisses implements repo.Index. Candidates are the sources of the PVC's hostname (and of
// hostnames "<hostname>.<anything>", kopiur's "<namespace>.<cluster>") that hold snapshots
// and are not the PVC's own identity:
//   - the same username with another path (a sourcePathOverride the oracle was not told of);
//   - the cut username the mover derives by itself when the PVC's identity is the
//     collision-free one (old backups of a long name, or an RS without explicit username);
//   - the sanitised PVC name with another naming scheme's suffix ("", -backup, -dst, -src,
//     -restore, -dest);
//   - any username with a path ending in "/<pvc>" (kopiur stores "/pvc/<pvc>").
//
// A candidate that the configured identity maps to another valid PVC of the namespace is that
// PVC's own backup, not a near miss. Other namespaces' sources are never near misses.
func (i *Index) NearMisses(pvc repo.PVC) []repo.NearMiss {
	self := i.identity.Source(pvc)
	cut, isCut := i.identity.CutSource(pvc)

	variants := map[string]bool{}
	for _, suffix := range usernameSuffixes() {
		variants[repo.KopiaUsername(pvc.Name+suffix)] = true
	}

	var out []repo.NearMiss

	for _, host := range i.hostsFor(self.Host) {
		for _, src := range i.sourcesOfHost(host) {
			if src == self {
				continue
			}

			e := i.sources[src]
			if len(e.snapshots) == 0 && e.incomplete == 0 && e.err == nil {
				continue
			}

			var rule string

			switch {
			case isCut && src == cut:
				rule = ruleCut
			case src.UserName == self.UserName && src.Host == self.Host:
				rule = ruleOtherPath
			case variants[src.UserName]:
				rule = ruleOtherScheme
			case strings.HasSuffix(src.Path, "/"+pvc.Name):
				rule = rulePathNamesIt
			default:
				continue
			}

			if rule != ruleCut && i.ownedByAnother(src, pvc) {
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

// hostsFor lists host and the stored hostnames "<host>.<anything>".
func (i *Index) hostsFor(host string) []string {
	i.sourcesOfHost(host) // builds the host index

	out := []string{host}

	for h := range i.hosts.byHost {
		if strings.HasPrefix(h, host+".") {
			out = append(out, h)
		}
	}

	return out
}

// ownedByAnother reports whether the configured identity maps src to a valid PVC of pvc's
// namespace other than pvc: then src is that PVC's own backup.
func (i *Index) ownedByAnother(src repo.KopiaSource, pvc repo.PVC) bool {
	owner, ok := i.matcher().Owner(src)

	return ok && owner.Namespace == pvc.Namespace && owner.Name != pvc.Name
}

// fitting counts the sources the identity settings could have produced.
func (i *Index) fitting() int {
	m := i.matcher()
	n := 0

	for src := range i.sources {
		if m.Fits(src) {
			n++
		}
	}

	return n
}
