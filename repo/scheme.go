package repo

import (
	"cmp"
	"fmt"
	"path"
	"slices"
	"strings"
)

// A naming scheme is how a layout turns a PVC name into a Kopia username: the PVC's name, as the
// mover sanitises it, with a word before or after it ("{pvc}-volsync", "volsync-{pvc}"). The
// identity settings are one scheme; a repository can hold others (a predecessor's layout, a
// migration, a second cluster). The schemes a repository holds are learned from its sources
// (LearnNamingSchemes): the list of known schemes (KnownSchemes) is where the near-miss rule
// starts, not where it ends (DOMAIN.md 8 and 9: `-backup`, `-volsync`, `${APP}`, `-dst`, kopiur).

// SchemeOrigin says how a naming scheme became known.
type SchemeOrigin string

// Origins of a naming scheme.
const (
	// SchemeKnown: on the list of layouts seen in the wild (KnownSchemes).
	SchemeKnown SchemeOrigin = "known"
	// SchemeLearned: shared by enough of the repository's usernames (LearnNamingSchemes).
	SchemeLearned SchemeOrigin = "learned"
	// SchemeDeclared: stated by the operator as held on purpose (KOPIA_OTHER_SCHEMES).
	SchemeDeclared SchemeOrigin = "declared"
)

// NamingScheme is one affix a layout puts around the sanitised PVC name.
type NamingScheme struct {
	// Affix is the word with its separator: "-volsync" (a suffix) or "volsync-" (a prefix); empty
	// for the scheme whose username is the PVC's name itself (the ${APP} layouts).
	Affix  string
	Prefix bool
	// Usernames counts the distinct usernames (per hostname) that carry the affix; zero for a
	// known or declared scheme the repository does not show.
	Usernames int
	Origin    SchemeOrigin
}

// Template is the scheme as a source-name template: "{pvc}-volsync", "volsync-{pvc}", "{pvc}".
func (s NamingScheme) Template() string {
	if s.Prefix {
		return s.Affix + "{pvc}"
	}

	return "{pvc}" + s.Affix
}

// KnownSchemes are the username suffixes of layouts seen in the wild: the RS named after the app
// ("", the ${APP} layouts), this chart's "-backup", RDs named "-dst"/"-dest", "-src"/"-restore"
// pairs (DOMAIN.md 8).
func KnownSchemes() []NamingScheme {
	suffixes := []string{"", "-backup", "-dst", "-src", "-restore", "-dest"}
	out := make([]NamingScheme, 0, len(suffixes))

	for _, s := range suffixes {
		out = append(out, NamingScheme{Affix: s, Origin: SchemeKnown})
	}

	return out
}

// KnownPathParents are the path prefixes under which a layout stores one PVC per path, the last
// element naming it: kopiur's "/pvc/<pvc>" (DOMAIN.md 8).
func KnownPathParents() []string { return []string{"/pvc"} }

// Thresholds of LearnNamingSchemes. An affix is a scheme when at least minCarriers usernames
// carry it and either a quarter of the repository's unexplained usernames do, or two thirds of
// one hostname's (at least hostCarriers of them): a layout is applied to every PVC it backs up,
// so the usernames of the namespaces it covers carry its word; a word of PVC names ("-config")
// is carried by some of them. The README reports the precision this buys (make bench-nearmiss).
const (
	minCarriers  = 2
	hostCarriers = 3
	// A path parent holding this many distinct last elements is a per-PVC path scheme.
	minPathNames = 3
)

// Schemes are the naming schemes a repository shows, learned once per index. The zero value
// knows nothing; it is safe for concurrent use once built.
type Schemes struct {
	// Learned are the affixes the repository shows, most carried first.
	Learned []NamingScheme
	// Declared are the operator's (KOPIA_OTHER_SCHEMES).
	Declared []NamingScheme
	// PathParents are the directories whose paths name one PVC each (learned and known).
	PathParents map[string]bool
}

// HostUser is one username stored under one hostname.
type HostUser struct{ Host, User string }

