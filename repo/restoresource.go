package repo

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
)

// RestoreSourceAnnotation is the PVC annotation naming the Kopia source a PVC is restored from,
// "<username>@<hostname>:<path>", when no identity setting gives it (a username the mover cut, a
// naming scheme no template expresses). The policies pass it to the oracle as ?source=.
const RestoreSourceAnnotation = "backup-oracle.io/restore-source"

// Reasons a lookup naming its source is Unknown.
var (
	// ErrSourceNotFound: no backend holds a complete snapshot of the named source.
	ErrSourceNotFound = errors.New("named source not found")
	// ErrForeignSource: the named source belongs to another namespace than the PVC's.
	ErrForeignSource = errors.New("named source of another namespace")
	// ErrNotRestorable: VolSync's Kopia ReplicationDestination cannot state the named source, so
	// it could not restore it.
	ErrNotRestorable = errors.New("named source not restorable by the Kopia mover")
	// ErrNamedSourceUnsupported: the backend has no named sources (restic: the mover restores the
	// repository its Secret names).
	ErrNamedSourceUnsupported = errors.New("named sources not supported")
)

// ParseKopiaSource reads "<username>@<hostname>:<path>" as Kopia splits a source (the username
// ends at the first '@', the hostname at the next ':'), and requires a username and a hostname
// without '@', ':' or white space, and an absolute path without white space. A malformed source
// is an error wrapping ErrInvalidParameter that says what is wrong.
func ParseKopiaSource(s string) (KopiaSource, error) {
	bad := func(why string) error {
		return fmt.Errorf("%w: source %q: %s; want <username>@<hostname>:<path>, e.g. data-volsync@media:/data", ErrInvalidParameter, s, why)
	}

	user, rest, ok := strings.Cut(s, "@")
	if !ok {
		return KopiaSource{}, bad("no '@' after the username")
	}

	host, path, ok := strings.Cut(rest, ":")

	switch {
	case !ok:
		return KopiaSource{}, bad("no ':' after the hostname")
	case user == "" || strings.ContainsAny(user, ":") || hasSpace(user):
		return KopiaSource{}, bad("the username is empty or holds ':' or white space")
	case host == "" || strings.ContainsAny(host, "@") || hasSpace(host):
		return KopiaSource{}, bad("the hostname is empty or holds '@' or white space")
	case !strings.HasPrefix(path, "/") || hasSpace(path):
		return KopiaSource{}, bad("the path is not absolute or holds white space")
	}

	return KopiaSource{UserName: user, Host: host, Path: path}, nil
}

func hasSpace(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0
}

// CheckOwner returns nil when src belongs to pvc's namespace: its hostname is the one the
// identity settings give pvc (the namespace by default), or that hostname followed by a dot and
// more (kopiur's <namespace>.<cluster>). Otherwise it returns an error wrapping
// ErrForeignSource: a PVC must not restore another namespace's data by naming it.
func (k KopiaIdentity) CheckOwner(pvc PVC, src KopiaSource) error {
	own := k.Source(pvc).Host
	if src.Host == own || strings.HasPrefix(src.Host, own+".") {
		return nil
	}

	return fmt.Errorf("%w: %s has hostname %q, but %s's sources have hostname %q (or %q followed by \".<anything>\"): "+
		"a PVC may only name a source of its own namespace", ErrForeignSource, src, src.Host, pvc, own, own)
}

// KopiaDestination is how a ReplicationDestination of the Kopia fork (perfectra1n/volsync
// v0.17.11) states a source: either Username and Hostname, or SourceIdentity with
// SourceName, SourceNamespace and SourcePathOverride (spec.kopia.sourceIdentity).
type KopiaDestination struct {
	Username, Hostname                              string
	SourceName, SourceNamespace, SourcePathOverride string
}

// SourceIdentity reports whether d is stated through spec.kopia.sourceIdentity.
func (d KopiaDestination) SourceIdentity() bool { return d.SourceName != "" }

