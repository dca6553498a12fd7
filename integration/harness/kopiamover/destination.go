package kopiamover

import (
	"errors"
	"fmt"
	"regexp"
)

// The rules by which the fork's ReplicationDestination chooses the source it restores, restated
// from perfectra1n/volsync at tag v0.17.11 (commit 0b08a4874576188255523833c9569c5f252064d0).
// File names are relative to internal/controller/mover/kopia/ unless given in full.
//
//   - D1, the pairing check (builder.go, validateDestinationIdentity, called first by
//     FromDestination): an RD that states a non-empty username but no hostname, or a hostname but
//     no username, is an error. FromDestination returns it, so no mover is built, no Job is made
//     and the RD never restores: a PVC waiting on it stays Pending.
//   - D2, the username (builder.go, FromDestination): a non-empty spec.kopia.username is taken as
//     it is. Otherwise, when spec.kopia.sourceIdentity names a source (a non-empty sourceName),
//     the username is derived from sourceName exactly as a ReplicationSource's name is
//     (generateUsername: sanitised, "volsync-default" when nothing is left, cut at 50). Otherwise
//     it is derived the same way from the RD's own name.
//   - D3, the hostname and what a stated hostname does to the path (builder.go, FromDestination):
//     a non-empty spec.kopia.hostname is taken as it is, and then the path is never read from
//     sourceIdentity: the branch that reads sourceIdentity.sourcePathOverride (and discovers one)
//     is the one for a derived hostname, so an RD stating a hostname restores /data. Otherwise,
//     with sourceIdentity, the hostname is generateHostname of the source namespace (then of
//     sourceName) and the path is sourceIdentity.sourcePathOverride, else the discovered one (D4).
//     Otherwise the hostname comes from the RD's own namespace and the path is /data.
//   - D4, discovery (builder.go, FromDestination, discoverSourceInfo and extractSourceInfo): only
//     on the sourceIdentity branch of D3 and only when sourcePVCName is empty, the fork reads the
//     ReplicationSource named sourceName in the source namespace. If it exists and is a Kopia RS,
//     its sourcePathOverride is used when the RD states none, and its repository when the RD
//     states none. The PVC it names reaches generateHostname, which ignores that argument, so
//     discovery never changes the username or the hostname.
//   - D5, the source namespace (builder.go, FromDestination): sourceIdentity.sourceNamespace,
//     defaulting to the RD's namespace. Nothing checks that it is a namespace: it is sanitised
//     for a hostname and used, so any hostname that the hostname sanitising leaves unchanged can
//     be stated through it (discovery in a namespace that does not exist finds nothing).
//   - D6, the path looked up (mover.go, addDestinationEnvVars; mover-kopia/entry.sh,
//     select_snapshot_to_restore): the restore Job gets KOPIA_SOURCE_PATH_OVERRIDE only when a
//     path was chosen, and lists the snapshots of <username>@<hostname>:<that path>, else of
//     <username>@<hostname>:/data. A stated sourcePathOverride of /data is therefore the same
//     as none.
//
// One more check happens before the fork sees the RD: the CRD (api/v1alpha1/
// replicationdestination_types.go, ReplicationDestinationKopiaSpec) lets spec.kopia.username and
// spec.kopia.hostname through only when they match ExplicitNamePattern, so a username ending in
// '-' (the mover's own cut of a long name can) cannot be stated explicitly.

// ErrRejected is D1: the fork refuses the ReplicationDestination and never restores it.
var ErrRejected = errors.New("rejected by the Kopia mover (validateDestinationIdentity)")

// ExplicitNamePattern is the CRD's pattern for an RD's spec.kopia.username and hostname.
const ExplicitNamePattern = `^[a-zA-Z0-9][a-zA-Z0-9._-]*[a-zA-Z0-9]$|^[a-zA-Z0-9]$`

var explicitName = regexp.MustCompile(ExplicitNamePattern)

// ReplicationDestination holds the fields of a ReplicationDestination the fork reads to choose
// the source it restores. Empty strings are unset fields.
type ReplicationDestination struct {
	Name, Namespace string
	// Username, Hostname: spec.kopia.username and .hostname.
	Username, Hostname string
	// SourceName, SourceNamespace, SourcePVCName, SourcePathOverride: spec.kopia.sourceIdentity.
	SourceName, SourceNamespace, SourcePVCName, SourcePathOverride string
	// DiscoverablePathOverride is the sourcePathOverride of the ReplicationSource named
	// SourceName in the source namespace, when such a Kopia RS exists and states one: what D4
	// would find. Empty when there is none.
	DiscoverablePathOverride string
}

// Source returns the source the fork restores this RD from, username@hostname:path, or an error
// wrapping ErrRejected when the fork refuses the RD (D1). It does not apply the CRD's pattern:
// see CRDValid.
func (rd ReplicationDestination) Source() (string, error) {
	switch {
	case rd.Username != "" && rd.Hostname == "":
		return "", fmt.Errorf("RD %s/%s: %w: username %q without a hostname", rd.Namespace, rd.Name, ErrRejected, rd.Username)
	case rd.Username == "" && rd.Hostname != "":
		return "", fmt.Errorf("RD %s/%s: %w: hostname %q without a username", rd.Namespace, rd.Name, ErrRejected, rd.Hostname)
	}

	fromIdentity := rd.SourceName != ""

	name := rd.Name
	if fromIdentity {
		name = rd.SourceName
	}

	namespace := rd.Namespace
	if fromIdentity && rd.SourceNamespace != "" {
		namespace = rd.SourceNamespace
	}

	path := ""

	if fromIdentity && rd.Hostname == "" {
		path = rd.SourcePathOverride
		if path == "" && rd.SourcePVCName == "" {
			path = rd.DiscoverablePathOverride
		}
	}

	return Username(rd.Username, name) + "@" + Hostname(rd.Hostname, namespace, name) + ":" + Path(path), nil
}

// CRDValid reports whether the API server lets the RD's explicit username and hostname through
// (ExplicitNamePattern; an unset field is not checked).
func (rd ReplicationDestination) CRDValid() error {
	for _, f := range []struct{ field, value string }{{"username", rd.Username}, {"hostname", rd.Hostname}} {
		if f.value != "" && !explicitName.MatchString(f.value) {
			return fmt.Errorf("RD %s/%s: spec.kopia.%s %q does not match the CRD's pattern %s", rd.Namespace, rd.Name, f.field, f.value, ExplicitNamePattern)
		}
	}

	return nil
}

// DestinationOf reads a ReplicationDestination object (decoded JSON or YAML: metadata.name and
// namespace, spec.kopia's identity fields).
func DestinationOf(obj map[string]any) ReplicationDestination {
	kopia := lookup(obj, "spec", "kopia")
	si := lookup(kopia, "sourceIdentity")

	return ReplicationDestination{
		Name: text(lookup(obj, "metadata"), "name"), Namespace: text(lookup(obj, "metadata"), "namespace"),
		Username: text(kopia, "username"), Hostname: text(kopia, "hostname"),
		SourceName: text(si, "sourceName"), SourceNamespace: text(si, "sourceNamespace"),
		SourcePVCName: text(si, "sourcePVCName"), SourcePathOverride: text(si, "sourcePathOverride"),
	}
}

func lookup(obj map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		obj, _ = obj[k].(map[string]any)
	}

	return obj
}

func text(obj map[string]any, key string) string {
	s, _ := obj[key].(string)
	return s
}
