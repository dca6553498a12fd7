//go:build e2e

package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness/kopiamover"
)

// schedule is the RS schedule the policies document: minute (16·h0 + h1) mod 60 of
// sha256("<ns>/<pvc>"), then the label's hours.
func schedule(namespace, pvc, label string) string {
	sum := sha256.Sum256([]byte(namespace + "/" + pvc))
	h := hex.EncodeToString(sum[:])
	digit := func(c byte) int { return strings.IndexByte("0123456789abcdef", c) }
	minute := (16*digit(h[0]) + digit(h[1])) % 60

	return fmt.Sprintf("%d %s", minute, map[string]string{"hourly": "* * * *", "daily": "2 * * *"}[label])
}

const moverSecurityContext = `{"fsGroup": 568, "runAsGroup": 568, "runAsNonRoot": true, "runAsUser": 568,
  "seccompProfile": {"type": "RuntimeDefault"}}`

// moverVolumes: the movers mount the oracle's own NFS export (chart testdata/values/default.yaml)
// when policies.nfs is not set.
const moverVolumes = `[{"mountPath": "repository", "volumeSource": {"nfs": {"path": "/volsync/kopia", "server": "nfs.example.internal"}}}]`

// wantRDSpec is the ReplicationDestination spec the policies write for a restored PVC. The
// stored spec must equal it: a field the CRD does not know would have been pruned.
func wantRDSpec(t *testing.T, namespace, pvc, uid string) map[string]any {
	t.Helper()

	rs := kopiamover.PolicyReplicationSource(namespace, pvc)

	return decode(t, fmt.Sprintf(`{"trigger": {"manual": "restore-%s"}, "kopia": {"repository": "volsync-%s",
	  "copyMethod": "Snapshot", "moverSecurityContext": %s, "moverVolumes": %s, "username": %q, "hostname": %q, "capacity": "1Gi", "accessModes": ["ReadWriteOnce"]}}`,
		uid, pvc, moverSecurityContext, moverVolumes, rs.Username, rs.Hostname))
}

// wantRSSpec is the ReplicationSource spec the policies write for a bound PVC.
func wantRSSpec(t *testing.T, namespace, pvc, label string) map[string]any {
	t.Helper()

	rs := kopiamover.PolicyReplicationSource(namespace, pvc)

	return decode(t, fmt.Sprintf(`{"sourcePVC": %q, "trigger": {"schedule": %q}, "kopia": {"repository": "volsync-%s",
	  "copyMethod": "Snapshot", "moverSecurityContext": %s, "moverVolumes": %s, "username": %q, "hostname": %q, "retain": {"daily": 7, "hourly": 24, "monthly": 2, "weekly": 4}}}`,
		pvc, schedule(namespace, pvc, label), pvc, moverSecurityContext, moverVolumes, rs.Username, rs.Hostname))
}

func decode(t *testing.T, s string) map[string]any {
	t.Helper()

	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(s), &m), s)

	return m
}
