//go:build e2e

package e2e

import (
	"net/http"
	"net/url"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness/kopiamover"
)

// restoreSourceAnnotation names the Kopia source a PVC is restored from.
const restoreSourceAnnotation = "backup-oracle.io/restore-source"

// namedPVC names its source: one no identity setting gives it, under its namespace's hostname
// followed by ".cluster-a" (kopiur's <namespace>.<cluster>) and with another path, so the RD must
// state it through sourceIdentity with a sourceNamespace that is not the RD's namespace.
const namedPVC = "media"

// namedSource is the source namedPVC names in namespace (written to the repository).
func namedSource(namespace string) string {
	return "media-volsync@" + namespace + ".cluster-a:/srv/media"
}

// restoreSource: a PVC naming an existing source of its namespace is restored from exactly that
// source (the RD, read by the Kopia mover's rules, states it); one naming a source that does not
// exist, another namespace's source, or a source the Kopia mover cannot restore is denied.
// other is the namespace of the other policy set, whose sources exist in the repository too.
func (r *run) restoreSource(want setExpectations, other string) {
	t := r.t
	src := namedSource(r.ns)

	looked := r.o.proc.Get(t, "/exists/"+r.ns+"/"+namedPVC+"?source="+url.QueryEscape(src))
	require.Equal(t, "restore", looked.Body["decision"], "the oracle must restore the named source: %v", looked.Body)

	restores := r.o.metric(t, "backup_oracle_restore_source_lookups_total{", `decision="restore"`)
	res := r.createAnnotated("restore-source", r.ns, namedPVC, "daily", map[string]string{restoreSourceAnnotation: src})
	require.Equal(t, http.StatusCreated, res.Code, res.Raw)
	assert.Equal(t, namedPVC+"-backup", str(res.Body, "spec", "dataSourceRef", "name"), "dataSourceRef of the PVC naming its source")
	assert.Greater(t, r.o.metric(t, "backup_oracle_restore_source_lookups_total{", `decision="restore"`), restores,
		"backup_oracle_restore_source_lookups_total{decision=restore}: the policies asked with the source")

	rd := r.waitFor(volsyncPath(r.ns, "replicationdestinations", namedPVC+"-backup"), true, 15*time.Second)
	dst := kopiamover.DestinationOf(rd)
	require.NoError(t, dst.CRDValid())

	got, err := dst.Source()
	require.NoError(t, err, "the Kopia mover refuses the RD of the PVC naming its source")
	assert.Equal(t, src, got, "the RD (mover rules) restores another source than the PVC names")
	assert.Equal(t, r.ns+".cluster-a", dst.SourceNamespace, "the RD states the hostname through sourceIdentity")
	r.assertFindsRepository(rd)
	r.strictDryRun("replicationdestinations", namedPVC+"-backup")

	for _, c := range []struct {
		name, source, reason string
	}{
		{"typo", "nothing-volsync@" + r.ns + ":/data", "named source not found"},
		{"intruder", kopiamover.PolicySource(other, "postgres"), "a PVC may only name a source of its own namespace"},
		{"unrestorable", "my.media@" + r.ns + ":/srv/media", "Kopia mover cannot restore this source"}, // Kyverno doubles the apostrophe of "VolSync's"
	} {
		res := r.createAnnotated("restore-source, "+c.name, r.ns, c.name, "daily", map[string]string{restoreSourceAnnotation: c.source})
		assert.Contains(t, []int{http.StatusBadRequest, http.StatusForbidden}, res.Code, res.Raw)
		assert.False(t, r.k.exists(t, pvcPath(r.ns, c.name)), "%s: the PVC naming %s was created", c.name, c.source)

		if want.nearMissReason || c.name == "unrestorable" { // the policy's own sentence needs no oracle reason
			assert.Contains(t, res.Message(), c.reason, "%s: the denial's reason", c.name)
		} else {
			assert.Contains(t, res.Message(), want.unknownMessage, "%s: the policy's message", c.name)
		}
	}
}
