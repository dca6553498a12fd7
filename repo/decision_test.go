package repo_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/backup-oracle/backup-oracle/repo"
)

var pvc = repo.PVC{Namespace: "web", Name: "data"}

func TestDecide(t *testing.T) {
	snap := repo.Snapshot{ID: "s1"}
	cases := []struct {
		name     string
		finding  repo.Finding
		err      error
		decision repo.Decision
	}{
		{"snapshot", repo.Finding{Snapshots: []repo.Snapshot{snap}}, nil, repo.Restore},
		{"nothing", repo.Finding{}, nil, repo.Fresh},
		{"error without snapshot is never fresh", repo.Finding{}, repo.ErrStale, repo.Unknown},
		{"error with snapshot is unknown too", repo.Finding{Snapshots: []repo.Snapshot{snap}}, repo.ErrUnverifiable, repo.Unknown},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := repo.Decide(pvc, "b", tc.finding, time.Time{}, tc.err)
			assert.Equal(t, tc.decision, a.Decision, "rule: any error is unknown, never fresh; a snapshot is restore, none is fresh (README: How a decision is made)")
			assert.Equal(t, tc.decision != repo.Unknown, a.Authoritative())
			assert.Equal(t, tc.err, a.Reason)
		})
	}
}

func TestCombine(t *testing.T) {
	t0 := time.Date(2026, 11, 20, 2, 0, 0, 0, time.UTC)
	at := func(backend string, d time.Duration) repo.Answer {
		s := repo.Snapshot{ID: backend, StartTime: t0.Add(d)}
		return repo.Answer{Decision: repo.Restore, Backend: backend, SnapshotCount: 1, Latest: &s}
	}
	restore := at("r", 0)
	fresh := repo.Answer{Decision: repo.Fresh, Backend: "f"}
	unknown := repo.Answer{Decision: repo.Unknown, Backend: "u", Reason: repo.ErrUnavailable}

	cases := []struct {
		name      string
		answers   []repo.Answer
		decision  repo.Decision
		backend   string
		elsewhere []string
	}{
		{"none", nil, repo.Unknown, "", nil},
		{"single", []repo.Answer{fresh}, repo.Fresh, "f", nil},
		{"an unknown backend could hold a newer snapshot", []repo.Answer{unknown, restore}, repo.Unknown, "u,r", nil},
		{"the newest snapshot wins, not the list order", []repo.Answer{at("green", 0), at("blue", time.Hour)}, repo.Restore, "blue", []string{"green"}},
		{"the newest wins from the middle", []repo.Answer{fresh, at("a", -time.Hour), at("b", time.Minute), at("c", 0)}, repo.Restore, "b", []string{"a", "c"}},
		{"equal times: the earlier backend", []repo.Answer{at("own", 0), at("other", 0)}, repo.Restore, "own", []string{"other"}},
		{"restore beats fresh", []repo.Answer{fresh, restore}, repo.Restore, "r", nil},
		{"unknown beats fresh", []repo.Answer{fresh, unknown}, repo.Unknown, "f,u", nil},
		{"all fresh", []repo.Answer{fresh, {Decision: repo.Fresh, Backend: "g"}}, repo.Fresh, "f,g", nil},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := repo.Combine(pvc, tc.answers)
			assert.Equal(t, tc.decision, a.Decision)
			assert.Equal(t, tc.backend, a.Backend)

			var elsewhere []string
			for _, e := range a.Elsewhere {
				elsewhere = append(elsewhere, e.Backend)
				assert.False(t, e.Latest.StartTime.After(a.Latest.StartTime), "elsewhere is older or as new")
			}

			assert.Equal(t, tc.elsewhere, elsewhere)

			if tc.decision == repo.Unknown {
				assert.Error(t, a.Reason)
			}
		})
	}

	a := repo.Combine(pvc, []repo.Answer{unknown, at("blue", 0)})
	assert.Contains(t, a.Reason.Error(), "blue hold(s) snapshots, but an unknown backend could hold a newer one")

	a = repo.Combine(pvc, []repo.Answer{fresh, unknown})
	assert.True(t, errors.Is(a.Reason, repo.ErrUnavailable), "reasons keep their class")
	assert.NotContains(t, a.Reason.Error(), "hold(s) snapshots", "no backend holds a snapshot: the reason does not say one does")
}

func TestSortSnapshots(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	s := []repo.Snapshot{{ID: "c", StartTime: t0.Add(time.Hour)}, {ID: "b", StartTime: t0}, {ID: "a", StartTime: t0}, {ID: "d", StartTime: t0.Add(-time.Hour)}}
	repo.SortSnapshots(s)

	ids := make([]string, len(s))
	for i, x := range s {
		ids[i] = x.ID
	}

	assert.Equal(t, []string{"d", "a", "b", "c"}, ids, "oldest first; equal times by id")
}
