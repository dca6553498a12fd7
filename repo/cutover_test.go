package repo_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/repo"
)

func TestCutoverHold(t *testing.T) {
	at := time.Date(2026, 12, 6, 18, 0, 0, 0, time.UTC)
	now := at.Add(30 * time.Minute)
	pvc := repo.PVC{Namespace: "shop", Name: "db"}
	c := repo.Cutover{At: at, From: "blue"}

	snap := func(id string, start time.Time) []repo.Snapshot { return []repo.Snapshot{{ID: id, StartTime: start}} }
	answer := func(backend string, snaps []repo.Snapshot) repo.Answer {
		return repo.Decide(pvc, backend, repo.Finding{Source: backend + "-src", Snapshots: snaps}, now, nil)
	}

	cases := []struct {
		name    string
		cutover repo.Cutover
		answers []repo.Answer
		p       repo.PointInTime
		held    bool
	}{
		{"the old colour's newest is before the cutover: wait", c,
			[]repo.Answer{answer("blue", snap("old", at.Add(-time.Hour))), answer("green", nil)}, repo.PointInTime{}, true},
		{"even when the new colour holds a newer one", c,
			[]repo.Answer{answer("green", snap("g", at.Add(time.Minute))), answer("blue", snap("old", at.Add(-time.Hour)))}, repo.PointInTime{}, true},
		{"the final backup started at the cutover: no wait", c,
			[]repo.Answer{answer("blue", snap("final", at)), answer("green", nil)}, repo.PointInTime{}, false},
		{"the final backup after it", c,
			[]repo.Answer{answer("blue", append(snap("old", at.Add(-time.Hour)), snap("final", at.Add(time.Minute))...)), answer("green", nil)}, repo.PointInTime{}, false},
		{"no snapshot in the old colour: decided as always", c,
			[]repo.Answer{answer("blue", nil), answer("green", snap("g", at.Add(-time.Hour)))}, repo.PointInTime{}, false},
		{"a point in time asked: the operator chose", c,
			[]repo.Answer{answer("blue", snap("old", at.Add(-time.Hour)))}, repo.PointInTime{Previous: 1}, false},
		{"no cutover", repo.Cutover{}, []repo.Answer{answer("blue", snap("old", at.Add(-time.Hour)))}, repo.PointInTime{}, false},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, w, held := tc.cutover.Hold(pvc, tc.answers, tc.p, now)
			require.Equal(t, tc.held, held)

			if !held {
				return
			}

			assert.Equal(t, repo.Unknown, a.Decision)
			assert.Nil(t, a.Selected)
			require.ErrorIs(t, a.Reason, repo.ErrCutoverPending)
			assert.Equal(t, "blue", a.Backend)
			assert.Contains(t, a.Reason.Error(), "waiting for the final backup of the cutover at 2026-12-06T18:00:00Z from backend blue")
			assert.Contains(t, a.Reason.Error(), "newest snapshot of shop/db (old) started 2026-12-06T17:00:00Z, 1h0m0s before the cutover and 1h30m0s ago")
			assert.Equal(t, "old", w.Newest.ID)
		})
	}
}

func TestCutoverValidate(t *testing.T) {
	at := time.Date(2026, 12, 6, 18, 0, 0, 0, time.UTC)

	require.NoError(t, repo.Cutover{}.Validate(nil))
	require.NoError(t, repo.Cutover{At: at, From: "blue"}.Validate([]string{"green", "blue"}))

	for name, tc := range map[string]struct {
		c        repo.Cutover
		backends []string
		want     string
	}{
		"no instant":     {repo.Cutover{From: "blue"}, []string{"green", "blue"}, "CUTOVER_AT is required"},
		"no colour":      {repo.Cutover{At: at}, []string{"green", "blue"}, "CUTOVER_FROM is required"},
		"one backend":    {repo.Cutover{At: at, From: "blue"}, []string{"blue"}, "a cutover needs two backends"},
		"unknown colour": {repo.Cutover{At: at, From: "red"}, []string{"green", "blue"}, `CUTOVER_FROM "red" is not a backend; the backends are ["green" "blue"]`},
	} {
		err := tc.c.Validate(tc.backends)
		require.ErrorIs(t, err, repo.ErrInvalidConfig, name)
		assert.Contains(t, err.Error(), tc.want, name)
	}
}
