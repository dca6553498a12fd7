package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/repo"
	"github.com/backup-oracle/backup-oracle/server"
)

// fakeAuthenticator knows tokens by value.
type fakeAuthenticator struct {
	authenticate func(r *http.Request) (server.Caller, bool, error)
}

func (f fakeAuthenticator) Authenticate(r *http.Request) (server.Caller, bool, error) {
	return f.authenticate(r)
}

// fakeAuthorizer answers with a function and counts the questions.
type fakeAuthorizer struct {
	authorize func(c server.Caller, a server.Access) (bool, string, error)
}

func (f fakeAuthorizer) Authorize(_ context.Context, c server.Caller, a server.Access) (bool, string, error) {
	return f.authorize(c, a)
}

// The callers of these tests, by token: kyverno may get backups everywhere; web-admin may get and
// list backups in namespace web (a RoleBinding to the chart's viewer role); operator may do
// everything; nobody may do nothing; broken-sar is a caller whose authorisation cannot be checked.
var tokens = map[string]server.Caller{ //nolint:gochecknoglobals // test data
	"kyverno-token":  {Name: "system:serviceaccount:kyverno:kyverno-admission-controller"},
	"web-token":      {Name: "alice", Groups: []string{"web-admins"}},
	"operator-token": {Name: "system:serviceaccount:monitoring:operator"},
	"nobody-token":   {Name: "system:serviceaccount:default:nobody"},
	"broken-sar":     {Name: "broken"},
}

func authorize(c server.Caller, a server.Access) (bool, string, error) {
	switch c.Name {
	case "broken":
		return false, "", errors.New("subjectaccessreviews: connection refused")
	case "system:serviceaccount:monitoring:operator":
		return true, "", nil
	case "system:serviceaccount:kyverno:kyverno-admission-controller":
		return a.Resource == server.ResourceBackups && a.Verb == server.VerbGet, "", nil
	case "alice":
		return a.Resource == server.ResourceBackups && a.Namespace == "web", "", nil
	}

	return false, "no RBAC rule", nil
}

func newSecuredServer(t *testing.T, anonymous ...string) http.Handler {
	t.Helper()

	reg := prometheus.NewRegistry()
	h, err := server.New(server.Options{
		Oracle: oracle(), Registerer: reg, Gatherer: reg, Now: func() time.Time { return now }, OpenAPI: []byte("openapi: 3.0.3\n"),
		Auth: server.Auth{
			Authenticator: fakeAuthenticator{authenticate: func(r *http.Request) (server.Caller, bool, error) {
				h := r.Header.Get("Authorization")
				if h == "" {
					return server.Caller{}, false, nil
				}

				c, ok := tokens[strings.TrimPrefix(h, "Bearer ")]
				if !ok {
					return server.Caller{}, false, errors.New("invalid bearer token, token has expired")
				}

				return c, true, nil
			}},
			Authorizer: fakeAuthorizer{authorize: authorize},
			Anonymous:  anonymous,
		},
	})
	require.NoError(t, err)

	return h
}

func getAs(h http.Handler, token, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, path, nil)

	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}

	h.ServeHTTP(rec, req)

	return rec
}

