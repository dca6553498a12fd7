package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/repo"
)

// TestMemoisedRenderingIsEncodingJSON: the hit path writes, byte for byte, what encoding/json
// writes for the same answer at the same instant, whatever the index age, and follows the answer
// when it changes.
func TestMemoisedRenderingIsEncodingJSON(t *testing.T) {
	indexTime := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	pvc := repo.PVC{Namespace: "web", Name: "app"}
	latest := repo.Snapshot{ID: "k7f3a", StartTime: indexTime.Add(-time.Hour), TotalSize: 1234}

	answers := []repo.Answer{
		repo.Decide(pvc, "kopia-fs", repo.Finding{Source: "app-backup@web:/data", Snapshots: []repo.Snapshot{latest}}, indexTime, nil),
		repo.Decide(pvc, "kopia-fs", repo.Finding{Source: "app-backup@web:/data", Snapshots: []repo.Snapshot{{ID: "a"}, latest}}, indexTime, nil),
		repo.Decide(pvc, "kopia-fs", repo.Finding{Source: "app-backup@web:/data"}, indexTime, nil),
		repo.Decide(pvc, "kopia-fs,restic-s3", repo.Finding{Source: "app-backup@web:/data"}, indexTime.Add(time.Second), nil),
		repo.Decide(pvc, "kopia-fs", repo.Finding{Source: "<&>"}, time.Time{}, nil),
	}
	ages := []time.Duration{0, time.Nanosecond, 123456789 * time.Nanosecond, 4 * time.Second, 90 * time.Minute, -time.Second}

	clock := indexTime
	h := &handler{now: func() time.Time { return clock }, renders: newRenderCache(4)}

	for _, a := range answers {
		for _, age := range ages {
			clock = a.IndexTime.Add(age)

			want, err := json.Marshal(h.render(a))
			require.NoError(t, err)

			for range 2 { // rendered, then from the memo
				rec := httptest.NewRecorder()
				c, _ := gin.CreateTestContext(rec)
				h.writeMemoised(c, http.StatusOK, a)

				assert.Equal(t, string(want), rec.Body.String())
				assert.Equal(t, "application/json; charset=utf-8", rec.Header().Get("Content-Type"))
			}
		}
	}
}

func TestAppendJSONFloat(t *testing.T) {
	for _, f := range []float64{0, 1, -1, 0.5, 1e-6, 9.99e-7, 1e20, 1e21, 123.456789, 4.000000001, -3.2e-9} {
		want, err := json.Marshal(f)
		require.NoError(t, err)
		assert.Equal(t, string(want), string(appendJSONFloat(nil, f)), f)
	}
}

// TestLazyTimeout: the deadline holds for a lookup that waits, and a lookup that does not wait
// arms nothing.
func TestLazyTimeout(t *testing.T) {
	ctx := newLazyTimeout(context.Background(), time.Now().Add(20*time.Millisecond))

	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("deadline not enforced")
	}

	assert.ErrorIs(t, ctx.Err(), context.DeadlineExceeded)
	ctx.release()

	unused := newLazyTimeout(context.Background(), time.Now().Add(time.Hour))
	unused.release()
	assert.Nil(t, unused.cancel, "never armed")
	assert.ErrorIs(t, unused.Err(), context.Canceled, "a context used after its lookup returned is cancelled")

	parent, cancel := context.WithCancel(context.Background())
	child := newLazyTimeout(parent, time.Now().Add(time.Hour))
	cancel()
	<-child.Done()
	assert.ErrorIs(t, child.Err(), context.Canceled, "the parent's cancellation passes through")
	child.release()
}
