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
	restore := repo.Answer{Decision: repo.Restore, Backend: "r", SnapshotCount: 1}
	fresh := repo.Answer{Decision: repo.Fresh, Backend: "f"}
	unknown := repo.Answer{Decision: repo.Unknown, Backend: "u", Reason: repo.ErrUnavailable}

	cases := []struct {
		name     string
		answers  []repo.Answer
		decision repo.Decision
		backend  string
	}{
		{"none", nil, repo.Unknown, ""},
		{"single", []repo.Answer{fresh}, repo.Fresh, "f"},
		{"restore wins over unknown", []repo.Answer{unknown, restore}, repo.Restore, "r"},
		{"first restore wins", []repo.Answer{fresh, restore, {Decision: repo.Restore, Backend: "r2"}}, repo.Restore, "r"},
		{"unknown beats fresh", []repo.Answer{fresh, unknown}, repo.Unknown, "f,u"},
		{"all fresh", []repo.Answer{fresh, {Decision: repo.Fresh, Backend: "g"}}, repo.Fresh, "f,g"},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := repo.Combine(pvc, tc.answers)
			assert.Equal(t, tc.decision, a.Decision)
			assert.Equal(t, tc.backend, a.Backend)

			if tc.decision == repo.Unknown {
				assert.Error(t, a.Reason)
			}
		})
	}

	a := repo.Combine(pvc, []repo.Answer{fresh, unknown})
	assert.True(t, errors.Is(a.Reason, repo.ErrUnavailable), "reasons keep their class")
}