func TestWhoMayAsk(t *testing.T) {
	h := newSecuredServer(t)

	cases := []struct {
		name, token, path string
		code              int
		body              string // a part of the body
	}{
		{"probes are open", "", "/healthz", http.StatusOK, `"ok"`},
		{"readiness is open", "", "/readyz", http.StatusOK, `"ready":true`},
		{"no credentials", "", "/exists/web/restore.app", http.StatusUnauthorized, `"decision":"unknown"`},
		{"no credentials: the console", "", "/", http.StatusUnauthorized, "no credentials"},
		{"no credentials: metrics", "", "/metrics", http.StatusUnauthorized, "no credentials"},
		{"an expired token names the problem", "stale", "/exists/web/restore.app", http.StatusUnauthorized, "token has expired"},
		{"Kyverno asks", "kyverno-token", "/exists/web/restore.app", http.StatusOK, `"decision":"restore"`},
		{"Kyverno explains", "kyverno-token", "/explain/shop/restore.db", http.StatusOK, `"decision":"restore"`},
		{"Kyverno may not read the inventory", "kyverno-token", "/backups", http.StatusForbidden,
			`may not list backups.backup-oracle.io cluster-wide`},
		{"Kyverno may not read the repositories", "kyverno-token", "/status", http.StatusForbidden,
			`may not get repositories.backup-oracle.io cluster-wide`},
		{"no RBAC: 403 naming the permission", "nobody-token", "/exists/web/restore.app", http.StatusForbidden,
			`forbidden: \"system:serviceaccount:default:nobody\" may not get backups.backup-oracle.io in namespace \"web\" (no RBAC rule)`},
		{"no RBAC: metrics", "nobody-token", "/metrics", http.StatusForbidden, `may not get on the non-resource URL /metrics`},
		{"a namespace admin asks about their namespace", "web-token", "/snapshots/web/restore.app", http.StatusOK, `"snapshots"`},
		{"a namespace admin asks about another one", "web-token", "/snapshots/shop/restore.app", http.StatusForbidden,
			`may not get backups.backup-oracle.io in namespace \"shop\"`},
		{"identity is for operators", "web-token", "/identity/web/app", http.StatusForbidden, `repositories.backup-oracle.io`},
		{"operators see repositories", "operator-token", "/identity/web/app", http.StatusOK, `"backends"`},
		{"operators scrape metrics", "operator-token", "/metrics", http.StatusOK, "backup_oracle_http_requests_total"},
		{"authorisation down", "broken-sar", "/exists/web/restore.app", http.StatusServiceUnavailable, `connection refused`},
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := getAs(h, c.token, c.path)
			assert.Equal(t, c.code, rec.Code, rec.Body.String())
			assert.Contains(t, rec.Body.String(), c.body)
			if c.token != "" {
				assert.NotContains(t, rec.Body.String(), c.token, "a token is never echoed")
			}

			if c.code == http.StatusUnauthorized {
				assert.Equal(t, `Bearer realm="backup-oracle"`, rec.Header().Get("WWW-Authenticate"))
			}

			assert.Equal(t, "nosniff", rec.Header().Get("X-Content-Type-Options"))
			assert.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
		})
	}
}

// A memoised /exists answer is rendered once per PVC, for whoever asks: that is safe because
// /exists is all or nothing per caller (the guard runs before the memo is read).
func TestMemoisedAnswerIsNotServedToTheUnauthorised(t *testing.T) {
	h := newSecuredServer(t)

	require.Equal(t, http.StatusOK, getAs(h, "kyverno-token", "/exists/web/restore.app").Code)
	require.Equal(t, http.StatusOK, getAs(h, "kyverno-token", "/exists/web/restore.app").Code, "served from the memo")

	rec := getAs(h, "nobody-token", "/exists/web/restore.app")
	assert.Equal(t, http.StatusForbidden, rec.Code)
	assert.NotContains(t, rec.Body.String(), "restore.app-backup@web")
}

func TestAnonymousEndpoints(t *testing.T) {
	h := newSecuredServer(t, "metrics")

	assert.Equal(t, http.StatusOK, getAs(h, "", "/metrics").Code, "metrics admits callers without credentials")
	assert.Equal(t, http.StatusUnauthorized, getAs(h, "stale", "/metrics").Code, "invalid credentials are refused all the same")
	assert.Equal(t, http.StatusUnauthorized, getAs(h, "", "/exists/web/restore.app").Code)

	_, err := server.New(server.Options{Oracle: oracle(), Registerer: prometheus.NewRegistry(), Gatherer: prometheus.NewRegistry(),
		Auth: server.Auth{Authenticator: fakeAuthenticator{}, Authorizer: fakeAuthorizer{}, Anonymous: []string{"everything"}}})
	require.ErrorContains(t, err, `anonymous endpoint "everything": want some of exists, explain`)
}

type backupsBody struct {
	Backups []struct {
		Namespace string `json:"namespace"`
	} `json:"backups"`
	VisibleNamespaces []string `json:"visibleNamespaces"`
}

func namespacesOf(t *testing.T, rec *httptest.ResponseRecorder) backupsBody {
	t.Helper()

	var b backupsBody
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &b), rec.Body.String())

	return b
}

