package main

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/cache"
	"github.com/backup-oracle/backup-oracle/repo"
)

// storedIndex is an index that only lists what it stores (the inventory --check-config reads).
type storedIndex []repo.Stored

func (s storedIndex) Find(context.Context, repo.PVC) (repo.Finding, error) {
	return repo.Finding{}, nil
}
func (s storedIndex) FindSource(context.Context, repo.PVC, repo.KopiaSource) (repo.Finding, error) {
	return repo.Finding{}, nil
}
func (s storedIndex) Stats() repo.IndexStats {
	return repo.IndexStats{Sources: len(s), Fitting: len(s)}
}
func (s storedIndex) Nearby(repo.PVC) []string            { return nil }
func (s storedIndex) NearMisses(repo.PVC) []repo.NearMiss { return nil }
func (s storedIndex) Stored() []repo.Stored               { return s }

// loads hands out its indexes in turn, the last one again and again, and counts the loads.
type loads struct {
	indexes []repo.Index
	n       int
}

func (l *loads) Load(context.Context) (repo.Index, error) {
	idx := l.indexes[min(l.n, len(l.indexes)-1)]
	l.n++

	return idx, nil
}

var (
	storedVerified = repo.Stored{Source: "s3:b/web/app", Snapshots: 1}
	storedPending  = repo.Stored{Source: "s3:b/web/db", Err: fmt.Errorf("1 of 1 snapshots not verified yet: %w: %w", repo.ErrUnverifiable, repo.ErrPending)}
	storedWrong    = repo.Stored{Source: "s3:b/web/db", Err: fmt.Errorf("restic: verify: %w: %w", repo.ErrUnverifiable, repo.ErrWrongPassword)}
	storedDamaged  = repo.Stored{Source: "s3:b/web/old", Err: fmt.Errorf("decrypt snapshot: %w", repo.ErrUnverifiable)}
)

// TestSettle: --check-config --open loads again while a verification is pending (a restic load
// waits for verifications only so long), until none is or the refresh timeout has passed.
func TestSettle(t *testing.T) {
	cases := []struct {
		name    string
		indexes []repo.Index
		wait    time.Duration
		want    []repo.Stored
		loads   int
	}{
		{"nothing pending: no second load", []repo.Index{storedIndex{storedVerified, storedDamaged}}, time.Minute, []repo.Stored{storedVerified, storedDamaged}, 1},
		{"pending, then a wrong password", []repo.Index{storedIndex{storedVerified, storedPending}, storedIndex{storedVerified, storedPending}, storedIndex{storedVerified, storedWrong}},
			time.Minute, []repo.Stored{storedVerified, storedWrong}, 3},
		{"still pending when the time is up", []repo.Index{storedIndex{storedVerified, storedPending}}, 0, []repo.Stored{storedVerified, storedPending}, 1},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := &loads{indexes: tc.indexes}
			c, err := cache.New(cache.Options{Backend: "b", Loader: l, AllowEmpty: true})
			require.NoError(t, err)
			require.NoError(t, c.Refresh(context.Background()))

			inv, err := settle(context.Background(), c, tc.wait)
			require.NoError(t, err)
			assert.Equal(t, tc.want, inv.Stored)
			assert.Equal(t, tc.loads, l.n)
		})
	}
}

// TestPrintUnverified: a wrong password fails the check; the data's own state (pending, damaged)
// is listed, not failed; at most maxListed sources are named.
func TestPrintUnverified(t *testing.T) {
	many := make([]repo.Stored, 0, maxListed+2)
	for i := range maxListed + 2 {
		many = append(many, repo.Stored{Source: fmt.Sprintf("s3:b/web/pvc-%d", i), Err: storedWrong.Err})
	}

	cases := []struct {
		name   string
		stored []repo.Stored
		failed bool
		want   []string
	}{
		{"all verified", []repo.Stored{storedVerified}, false, nil},
		{"a wrong password", []repo.Stored{storedVerified, storedWrong}, true,
			[]string{"backend 1: FAILED: wrong password for 1 repository(ies)", "    s3:b/web/db: restic: verify: "}},
		{"pending after the wait", []repo.Stored{storedPending}, false, []string{"backend 1: 1 source(s) not verified within 2m0s", "    s3:b/web/db: 1 of 1"}},
		{"damaged", []repo.Stored{storedDamaged}, false, []string{"backend 1: 1 source(s) the index cannot vouch for", "    s3:b/web/old: decrypt snapshot"}},
		{"many", many, true, []string{"wrong password for 7 repository(ies)", "s3:b/web/pvc-4:", "    ... and 2 more\n"}},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer

			assert.Equal(t, tc.failed, printUnverified(&out, 1, repo.Inventory{Stored: tc.stored}, 2*time.Minute))

			for _, w := range tc.want {
				assert.Contains(t, out.String(), w)
			}

			if tc.want == nil {
				assert.Empty(t, out.String())
			}

			assert.NotContains(t, out.String(), "pvc-5", "only the first five are named")
		})
	}
}