// The fork's constraints on what an RD can state (integration/harness/kopiamover, destination.go,
// restates them with their citations):
var (
	// explicitName is the CRD's pattern for spec.kopia.username and hostname.
	explicitName = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9._-]*[a-zA-Z0-9])?$`)
	// derivedUser is a username the fork's username derivation leaves as it is.
	derivedUser = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9_-]*[A-Za-z0-9])?$`)
	// cutUser is a username the derivation produces by cutting a longer name at 50 characters
	// (it may then end in '-' or '_').
	cutUser = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)
	// derivedHost is a hostname the fork's hostname derivation leaves as it is.
	derivedHost = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$`)
)

// cutSuffix is appended to a 50-character username ending in '-' or '_' to make it a
// sourceName: the fork cuts the 51st character away again.
const cutSuffix = "x"

// KopiaDestinationOf returns how a ReplicationDestination of the Kopia fork restores src:
//   - path /data, username and hostname within the CRD's pattern: Username and Hostname (a
//     stated hostname makes the fork restore /data);
//   - otherwise sourceIdentity, with neither username nor hostname (the fork refuses one without
//     the other): SourceName is the username when the fork's derivation leaves it as it is (at
//     most 50 characters), or, for a 50-character username the fork cut to end in '-' or '_',
//     the username and one more character, which the fork cuts away; SourceNamespace is the
//     hostname, which the fork's derivation must leave as it is; SourcePathOverride the path.
//
// Any other source is an error wrapping ErrNotRestorable that says why.
func KopiaDestinationOf(src KopiaSource) (KopiaDestination, error) {
	if src.Path == DefaultKopiaPath && explicitName.MatchString(src.UserName) && explicitName.MatchString(src.Host) {
		return KopiaDestination{Username: src.UserName, Hostname: src.Host}, nil
	}

	d := KopiaDestination{SourceNamespace: src.Host, SourcePathOverride: src.Path}

	switch u := src.UserName; {
	case len(u) <= MaxKopiaUsernameLen && derivedUser.MatchString(u):
		d.SourceName = u
	case len(u) == MaxKopiaUsernameLen && cutUser.MatchString(u):
		d.SourceName = u + cutSuffix
	default:
		return KopiaDestination{}, fmt.Errorf("%w: %s: %s", ErrNotRestorable, src, unrestorable(src))
	}

	if !derivedHost.MatchString(src.Host) {
		return KopiaDestination{}, fmt.Errorf("%w: %s: %s", ErrNotRestorable, src, unrestorable(src))
	}

	return d, nil
}

// unrestorable says why a source has no KopiaDestination.
func unrestorable(src KopiaSource) string {
	if src.Path == DefaultKopiaPath {
		return "VolSync's Kopia ReplicationDestination can state neither this username and hostname (they must match " +
			explicitName.String() + ") nor derive them from a source name and namespace"
	}

	return "with a path other than /data, VolSync's Kopia ReplicationDestination must derive the username and hostname from " +
		"sourceIdentity's sourceName and sourceNamespace, and no name derives to these (a username of letters, digits, '-' and '_', " +
		"at most 50 characters, starting and ending with a letter or digit; a hostname of letters, digits, '-' and '.')"
}

// SettleRestoreSource applies to a, the combined answer for q, what a named source
// (Query.Source) changes: the answer echoes it, and Fresh, which would mean that no backend holds
// the named source, is Unknown wrapping ErrSourceNotFound (the PVC asked for that data: starting
// it empty would lose it). Without a named source a is returned as it is.
func SettleRestoreSource(a Answer, q Query) Answer {
	if q.Source == (KopiaSource{}) {
		return a
	}

	a.RestoreSource = q.Source.String()

	if a.Decision == Fresh {
		a.Decision = Unknown
		a.Reason = fmt.Errorf("%w: no backend (%s) holds a complete snapshot of %s, the source the PVC names (annotation %s): "+
			"a typo, or not backed up yet? The PVC would start empty", ErrSourceNotFound, a.Backend, q.Source, RestoreSourceAnnotation)
	}

	return a
}