func TestInventoryPerNamespace(t *testing.T) {
	h := newSecuredServer(t)

	rec := getAs(h, "web-token", "/backups")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())

	b := namespacesOf(t, rec)
	assert.Equal(t, []string{"web"}, b.VisibleNamespaces)
	assert.Len(t, b.Backups, 2, "the fake inventory holds 2 backups in web and 2 in shop")

	for _, e := range b.Backups {
		assert.Equal(t, "web", e.Namespace)
	}

	assert.Equal(t, http.StatusForbidden, getAs(h, "web-token", "/backups?namespace=shop").Code)
	assert.Equal(t, http.StatusOK, getAs(h, "web-token", "/backups?namespace=web").Code)
	assert.Contains(t, getAs(h, "web-token", "/backups?format=ledger").Body.String(), "web/app")
	assert.NotContains(t, getAs(h, "web-token", "/backups?format=ledger").Body.String(), "shop/")

	b = namespacesOf(t, getAs(h, "operator-token", "/backups"))
	assert.Nil(t, b.VisibleNamespaces, "cluster-wide: unrestricted")
	assert.Len(t, b.Backups, 4)

	rec = getAs(h, "nobody-token", "/backups")
	assert.Equal(t, http.StatusForbidden, rec.Code)
	assert.Contains(t, rec.Body.String(), "nor in any namespace holding backups")
}

func TestInventoryHidesBackendErrorsFromNamespaceAdmins(t *testing.T) {
	o := oracle()
	o.inventory = func() []repo.Inventory {
		return []repo.Inventory{{Backend: "restic-s3", Err: errors.New("s3://secret-bucket/prefix: access denied")}}
	}

	reg := prometheus.NewRegistry()
	h, err := server.New(server.Options{Oracle: o, Registerer: reg, Gatherer: reg, Auth: server.Auth{
		Authenticator: fakeAuthenticator{authenticate: func(*http.Request) (server.Caller, bool, error) { return tokens["web-token"], true, nil }},
		Authorizer:    fakeAuthorizer{authorize: authorize},
	}})
	require.NoError(t, err)

	rec := getAs(h, "web-token", "/backups?namespace=web")
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.NotContains(t, rec.Body.String(), "secret-bucket")
	assert.Contains(t, rec.Body.String(), "not authoritative")
}

func TestConsoleForANamespaceAdmin(t *testing.T) {
	h := newSecuredServer(t)

	rec := getAs(h, "web-token", "/")
	require.Equal(t, http.StatusOK, rec.Code)

	page := rec.Body.String()
	assert.Contains(t, page, `<span id="caller">alice</span>`)
	assert.Contains(t, page, `<tr class="state-ok"><td>web</td>`)
	assert.NotContains(t, page, `<td>shop</td>`, "another namespace's backups")
	assert.NotContains(t, page, `id="backends"`, "the repositories are for operators")
	assert.Contains(t, page, `id="hidden"`)
	assert.Contains(t, page, `Only the namespaces you may list backups.backup-oracle.io in: web.`)
	assert.Equal(t, "DENY", rec.Header().Get("X-Frame-Options"))
	assert.Equal(t, "no-referrer", rec.Header().Get("Referrer-Policy"))

	page = getAs(h, "web-token", "/?pvc=shop/restore.db").Body.String()
	assert.Contains(t, page, `id="query-error"`)
	assert.Contains(t, page, `may not get backups.backup-oracle.io in namespace &#34;shop&#34;`)
	assert.NotContains(t, page, `id="decision"`)

	page = getAs(h, "web-token", "/?pvc=web/restore.app").Body.String()
	assert.Contains(t, page, `<span id="decision" class="decision decision-restore">restore</span>`)

	page = getAs(h, "operator-token", "/").Body.String()
	assert.Contains(t, page, `id="backends"`)
	assert.Contains(t, page, `<td>shop</td>`)
	assert.NotContains(t, page, `id="scope"`)
}

func TestEndpointsListIsComplete(t *testing.T) {
	// Every endpoint but the probes has a name Auth.Anonymous takes; a new endpoint must be added.
	want := []string{"backups", "console", "exists", "explain", "identity", "metrics", "openapi", "snapshots", "status"}
	got := server.Endpoints()
	slices.Sort(got)
	assert.Equal(t, want, got)
}