// LearnNamingSchemes finds the affixes the repository's usernames share. users are the distinct
// (hostname, username) pairs not explained by the identity settings' own affix (see
// KopiaIdentity.OwnAffixes: a source of the settings' scheme says nothing about other schemes);
// paths are every source's path. The settings' own affixes are never learned. An affix is one
// word: the text before the first or after the last '-' or '_' of a username with at least two
// words.
func LearnNamingSchemes(users []HostUser, paths []string, id KopiaIdentity, declared []NamingScheme) Schemes {
	type key struct {
		affix  string
		prefix bool
	}

	own := map[key]bool{}
	for _, a := range id.OwnAffixes() { // and its outer word, the one a username's affix is compared with
		own[key{a.Affix, a.Prefix}] = true
		if a.Prefix {
			if i := strings.IndexAny(a.Affix, "-_"); i >= 0 {
				own[key{a.Affix[:i+1], true}] = true
			}
		} else if i := strings.LastIndexAny(a.Affix, "-_"); i >= 0 {
			own[key{a.Affix[i:], false}] = true
		}
	}

	total := map[key]int{}
	perHost := map[string]map[key]int{}
	hostTotal := map[string]int{}

	names := nameWords()

	for _, u := range users {
		hostTotal[u.Host]++

		for _, a := range wordAffixes(u.User) {
			if !schemeWord(a, u.Host, names) {
				continue
			}

			k := key{a.Affix, a.Prefix}
			total[k]++

			if perHost[u.Host] == nil {
				perHost[u.Host] = map[key]int{}
			}

			perHost[u.Host][k]++
		}
	}

	learned := map[key]bool{}

	for k, n := range total {
		if own[k] || n < minCarriers {
			continue
		}

		if 4*n >= len(users) {
			learned[k] = true
		}
	}

	for host, counts := range perHost {
		for k, n := range counts {
			if !own[k] && n >= hostCarriers && 3*n >= 2*hostTotal[host] {
				learned[k] = true
			}
		}
	}

	s := Schemes{Declared: declared, PathParents: learnPathParents(paths, id.Path)}
	for k := range learned {
		s.Learned = append(s.Learned, NamingScheme{Affix: k.affix, Prefix: k.prefix, Usernames: total[k], Origin: SchemeLearned})
	}

	slices.SortFunc(s.Learned, func(a, b NamingScheme) int {
		return cmp.Or(cmp.Compare(b.Usernames, a.Usernames), strings.Compare(a.Template(), b.Template()))
	})

	return s
}

// nameWords are words of PVC names, never of a layout: the kind of volume ("-config", "-data",
// "-cache"...) that many PVCs of a namespace end in. Without this list the names of a namespace of
// "<app>-config" PVCs would read as a "{pvc}-config" scheme, and PVC "<app>" a near miss of each.
func nameWords() map[string]bool {
	out := map[string]bool{}
	for _, w := range []string{"config", "conf", "data", "cache", "db", "database", "media", "storage", "files", "logs", "log",
		"uploads", "state", "vol", "volume", "pvc", "home", "work", "tmp", "www", "html", "static", "assets", "library", "downloads"} {
		out[w] = true
	}

	return out
}

// schemeWord reports whether an affix can be a layout's word: it holds a letter (StatefulSet
// ordinals "-0", "-1" are names), is not a name word, and, as a prefix, is not the first word
// of the hostname it was seen under (namespace "jellyfin" holding "jellyfin-config" and
// "jellyfin-cache": the app's name, not a scheme).
func schemeWord(a NamingScheme, host string, names map[string]bool) bool {
	w := strings.Trim(a.Affix, "-_")
	if names[strings.ToLower(w)] || !strings.ContainsFunc(w, func(r rune) bool { return isAlnum(r) && (r < '0' || r > '9') }) {
		return false
	}

	first, _, _ := strings.Cut(strings.ReplaceAll(host, "_", "-"), "-")
	first, _, _ = strings.Cut(first, ".")

	return !a.Prefix || !strings.EqualFold(w, first)
}

// wordAffixes returns a username's first word as a prefix and its last word as a suffix, each
// with its separator; nothing for a one-word username. Separators at either end are no word
// ("_a-snap" carries "-snap"; an explicit username is stored verbatim, so it may have them).
func wordAffixes(user string) []NamingScheme {
	user = strings.Trim(user, "-_")

	first := strings.IndexAny(user, "-_")
	if first == -1 {
		return nil
	}

	last := strings.LastIndexAny(user, "-_")

	return []NamingScheme{{Affix: user[:first+1], Prefix: true}, {Affix: user[last:]}}
}

// learnPathParents: the known parents, and every directory (not "/") holding at least
// minPathNames distinct last elements among the paths other than the settings' path and the
// movers' default (a path shared by a layout's every source is a mount point, not a name).
func learnPathParents(paths []string, own string) map[string]bool {
	names := map[string]map[string]bool{}

	for _, p := range paths {
		if p == own || p == DefaultKopiaPath {
			continue
		}

		dir := path.Dir(p)
		if dir == "/" || dir == "." {
			continue
		}

		if names[dir] == nil {
			names[dir] = map[string]bool{}
		}

		names[dir][path.Base(p)] = true
	}

	out := map[string]bool{}
	for _, p := range KnownPathParents() {
		out[p] = true
	}

	for dir, n := range names {
		if len(n) >= minPathNames {
			out[dir] = true
		}
	}

	return out
}

