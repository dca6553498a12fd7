package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/repo"
)

// namedOracle answers for the source a query names: restore for data-volsync@media:*, unknown
// (not found) for any other, and the plain oracle's answer without one. It records the queries.
func namedOracle(asked *[]repo.Query, mu *sync.Mutex) fakeOracle {
	o := oracle()
	plain := o.lookup
	o.lookup = func(ctx context.Context, q repo.Query) repo.Answer {
		mu.Lock()
		*asked = append(*asked, q)
		mu.Unlock()

		if q.Source == (repo.KopiaSource{}) {
			return plain(ctx, q)
		}

		f := repo.Finding{Source: q.Source.String()}
		if q.Source.UserName == "data-volsync" {
			f.Snapshots = []repo.Snapshot{snapshot}
		}

		return repo.SettleRestoreSource(repo.Decide(q.PVC, "kopia-fs", f, indexTime, nil), q)
	}

	return o
}

func body(t *testing.T, raw []byte) map[string]any {
	t.Helper()

	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m), string(raw))

	return m
}

// TestExistsRestoreSource: ?source= is read as Kopia splits a source, percent-decoded, and passed
// to the oracle; the answer echoes it (restoreSource), is never rendered from the memo of the
// PVC's own answer, and a malformed source is a 400 that says what is wrong.
func TestExistsRestoreSource(t *testing.T) {
	var (
		asked []repo.Query
		mu    sync.Mutex
	)

	h, _ := newServer(t, namedOracle(&asked, &mu))

	own := get(h, http.MethodGet, "/exists/media/restore.data")
	require.Equal(t, http.StatusOK, own.Code)
	assert.Equal(t, "restore.data-backup@media:/data", body(t, own.Body.Bytes())["source"])

	// '@', ':' and '/' may stand in a query as they are; '+' must be encoded (%2B), or it is read
	// as a space (and refused).
	for raw, want := range map[string]string{
		"data-volsync@media:/srv/ab":                       "data-volsync@media:/srv/ab",
		url.QueryEscape("data-volsync@media:/srv/a+b&c#d"): "data-volsync@media:/srv/a+b&c#d",
	} {
		rec := get(h, http.MethodGet, "/exists/media/restore.data?source="+raw)
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())

		b := body(t, rec.Body.Bytes())
		assert.Equal(t, "restore", b["decision"])
		assert.Equal(t, want, b["restoreSource"], raw)
		assert.Equal(t, b["restoreSource"], b["source"])
	}

	rec := get(h, http.MethodGet, "/exists/media/restore.data?source=data-volsync@media:/srv/a+b")
	assert.Equal(t, http.StatusBadRequest, rec.Code, "an unencoded '+' is a space: %s", rec.Body.String())

	mu.Lock()
	last := asked[len(asked)-1]
	mu.Unlock()
	assert.Contains(t, []string{"/srv/ab", "/srv/a+b&c#d"}, last.Source.Path, "the decoded source reaches the oracle")

	rec = get(h, http.MethodGet, "/exists/media/restore.data?source="+url.QueryEscape("nothing@media:/data")+"&unknownStatus=200")
	require.Equal(t, http.StatusOK, rec.Code)
	b := body(t, rec.Body.Bytes())
	assert.Equal(t, "unknown", b["decision"], "a named source that does not exist: never fresh")
	assert.Contains(t, b["error"], "named source not found")

	rec = get(h, http.MethodGet, "/exists/media/restore.data?source="+url.QueryEscape("nothing@media:/data"))
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)

	for _, bad := range []string{"", "data-volsync", "data@media", "data@media:relative", url.QueryEscape("a b@media:/data")} {
		rec := get(h, http.MethodGet, "/exists/media/restore.data?source="+bad)
		assert.Equal(t, http.StatusBadRequest, rec.Code, bad)
		assert.Contains(t, body(t, rec.Body.Bytes())["error"], "want <username>@<hostname>:<path>", bad)
	}
}

