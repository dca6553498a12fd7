package server_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/repo"
)

func TestConsole(t *testing.T) {
	h, _ := newServer(t, oracle())

	rec := get(h, http.MethodGet, "/")
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "text/html; charset=utf-8", rec.Header().Get("Content-Type"))
	assert.Contains(t, rec.Header().Get("Content-Security-Policy"), "default-src 'none'", "no external asset, no script")

	page := rec.Body.String()
	assert.NotContains(t, page, "<script")
	assert.NotContains(t, page, "http://", "self-contained: no external link or asset")
	assert.Contains(t, page, `<tr class="state-stale"><td>shop</td>`, "old-backup is 50h old: stale at 26h")
	assert.Contains(t, page, `<tr class="state-error"><td>web</td>`, "broken has no verified snapshot")
	assert.Contains(t, page, `<tr class="state-ok"><td>web</td>`)
	assert.Contains(t, page, `4 backups`)
	assert.Contains(t, page, `1 older than 26h0m0s`)
	assert.Contains(t, page, `<span class="ready">ready</span>`)
	assert.NotContains(t, page, `id="result"`, "no search, no result")

	rec = get(h, http.MethodGet, "/?pvc=web/restore.app&previous=1")
	page = rec.Body.String()
	assert.Contains(t, page, `<span id="decision" class="decision decision-restore">restore</span>`)
	assert.Contains(t, page, `VolSync would restore snapshot <code>old</code>`)

	at := strings.Index(page, `class="snapshots"`)
	require.Positive(t, at, "the page has a snapshot table")
	table := page[at:]
	assert.Less(t, strings.Index(table, "<code>k7f3a</code>"), strings.Index(table, "<code>old</code>"), "newest first")
	assert.Contains(t, table, `<tr class="restores"><td><code>old</code> <b class="restore-mark">← VolSync restores this one</b>`, "previous=1 selects old")
	assert.Equal(t, 1, strings.Count(table, "restore-mark"))

	page = get(h, http.MethodGet, "/?pvc=web/restore.app").Body.String()
	assert.Contains(t, page, `<tr class="restores"><td><code>k7f3a</code> <b class="restore-mark">`, "a plain restore gets the newest")

	rec = get(h, http.MethodGet, "/?pvc=web/other")
	assert.Contains(t, rec.Body.String(), `decision-unknown`)
	assert.Contains(t, rec.Body.String(), `the first refresh of kopia-fs has not finished`)

	rec = get(h, http.MethodGet, "/?pvc=web/fresh&staleFor=100h")
	assert.Contains(t, rec.Body.String(), `decision-fresh`)
	assert.Contains(t, rec.Body.String(), `0 older than 100h0m0s`)
	assert.Contains(t, rec.Body.String(), `app-backup@web:/data`, "nearby sources are shown")

	for _, q := range []string{"nonsense", "web/Bad_Name", "web/x&asOf=yesterday", "web/x&staleFor=1d"} {
		rec = get(h, http.MethodGet, "/?pvc="+q)
		assert.Equal(t, http.StatusOK, rec.Code, q)
		assert.Contains(t, rec.Body.String(), `id="query-error"`, q)
	}
}

// TestConsoleEscapes: names and errors reach the page escaped, whatever a client or a backend
// puts in them.
func TestConsoleEscapes(t *testing.T) {
	o := oracle()
	o.inventory = func() []repo.Inventory {
		return []repo.Inventory{{Backend: "<b>kopia</b>", Stored: []repo.Stored{{Source: `x"><script>alert(1)</script>`, PVC: repo.PVC{Namespace: "web", Name: "a"}, Snapshots: 0,
			Err: repo.ErrUnverifiable}}}}
	}
	o.lookup = func(_ context.Context, q repo.Query) repo.Answer {
		return repo.Decide(q.PVC, "kopia-fs", repo.Finding{}, indexTime, repo.Problemf("<img src=x onerror=alert(1)>"))
	}

	h, _ := newServer(t, o)
	rec := get(h, http.MethodGet, "/?pvc="+url.QueryEscape("web/a")+"&asOf="+url.QueryEscape(`"><script>alert(2)</script>`))
	page := rec.Body.String()

	assert.NotContains(t, page, "<script>")
	assert.NotContains(t, page, "<img")
	assert.NotContains(t, page, "<b>kopia")
	assert.Contains(t, page, "&lt;script&gt;alert(1)&lt;/script&gt;")
	assert.True(t, strings.Contains(page, "&#34;&gt;&lt;script&gt;alert(2)") || strings.Contains(page, "&quot;&gt;&lt;script&gt;alert(2)"), "the query is echoed escaped")

	rec = get(h, http.MethodGet, "/?pvc=web/a")
	assert.Contains(t, rec.Body.String(), "&lt;img src=x onerror=alert(1)&gt;")
}
