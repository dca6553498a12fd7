package integration

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness"
)

// ruleStale is the rule the staleness tests guard.
const ruleStale = "rule: a lookup answers only from an index whose load started no more than MAX_INDEX_AGE ago (README: How a decision is made, step 2)"

// slowResticWorld is one restic repository with a snapshot on S3, read through a fault proxy.
type slowResticWorld struct {
	proxy *harness.FaultProxy
	env   []string
}

// newSlowResticWorld: requestTimeout bounds one S3 request; loads are never bounded sooner.
func newSlowResticWorld(t *testing.T, requestTimeout string) *slowResticWorld {
	t.Helper()

	s3 := harness.StartS3(t)
	bucket := s3.CreateBucket("volsync")
	cli := harness.NewResticCLI(t, s3)
	cli.Init("s3:"+s3.URL+"/"+bucket+"/web/app", resticPassword, "2")
	cli.Backup("s3:"+s3.URL+"/"+bucket+"/web/app", resticPassword)

	proxy := harness.StartFaultProxy(t, s3.URL)
	_, env := secretFiles(t, s3, resticPassword)

	return &slowResticWorld{proxy: proxy, env: append(env,
		"BACKEND_TYPE=restic-s3", "S3_ENDPOINT="+proxy.URL, "S3_BUCKET="+bucket,
		// Requests and loads may be slow, never failed: only the index's age is at stake.
		"S3_REQUEST_TIMEOUT="+requestTimeout, "REFRESH_TIMEOUT=5m", "REFRESH_INTERVAL=300ms", "MAX_INDEX_AGE=1s",
	)}
}

// status returns the single backend's /status entry.
func backendStatus(t *testing.T, o *harness.Oracle) map[string]any {
	t.Helper()

	backends, _ := o.Get(t, "/status").Body["backends"].([]any)
	require.Len(t, backends, 1)

	b, _ := backends[0].(map[string]any)

	return b
}

// TestStaleIndexWhileRefreshHangs: the index loaded, then a refresh that neither succeeds nor
// fails (S3 hangs): once the index is older than MAX_INDEX_AGE, even restore is withheld.
func TestStaleIndexWhileRefreshHangs(t *testing.T) {
	w := newSlowResticWorld(t, "15s") // the hanging refresh fails after 15 s per attempt, long after the index is stale
	o := harness.StartOracle(t, harness.OracleOptions{Bin: oracleBin, Env: w.env})
	o.WaitReady(t, 60*time.Second)
	require.Equal(t, "restore", decision(t, o, "/exists/web/app"))

	w.proxy.SetDelay(time.Hour)
	eventually(t, o, "/exists/web/app", "unknown", 30*time.Second)

	r := o.Get(t, "/exists/web/app")
	assert.Equal(t, http.StatusServiceUnavailable, r.Code, ruleStale)
	assert.Contains(t, r.Body["error"], "index stale", ruleStale)
	assert.Empty(t, backendStatus(t, o)["lastError"], "no refresh failed: the index is unknown only because it is old")
	assert.Contains(t, o.Get(t, "/readyz").Body["reason"], "index stale")

	w.proxy.Reset()
	o.WaitReady(t, 2*time.Minute) // the hanging request ends at S3_REQUEST_TIMEOUT
	assert.Equal(t, "restore", decision(t, o, "/exists/web/app"))
}

// TestIndexOlderThanMaxAgeOnArrival: every load succeeds but takes longer than MAX_INDEX_AGE
// (each S3 request is delayed). An index is as old as the start of its load, so it is stale the
// moment it arrives and is never served; dated by the end of its load, it would look fresh for
// a moment after every refresh.
func TestIndexOlderThanMaxAgeOnArrival(t *testing.T) {
	w := newSlowResticWorld(t, "1m")
	w.proxy.SetDelay(time.Second) // a load makes at least 2 requests one after the other

	o := harness.StartOracle(t, harness.OracleOptions{Bin: oracleBin, Env: w.env})

	deadline := time.Now().Add(3 * time.Minute)

	var generation float64

	for generation < 3 {
		b := backendStatus(t, o)
		generation, _ = b["generation"].(float64)

		// Right after a successful load is when a wrongly dated index would look fresh.
		ready := o.Get(t, "/readyz")
		answer := o.Get(t, "/exists/web/app")

		require.Equal(t, http.StatusServiceUnavailable, ready.Code, "generation %v: ready with an index older than MAX_INDEX_AGE: %s", generation, ruleStale)
		require.Equal(t, "unknown", answer.Body["decision"], "generation %v: %v: %s", generation, answer.Body, ruleStale)

		if generation > 0 {
			assert.Empty(t, b["lastError"], "the loads succeed")
			assert.Contains(t, ready.Body["reason"], "index stale", ruleStale)
		}

		if time.Now().After(deadline) {
			t.Fatalf("only %v successful loads in 3 minutes:\n%s", generation, o.Stderr())
		}

		time.Sleep(20 * time.Millisecond)
	}

	// The same repository without the delay is served: the answers above were about age only.
	w.proxy.Reset()
	o.WaitReady(t, time.Minute)
	assert.Equal(t, "restore", decision(t, o, "/exists/web/app"))
}