// TestExplainRestoreSource: /explain says how the generated RD states a named source, or why it
// cannot.
func TestExplainRestoreSource(t *testing.T) {
	var (
		asked []repo.Query
		mu    sync.Mutex
	)

	h, _ := newServer(t, namedOracle(&asked, &mu))

	for _, tc := range []struct {
		source string
		want   map[string]any
	}{
		{"data-volsync@media:/data", map[string]any{"username": "data-volsync", "hostname": "media"}},
		{"data-volsync@media.cluster-a:/pvc/data", map[string]any{"sourceIdentity": map[string]any{
			"sourceName": "data-volsync", "sourceNamespace": "media.cluster-a", "sourcePathOverride": "/pvc/data"}}},
	} {
		rec := get(h, http.MethodGet, "/explain/media/data?source="+url.QueryEscape(tc.source))
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())

		b := body(t, rec.Body.Bytes())
		assert.Equal(t, tc.want, b["restoreIdentity"], tc.source)
		assert.Equal(t, tc.source, b["answer"].(map[string]any)["restoreSource"]) //nolint:forcetypeassert // a test
	}

	rec := get(h, http.MethodGet, "/explain/media/data?source="+url.QueryEscape("my.app@media:/srv"))
	id, _ := body(t, rec.Body.Bytes())["restoreIdentity"].(map[string]any)
	assert.Contains(t, id["error"], "named source not restorable by the Kopia mover")

	rec = get(h, http.MethodGet, "/explain/media/data")
	assert.NotContains(t, body(t, rec.Body.Bytes()), "restoreIdentity", "no source named")
}

func TestConsoleRestoreSource(t *testing.T) {
	var (
		asked []repo.Query
		mu    sync.Mutex
	)

	h, _ := newServer(t, namedOracle(&asked, &mu))

	page := get(h, http.MethodGet, "/?pvc=media/data&source="+url.QueryEscape("data-volsync@media:/srv")).Body.String()
	assert.Contains(t, page, `decision-restore`)
	assert.Contains(t, page, `id="restore-source"`)
	assert.Contains(t, page, `<code>data-volsync@media:/srv</code>`)
	assert.Contains(t, page, `sourceIdentity: {sourceName: data-volsync, sourceNamespace: media, sourcePathOverride: /srv}`)
	assert.Contains(t, page, `value="data-volsync@media:/srv"`, "the form keeps the source")

	page = get(h, http.MethodGet, "/?pvc=media/data&source=nonsense").Body.String()
	assert.Contains(t, page, `id="query-error"`)
	assert.Contains(t, page, `want &lt;username&gt;@&lt;hostname&gt;:&lt;path&gt;`)
}

// TestRestoreSourceGoldens: the answers for a named source as the API sends them (checked against
// openapi.yaml by TestGoldenResponsesMatchOpenAPI).
func TestRestoreSourceGoldens(t *testing.T) {
	var (
		asked []repo.Query
		mu    sync.Mutex
	)

	h, _ := newServer(t, namedOracle(&asked, &mu))
	src := url.QueryEscape("data-volsync@media.cluster-a:/pvc/data")

	for _, tc := range []struct {
		path, golden string
		code         int
	}{
		{"/exists/media/data?source=" + src, "restore-source.json", http.StatusOK},
		{"/exists/media/data?source=" + url.QueryEscape("nothing@media:/data"), "restore-source-unknown.json", http.StatusServiceUnavailable},
		{"/exists/media/data?source=data-volsync", "bad-source.json", http.StatusBadRequest},
		{"/explain/media/data?source=" + src, "explain-restore-source.json", http.StatusOK},
	} {
		rec := get(h, http.MethodGet, tc.path)
		assert.Equal(t, tc.code, rec.Code, tc.path)
		golden(t, tc.golden, rec.Body.Bytes())
	}
}