// Carrier returns the learned or declared scheme whose affix user carries, most carried first.
func (s Schemes) Carrier(user string) (NamingScheme, bool) {
	for _, list := range [][]NamingScheme{s.Declared, s.Learned} {
		for _, sc := range list {
			if sc.Affix == "" {
				continue
			}

			if (sc.Prefix && strings.HasPrefix(user, sc.Affix) && len(user) > len(sc.Affix)) ||
				(!sc.Prefix && strings.HasSuffix(user, sc.Affix) && len(user) > len(sc.Affix)) {
				return sc, true
			}
		}
	}

	return NamingScheme{}, false
}

// SchemeMatch is a username a PVC's name takes under some scheme, and why.
type SchemeMatch struct {
	// Schemes are the prefix and suffix schemes applied (one of them may be the empty affix).
	Prefix, Suffix NamingScheme
	// Overrides: a learned or declared affix is involved, so the username is this PVC's
	// possible identity even when the settings map it to another PVC (issue 18: with "{pvc}"
	// as the template and every source ending in -volsync, "data-volsync" may be PVC data's).
	Overrides bool
	// OfSettings: the affixes surround the settings' username for the PVC, not its name.
	OfSettings bool
}

// Template is the combined scheme as a source-name template.
func (m SchemeMatch) Template() string {
	stem := "{pvc}"
	if m.OfSettings {
		stem = "<the settings' username>"
	}

	return m.Prefix.Affix + stem + m.Suffix.Affix
}

// Describe says which scheme a near miss follows and the setting that would look it up.
func (m SchemeMatch) Describe() string {
	var from []string

	for _, s := range []NamingScheme{m.Prefix, m.Suffix} {
		switch {
		case s.Affix == "":
		case s.Origin == SchemeLearned:
			from = append(from, fmt.Sprintf("%q is carried by %d usernames of the repository", s.Affix, s.Usernames))
		case s.Origin == SchemeDeclared:
			from = append(from, fmt.Sprintf("%q is declared in KOPIA_OTHER_SCHEMES", s.Affix))
		}
	}

	what := "a known naming scheme"
	if len(from) > 0 {
		what = "a naming scheme the repository shows: " + strings.Join(from, ", ")
	}

	if m.OfSettings {
		return fmt.Sprintf("the PVC's username under the scheme %s (%s)", m.Template(), what)
	}

	return fmt.Sprintf("the PVC's name under the scheme %s (%s; KOPIA_SOURCE_NAME_TEMPLATE=%s would look it up)", m.Template(), what, m.Template())
}

// Usernames returns the usernames pvc's name takes under every combination of one prefix and one
// suffix scheme (known, learned, declared; each may be empty), as VolSync's Kopia mover derives a
// username from a ReplicationSource name (KopiaUsername: sanitised, cut at 50 characters), and
// the same around settingsUser (the settings' username for pvc) when that differs from the
// sanitised name. The empty combination (the sanitised name itself) is included.
func (s Schemes) Usernames(pvc PVC, settingsUser string) map[string]SchemeMatch {
	prefixes := []NamingScheme{{Origin: SchemeKnown}}
	suffixes := []NamingScheme{}

	for _, list := range [][]NamingScheme{KnownSchemes(), s.Learned, s.Declared} {
		for _, sc := range list {
			if sc.Prefix {
				prefixes = append(prefixes, sc)
			} else {
				suffixes = append(suffixes, sc)
			}
		}
	}

	stems := []string{pvc.Name}
	if settingsUser != "" && settingsUser != KopiaUsername(pvc.Name) {
		stems = append(stems, settingsUser)
	}

	out := map[string]SchemeMatch{}

	for i, stem := range stems {
		for _, p := range prefixes {
			for _, sf := range suffixes {
				m := SchemeMatch{Prefix: p, Suffix: sf, Overrides: p.Origin != SchemeKnown || sf.Origin != SchemeKnown, OfSettings: i > 0}
				u := KopiaUsername(p.Affix + stem + sf.Affix)

				if prev, ok := out[u]; !ok || (m.Overrides && !prev.Overrides) {
					out[u] = m
				}
			}
		}
	}

	return out
}

// NamesPVC reports whether a source path names pvc: its last element is the PVC's name and its
// directory is one whose paths name a PVC each (kopiur's /pvc, or learned). The movers' default
// path (/data) and any top-level directory are mount points, never names.
func (s Schemes) NamesPVC(p string, pvc PVC) bool {
	dir := path.Dir(p)

	return path.Base(p) == pvc.Name && dir != "/" && s.PathParents[dir]
}

