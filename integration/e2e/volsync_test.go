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
)

// moverIdentity is the Kopia source VolSync's Kopia mover (perfectra1n fork) uses for an RS or
// an RD without username, hostname or sourceIdentity, written from the mover's rules
// (DOMAIN.md section 2), independently of repo.KopiaIdentity: username = the object's name
// keeping [A-Za-z0-9_-], trimmed of - and _, volsync-default if empty, cut to 50 characters;
// hostname = the namespace keeping [A-Za-z0-9.-] with _ as -, trimmed of - and .; path /data.
func moverIdentity(name, namespace string) string {
	keep := func(s string, ok func(rune) bool, repl map[rune]rune) string {
		var b strings.Builder
		for _, r := range s {
			if n, ok := repl[r]; ok {
				r = n
			}

			if ok(r) {
				b.WriteRune(r)
			}
		}

		return b.String()
	}
	alnum := func(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' }

	user := strings.Trim(keep(name, func(r rune) bool { return alnum(r) || r == '-' || r == '_' }, nil), "-_")
	if user == "" {
		user = "volsync-default"
	}

	if len(user) > 50 {
		user = user[:50]
	}

	host := strings.Trim(keep(namespace, func(r rune) bool { return alnum(r) || r == '-' || r == '.' }, map[rune]rune{'_': '-'}), "-.")

	return user + "@" + host + ":/data"
}

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

// wantRDSpec is the ReplicationDestination spec the policies write for a restored PVC. The
// stored spec must equal it: a field the CRD does not know would have been pruned.
func wantRDSpec(t *testing.T, pvc, uid string) map[string]any {
	t.Helper()

	return decode(t, fmt.Sprintf(`{"trigger": {"manual": "restore-%s"}, "kopia": {"repository": "volsync-%s",
	  "copyMethod": "Snapshot", "moverSecurityContext": %s, "capacity": "1Gi", "accessModes": ["ReadWriteOnce"]}}`,
		uid, pvc, moverSecurityContext))
}

// wantRSSpec is the ReplicationSource spec the policies write for a bound PVC.
func wantRSSpec(t *testing.T, namespace, pvc, label string) map[string]any {
	t.Helper()

	return decode(t, fmt.Sprintf(`{"sourcePVC": %q, "trigger": {"schedule": %q}, "kopia": {"repository": "volsync-%s",
	  "copyMethod": "Snapshot", "moverSecurityContext": %s, "retain": {"daily": 7, "hourly": 24, "monthly": 2, "weekly": 4}}}`,
		pvc, schedule(namespace, pvc, label), pvc, moverSecurityContext))
}

func decode(t *testing.T, s string) map[string]any {
	t.Helper()

	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(s), &m), s)

	return m
}

func TestMoverIdentity(t *testing.T) {
	for _, c := range []struct{ name, ns, want string }{
		{"postgres-backup", "web", "postgres-backup@web:/data"},
		{"my.app.data-backup", "web", "myappdata-backup@web:/data"},
		{"analytics-warehouse-clickhouse-data-volume-claim-replica-0001-backup", "db",
			"analytics-warehouse-clickhouse-data-volume-claim-r@db:/data"},
		{"..", "my_ns.", "volsync-default@my-ns:/data"},
	} {
		require.Equal(t, c.want, moverIdentity(c.name, c.ns))
	}
}
