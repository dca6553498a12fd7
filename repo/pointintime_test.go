package repo_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/repo"
)

// at parses an RFC 3339 time for the tables below.
func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}

	return t
}

// hourly are three snapshots, oldest first, as a Finding holds them.
var hourly = []repo.Snapshot{
	{ID: "h00", StartTime: at("2026-11-20T00:00:04.700Z")},
	{ID: "h01", StartTime: at("2026-11-20T01:00:04Z")},
	{ID: "h02", StartTime: at("2026-11-20T02:00:04Z")},
}

// TestPointInTimeSelect: the expected ids follow VolSync's restic mover
// (select_restic_snapshot_to_restore): newest first, drop those later than restoreAsOf (both cut
// to the second), skip `previous`, restore the first left or nothing.
func TestPointInTimeSelect(t *testing.T) {
	cases := []struct {
		name string
		p    repo.PointInTime
		want string // "" means nothing is restored
	}{
		{"zero is the newest", repo.PointInTime{}, "h02"},
		{"previous 1 skips the newest", repo.PointInTime{Previous: 1}, "h01"},
		{"previous 2 is the oldest", repo.PointInTime{Previous: 2}, "h00"},
		{"previous past the end restores nothing", repo.PointInTime{Previous: 3}, ""},
		{"asOf after everything is the newest", repo.PointInTime{AsOf: at("2026-12-01T00:00:00Z")}, "h02"},
		{"asOf exactly at a snapshot includes it", repo.PointInTime{AsOf: at("2026-11-20T01:00:04Z")}, "h01"},
		{"asOf one second before excludes it", repo.PointInTime{AsOf: at("2026-11-20T01:00:03Z")}, "h00"},
		{"times are cut to the second (04.7 counts as 04)", repo.PointInTime{AsOf: at("2026-11-20T00:00:04Z")}, "h00"},
		{"asOf with a fraction is cut too", repo.PointInTime{AsOf: at("2026-11-20T01:00:03.999Z")}, "h00"},
		{"asOf in another zone is the same instant", repo.PointInTime{AsOf: at("2026-11-20T02:30:00+01:00")}, "h01"},
		{"asOf before everything restores nothing", repo.PointInTime{AsOf: at("2026-11-19T23:59:59Z")}, ""},
		{"asOf then previous", repo.PointInTime{AsOf: at("2026-11-20T01:30:00Z"), Previous: 1}, "h00"},
		{"asOf then previous past the end", repo.PointInTime{AsOf: at("2026-11-20T01:30:00Z"), Previous: 2}, ""},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, ok := tc.p.Select(hourly)
			assert.Equal(t, tc.want != "", ok)
			assert.Equal(t, tc.want, s.ID)
		})
	}

	_, ok := repo.PointInTime{}.Select(nil)
	assert.False(t, ok, "nothing to select from")
}

func TestDecideAt(t *testing.T) {
	approx := []repo.Snapshot{{ID: "a", StartTime: at("2026-11-20T00:00:00Z"), ApproxTime: true}}

	cases := []struct {
		name     string
		snaps    []repo.Snapshot
		p        repo.PointInTime
		err      error
		decision repo.Decision
		selected string
		class    error
	}{
		{"plain restore selects the newest", hourly, repo.PointInTime{}, nil, repo.Restore, "h02", nil},
		{"previous selects an older one", hourly, repo.PointInTime{Previous: 1}, nil, repo.Restore, "h01", nil},
		{"nothing exists: fresh whatever the point in time", nil, repo.PointInTime{AsOf: at("2026-11-20T00:00:00Z")}, nil, repo.Fresh, "", nil},
		{"snapshots exist but none selected: unknown, never fresh", hourly, repo.PointInTime{AsOf: at("2026-01-01T00:00:00Z")}, nil, repo.Unknown, "", repo.ErrNotSelected},
		{"previous beyond the snapshots: unknown", hourly, repo.PointInTime{Previous: 5}, nil, repo.Unknown, "", repo.ErrNotSelected},
		{"an error wins", hourly, repo.PointInTime{}, repo.ErrStale, repo.Unknown, "", repo.ErrStale},
		{"approximate times cannot be placed in time", approx, repo.PointInTime{Previous: 0, AsOf: at("2026-12-01T00:00:00Z")}, nil, repo.Unknown, "", repo.ErrUnverifiable},
		{"approximate times are fine for a plain restore", approx, repo.PointInTime{}, nil, repo.Restore, "a", nil},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := repo.DecideAt(pvc, "b", repo.Finding{Source: "s", Snapshots: tc.snaps}, tc.p, time.Time{}, tc.err)
			assert.Equal(t, tc.decision, a.Decision)
			assert.Equal(t, tc.p, a.PointInTime)
			assert.Equal(t, len(tc.snaps), a.SnapshotCount, "the count is of every snapshot, not of the eligible ones")

			if tc.selected == "" {
				assert.Nil(t, a.Selected)
			} else {
				require.NotNil(t, a.Selected)
				assert.Equal(t, tc.selected, a.Selected.ID)
			}

			if tc.class != nil {
				assert.True(t, errors.Is(a.Reason, tc.class), "%v", a.Reason)
			}
		})
	}

	a := repo.DecideAt(pvc, "b", repo.Finding{Snapshots: hourly}, repo.PointInTime{AsOf: at("2026-01-01T00:00:00Z")}, time.Time{}, nil)
	assert.Contains(t, a.Reason.Error(), "3 snapshot(s) exist, none at or before 2026-01-01T00:00:00Z (the oldest is from 2026-11-20T00:00:04Z)")
}

func TestParsePointInTime(t *testing.T) {
	for _, ok := range []string{"2026-11-20T02:00:00Z", "2026-11-20T03:00:00+01:00", "2026-11-20T02:00:00.5Z"} {
		_, err := repo.ParseAsOf(ok)
		assert.NoError(t, err, ok)
	}

	// VolSync's CRD requires RFC 3339 with the T (DOMAIN.md 8): a date, a space or no zone is refused.
	for _, bad := range []string{"", "2026-11-20", "2026-11-20 02:00:00Z", "2026-11-20T02:00:00", "yesterday", "1763604000"} {
		_, err := repo.ParseAsOf(bad)
		require.ErrorIs(t, err, repo.ErrInvalidParameter, bad)
		assert.Contains(t, err.Error(), "asOf")
	}

	// The edges of the documented range, 0 (the newest) and 10000, are accepted.
	for s, want := range map[string]int{"0": 0, "2": 2, "10000": 10000} {
		n, err := repo.ParsePrevious(s)
		require.NoError(t, err, s)
		assert.Equal(t, want, n, s)
	}

	for _, bad := range []string{"", "-1", "x", "1.5", "10001"} {
		_, err := repo.ParsePrevious(bad)
		require.ErrorIs(t, err, repo.ErrInvalidParameter, bad)
		assert.Contains(t, err.Error(), "previous")
	}
}

func TestPointInTimeString(t *testing.T) {
	assert.Equal(t, "latest", repo.PointInTime{}.String())
	assert.Equal(t, "previous 2", repo.PointInTime{Previous: 2}.String())
	assert.Equal(t, "restoreAsOf 2026-11-20T01:00:00Z", repo.PointInTime{AsOf: at("2026-11-20T02:00:00+01:00")}.String())
	assert.Equal(t, "restoreAsOf 2026-11-20T01:00:00Z, previous 1", repo.PointInTime{AsOf: at("2026-11-20T01:00:00Z"), Previous: 1}.String())
}