// ParseSchemes parses KOPIA_OTHER_SCHEMES: comma-separated source-name templates of layouts the
// repository holds on purpose, each "{pvc}" with one word before or after it ("{pvc}-volsync",
// "volsync-{pvc}", "{pvc}"). An error wraps ErrInvalidConfig and names the bad entry.
func ParseSchemes(list string) ([]NamingScheme, error) {
	var out []NamingScheme

	for _, t := range strings.Split(list, ",") {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}

		before, after, ok := strings.Cut(t, "{pvc}")
		switch {
		case !ok || strings.Contains(after, "{pvc}"):
			return nil, fmt.Errorf("%w: KOPIA_OTHER_SCHEMES entry %q: want one {pvc}, with a word before or after it, e.g. {pvc}-volsync", ErrInvalidConfig, t)
		case before != "" && after != "":
			return nil, fmt.Errorf("%w: KOPIA_OTHER_SCHEMES entry %q: a word before or after {pvc}, not both", ErrInvalidConfig, t)
		case strings.ContainsAny(before+after, "{}") || sanitizePart(before+after) != before+after:
			return nil, fmt.Errorf("%w: KOPIA_OTHER_SCHEMES entry %q: the word may hold only letters, digits, '-' and '_' (what the mover keeps of a name)", ErrInvalidConfig, t)
		}

		out = append(out, NamingScheme{Affix: before + after, Prefix: before != "", Origin: SchemeDeclared})
	}

	return out, nil
}

// OwnAffixes are the words the identity settings put around the PVC name in every username they
// produce (the literal text of the username or source-name template before and after {pvc},
// as the mover sanitises it): "-backup" for "{pvc}-backup". Empty for "{pvc}" and for a template
// whose literal parts depend on the namespace.
func (k KopiaIdentity) OwnAffixes() []NamingScheme {
	tmpl, clean := k.SourceName, sanitizePart
	if k.UserName != "" {
		tmpl, clean = k.UserName, identityPart
	}

	before, after, ok := strings.Cut(tmpl, "{pvc}")
	if !ok || strings.Contains(before+after, "{") {
		return nil
	}

	var out []NamingScheme
	if b := clean(before); b != "" {
		out = append(out, NamingScheme{Affix: b, Prefix: true})
	}

	if a := clean(after); a != "" {
		out = append(out, NamingScheme{Affix: a})
	}

	return out
}

// LayoutFit is how well the identity settings fit a repository's sources (issue 18: a repository
// where the settings fit a minority of the sources is read under the wrong layout, or holds
// several on purpose).
type LayoutFit struct {
	// Considered counts the sources whose hostname the settings give some namespace (sources of
	// other hostnames, kopiur's "<namespace>.<cluster>" say, are another tool's or cluster's).
	Considered int
	// Expected counts the considered sources the settings produce without reading another
	// scheme's word as part of a PVC name, and those of the declared schemes.
	Expected int
	// Others are the schemes the other considered sources follow, most sources first.
	Others []SchemeCount
}

// SchemeCount is a scheme and how many sources follow it.
type SchemeCount struct {
	// Scheme is a source-name template ("{pvc}-volsync"), or "path <dir>/{pvc}", or
	// "path <path>" for sources on another path.
	Scheme  string
	Sources int
	// Examples are up to three of those sources, sorted.
	Examples []string
}

// Minority reports whether the settings fit fewer than half of the considered sources.
func (f LayoutFit) Minority() bool { return f.Considered > 0 && 2*f.Expected < f.Considered }

// Warning describes a minority fit for /status, logs and --check-config; empty otherwise.
func (f LayoutFit) Warning() string {
	if !f.Minority() {
		return ""
	}

	var parts []string

	for i, o := range f.Others {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("and %d more", len(f.Others)-i))
			break
		}

		ex := ""
		if len(o.Examples) > 0 {
			ex = ", e.g. " + strings.Join(o.Examples, ", ")
		}

		parts = append(parts, fmt.Sprintf("%s (%d%s)", o.Scheme, o.Sources, ex))
	}

	msg := fmt.Sprintf("the identity settings fit %d of the %d sources of the namespaces' hostnames; the others follow %s",
		f.Expected, f.Considered, strings.Join(parts, ", "))

	if len(f.Others) > 0 && !strings.HasPrefix(f.Others[0].Scheme, "path ") {
		msg += fmt.Sprintf(": if that is your movers' layout, set KOPIA_SOURCE_NAME_TEMPLATE=%s", f.Others[0].Scheme)
	}

	return msg + "; if the repository holds other layouts on purpose, declare them in KOPIA_OTHER_SCHEMES. " +
		"Until then each PVC whose data is under another scheme is answered unknown (a near miss)"
}
