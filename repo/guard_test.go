package repo_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/repo"
)

type fakeLedger struct {
	pvcs map[repo.PVC]bool
	err  error
}

func (f fakeLedger) Expected(p repo.PVC) (bool, error) { return f.pvcs[p], f.err }

func TestGuards(t *testing.T) {
	app := repo.PVC{Namespace: "web", Name: "app"}
	near := []repo.NearMiss{{Backend: "kopia-fs", Source: "app-backup@web:/var/lib/app", Rule: "same username and hostname, another path", Snapshots: 2}}
	fresh := repo.Answer{PVC: app, Decision: repo.Fresh, Source: "app-backup@web:/data"}
	freshNear := fresh
	freshNear.NearMisses = near
	restore := repo.Answer{PVC: app, Decision: repo.Restore, Source: "app-backup@web:/data", SnapshotCount: 1, NearMisses: near}
	unknown := repo.Answer{PVC: app, Decision: repo.Unknown, Reason: repo.ErrStale}

	listed := fakeLedger{pvcs: map[repo.PVC]bool{app: true}}
	broken := fakeLedger{err: errors.New("expected-backups.yaml: line 2: not a list")}

	cases := []struct {
		name     string
		guards   repo.Guards
		answer   repo.Answer
		accept   bool
		decision repo.Decision
		class    error
		event    string
		reason   []string
	}{
		{"fresh without evidence stays fresh", repo.Guards{NearMiss: repo.NearMissDeny, Ledger: fakeLedger{}}, fresh, false, repo.Fresh, nil, "", nil},
		{"restore is never touched", repo.Guards{NearMiss: repo.NearMissDeny, Ledger: listed}, restore, false, repo.Restore, nil, "", nil},
		{"unknown stays unknown", repo.Guards{NearMiss: repo.NearMissDeny, Ledger: listed}, unknown, false, repo.Unknown, repo.ErrStale, "", nil},
		{"near miss denies", repo.Guards{NearMiss: repo.NearMissDeny}, freshNear, false, repo.Unknown, repo.ErrNearMiss, "near-miss/denied",
			[]string{"no snapshot under app-backup@web:/data", "app-backup@web:/var/lib/app (same username and hostname, another path, backend kopia-fs)", "backup-oracle.io/accept-near-miss"}},
		{"the zero mode denies", repo.Guards{}, freshNear, false, repo.Unknown, repo.ErrNearMiss, "near-miss/denied", nil},
		{"near miss accepted", repo.Guards{NearMiss: repo.NearMissDeny}, freshNear, true, repo.Fresh, nil, "near-miss/accepted", nil},
		{"near miss warns", repo.Guards{NearMiss: repo.NearMissWarn}, freshNear, false, repo.Fresh, nil, "near-miss/warned", nil},
		{"near miss off", repo.Guards{NearMiss: repo.NearMissOff}, freshNear, false, repo.Fresh, nil, "", nil},
		{"ledger: listed and nothing found", repo.Guards{NearMiss: repo.NearMissDeny, Ledger: listed}, fresh, false, repo.Unknown, repo.ErrExpectedBackup, "expected-backup/denied",
			[]string{"web/app is listed in the expected-backups ledger", "app-backup@web:/data", "wrong repository, prefix or identity?"}},
		{"ledger wins over an accepted near miss", repo.Guards{NearMiss: repo.NearMissDeny, Ledger: listed}, freshNear, true, repo.Unknown, repo.ErrExpectedBackup, "expected-backup/denied", nil},
		{"ledger unreadable: never fresh", repo.Guards{Ledger: broken}, fresh, false, repo.Unknown, repo.ErrExpectedBackup, "expected-backup/denied",
			[]string{"cannot be read", "line 2: not a list"}},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, events := tc.guards.Apply(tc.answer, repo.Query{PVC: app, AcceptNearMiss: tc.accept})
			assert.Equal(t, tc.decision, a.Decision)

			if tc.class != nil {
				require.ErrorIs(t, a.Reason, tc.class)
			} else if tc.decision != repo.Unknown {
				assert.NoError(t, a.Reason)
			}

			for _, r := range tc.reason {
				assert.Contains(t, a.Reason.Error(), r)
			}

			if tc.event == "" {
				assert.Empty(t, events)
			} else {
				require.Len(t, events, 1)
				assert.Equal(t, tc.event, events[0].Guard+"/"+events[0].Outcome)
			}

			switch tc.event {
			case "near-miss/accepted":
				assert.Equal(t, repo.AcceptNearMiss, a.Accepted, "the acceptance is echoed")
				assert.Equal(t, near, a.NearMisses, "with what it overrode")
			case "near-miss/warned":
				require.Len(t, a.Warnings, 1)
				assert.Contains(t, a.Warnings[0], "app-backup@web:/var/lib/app")
			}
		})
	}
}

func TestParseNearMissMode(t *testing.T) {
	for _, s := range []string{"deny", "warn", "off"} {
		m, err := repo.ParseNearMissMode(s)
		require.NoError(t, err)
		assert.Equal(t, repo.NearMissMode(s), m)
	}

	_, err := repo.ParseNearMissMode("block")
	require.ErrorIs(t, err, repo.ErrInvalidConfig)
	assert.Contains(t, err.Error(), `NEAR_MISS "block": want deny, warn or off`)
}

func TestCombineKeepsNearMisses(t *testing.T) {
	pvc := repo.PVC{Namespace: "web", Name: "app"}
	a := repo.Answer{Decision: repo.Fresh, Backend: "a", NearMisses: []repo.NearMiss{{Source: "x"}}}
	b := repo.Answer{Decision: repo.Fresh, Backend: "b", NearMisses: []repo.NearMiss{{Source: "y"}}}

	c := repo.Combine(pvc, []repo.Answer{a, b})
	assert.Equal(t, repo.Fresh, c.Decision)
	assert.Equal(t, []repo.NearMiss{{Source: "x"}, {Source: "y"}}, c.NearMisses, "every backend's near misses guard the combined answer")
}
