// Package kopiamover restates, for tests, the rules by which VolSync's Kopia mover (the
// perfectra1n/volsync fork, tag v0.17.11, commit 0b08a4874576188255523833c9569c5f252064d0) names
// the Kopia source (username@hostname:path) it writes snapshots under and restores from.
//
// It is the independent side of every identity test: repo.KopiaIdentity is the oracle's
// implementation, this package is the mover's behaviour, written from the mover's source and not
// from the oracle's code (it must never call repo.KopiaUsername or its siblings). Where the two
// disagree, the oracle looks up a source the mover never writes, and answers an authoritative
// "fresh" over existing backups.
//
// Sources, all in the fork at v0.17.11:
//   - internal/controller/mover/kopia/builder.go, generateUsername: an explicit
//     spec.kopia.username is used as is; otherwise the object's name through
//     sanitizeForIdentifier(name, allowUnderscore=true, allowDots=false), "volsync-default"
//     (defaultUsername) when that is empty, then cut to maxUsernameLength = 50 bytes. Sanitising
//     and trimming happen before the cut, so a cut name may end in '-' or '_'.
//   - builder.go, generateHostname: an explicit spec.kopia.hostname is used as is; otherwise the
//     namespace through sanitizeForHostname (= sanitizeForIdentifier(s, false, true)); if empty,
//     the object's name through the same; if still empty, "volsync-default". The PVC argument is
//     ignored (hostname is the namespace only).
//   - builder.go, sanitizeForIdentifier: keep ASCII letters, digits and '-'; '_' is kept
//     (usernames) or becomes '-' (hostnames); '.' is kept only for hostnames; everything else,
//     including every non-ASCII rune, is dropped. Then trim '-' (and '_' for usernames, '.' for
//     hostnames) at both ends. No cut for hostnames.
//   - builder.go, createSourceMover: a ReplicationSource uses its own name and namespace.
//   - builder.go, FromDestination and validateDestinationIdentity: a ReplicationDestination's
//     source, rules D1 to D6 in destination.go.
//   - mover.go (sourceMountPath = "/data", KOPIA_SOURCE_PATH_OVERRIDE) and mover-kopia/entry.sh
//     (`snapshot create ${DATA_DIR} --override-source=${KOPIA_SOURCE_PATH_OVERRIDE}`; a restore
//     looks for path /data): the path is spec.kopia.sourcePathOverride, else /data.
package kopiamover

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// The mover's constants (builder.go, mover.go).
const (
	DefaultIdentity   = "volsync-default"
	MaxUsernameLength = 50
	DefaultPath       = "/data"
)

// ReplicationSource holds the fields of a ReplicationSource the mover's identity depends on.
// Empty optional fields are unset.
type ReplicationSource struct {
	Name, Namespace string
	// Username, Hostname, SourcePathOverride: spec.kopia.username, .hostname, .sourcePathOverride.
	Username, Hostname, SourcePathOverride string
}

// Source returns the source the mover writes this RS's snapshots under, username@hostname:path.
func (rs ReplicationSource) Source() string {
	return Username(rs.Username, rs.Name) + "@" + Hostname(rs.Hostname, rs.Namespace, rs.Name) + ":" + Path(rs.SourcePathOverride)
}

// PolicySource is the source of the ReplicationSource the shipped policies generate for PVC
// pvc in namespace (PolicyReplicationSource).
func PolicySource(namespace, pvc string) string {
	return PolicyReplicationSource(namespace, pvc).Source()
}

// PolicyReplicationSource is the ReplicationSource the shipped policies generate for PVC pvc in
// namespace, restated from the chart (templates/_helpers.tpl, "bo.kopiaIdentityContext" and
// "bo.kopiaIdentityCEL"): RS "<pvc>-backup", no path, and an explicit spec.kopia.hostname (the
// namespace) and spec.kopia.username: the RS name sanitised as the mover does, or, when that is
// longer than 50 characters (so the mover would cut it, and two such names could share it), its
// first 41 characters, "-", and the first 8 hex digits of sha256("<namespace>/<pvc>"). The
// generated RD states the same username and hostname.
func PolicyReplicationSource(namespace, pvc string) ReplicationSource {
	rs := ReplicationSource{Name: pvc + "-backup", Namespace: namespace, Hostname: namespace}

	rs.Username = sanitize(rs.Name, true, false)
	if len(rs.Username) > MaxUsernameLength {
		sum := sha256.Sum256([]byte(namespace + "/" + pvc))
		rs.Username = rs.Username[:41] + "-" + hex.EncodeToString(sum[:4])
	}

	return rs
}

// Username is generateUsername: explicit when set, else objectName sanitised, defaulted, cut.
func Username(explicit, objectName string) string {
	if explicit != "" {
		return explicit
	}

	u := sanitize(objectName, true, false)
	if u == "" {
		return DefaultIdentity
	}

	if len(u) > MaxUsernameLength {
		u = u[:MaxUsernameLength]
	}

	return u
}

// Hostname is generateHostname: explicit when set, else the namespace, else the object's name,
// each sanitised for a hostname, else "volsync-default".
func Hostname(explicit, namespace, objectName string) string {
	if explicit != "" {
		return explicit
	}

	if h := sanitize(namespace, false, true); h != "" {
		return h
	}

	if h := sanitize(objectName, false, true); h != "" {
		return h
	}

	return DefaultIdentity
}

// Path is the snapshot path: sourcePathOverride when set, else /data.
func Path(sourcePathOverride string) string {
	if sourcePathOverride != "" {
		return sourcePathOverride
	}

	return DefaultPath
}

// sanitize is sanitizeForIdentifier(input, allowUnderscore, allowDots).
func sanitize(input string, allowUnderscore, allowDots bool) string {
	var b strings.Builder

	for _, r := range input {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '-':
			b.WriteRune(r)
		case r == '_' && allowUnderscore:
			b.WriteRune(r)
		case r == '_':
			b.WriteRune('-')
		case r == '.' && allowDots:
			b.WriteRune(r)
		}
	}

	cut := "-"
	if allowUnderscore {
		cut += "_"
	}

	if allowDots {
		cut += "."
	}

	return strings.Trim(b.String(), cut)
}
