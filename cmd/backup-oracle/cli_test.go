package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/repo"
	"github.com/backup-oracle/backup-oracle/repo/ledger"
)

// startDemo runs the real program (no command: the server) on the demo repository and returns
// its URL once ready.
func startDemo(t *testing.T) string {
	t.Helper()

	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	exited := make(chan int, 1)

	go func() {
		exited <- run(ctx, []string{"--demo", "--listen-address", "127.0.0.1:0", "--state-dir", t.TempDir()}, env(nil), stdout, stderr)
	}()

	t.Cleanup(func() {
		cancel()
		<-exited
	})

	var url string

	require.Eventually(t, func() bool {
		m := regexp.MustCompile(`curl -s (http://127\.0\.0\.1:\d+)/exists/shop/postgres`).FindStringSubmatch(stdout.String())
		if m != nil {
			url = m[1]
		}

		return m != nil
	}, 2*time.Minute, 50*time.Millisecond, "stderr:\n%s", stderr)

	return url
}

// TestCommands: every operator command, against a running server (--server) and on the
// repository itself (the same settings as the server: here --demo), with its documented exit
// code and output.
func TestCommands(t *testing.T) {
	url := startDemo(t)

	cases := []struct {
		args []string
		code int
		out  []string // substrings of stdout
	}{
		{[]string{"check", "shop/postgres"}, 0, []string{"shop/postgres: RESTORE (kopia-fs)", "source     postgres-backup@shop:/data", "snapshots  2"}},
		{[]string{"check", "shop/my.app.data"}, 0, []string{"RESTORE", "myappdata-backup@shop:/data"}},
		{[]string{"check", "shop/cache"}, 3, []string{"shop/cache: FRESH (kopia-fs)"}},
		{[]string{"check", "shop/redis"}, 4, []string{"shop/redis: UNKNOWN (kopia-fs)", "near miss", "redis-backup@shop:/var/lib/redis"}},
		{[]string{"check", "shop/redis", "--accept", "near-miss"}, 3, []string{"shop/redis: FRESH (kopia-fs)"}},
		{[]string{"check", "shop/postgres", "--previous", "1"}, 0, []string{"asked      latest, previous 1", "restores"}},
		{[]string{"check", "shop/postgres", "--previous", "2"}, 4, []string{"UNKNOWN", "previous 2 skips them all; VolSync would restore nothing"}},
		{[]string{"check", "shop/postgres", "--as-of", "2001-01-01T00:00:00Z"}, 4, []string{"none at or before 2001-01-01T00:00:00Z"}},
		{[]string{"check", "shop/cache", "--as-of", "2001-01-01T00:00:00Z"}, 3, []string{"FRESH"}},
		{[]string{"snapshots", "shop/postgres"}, 0, []string{"SNAPSHOT", "postgres-backup@shop:/data", "\n*  "}},
		{[]string{"snapshots", "shop/cache"}, 3, []string{"no snapshot of shop/cache on any backend"}},
		{[]string{"list"}, 0, []string{"NAMESPACE ", " PVC ", "myappdata-backup@shop:/data", "redis-backup@shop:/var/lib/redis"}},
		{[]string{"list", "analytics"}, 0, []string{"analytics-warehouse-clickhouse-data-volum-5be1bac6@analytics:/data"}},
		{[]string{"identity", "shop/my.app.data"}, 0, []string{"ReplicationSource       my.app.data-backup", "ReplicationDestination  my.app.data-backup", "kopia-fs looks up       myappdata-backup@shop:/data"}},
		{[]string{"explain", "shop/redis"}, 4, []string{"UNKNOWN", "stored nearby", "redis-backup@shop:/var/lib/redis"}},
		{[]string{"explain", "shop/cache"}, 3, []string{"FRESH", "stored nearby", "redis-backup@shop:/var/lib/redis"}},
	}

	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut syncBuffer

			code := run(context.Background(), append(tc.args, "--server", url), env(nil), &out, &errOut)
			assert.Equal(t, tc.code, code, "stdout:\n%s\nstderr:\n%s", out.String(), errOut.String())

			for _, s := range tc.out {
				assert.Contains(t, out.String(), s)
			}
		})
	}

	t.Run("list's rows", func(t *testing.T) {
		var out syncBuffer
		require.Equal(t, 0, run(context.Background(), []string{"list", "--server", url}, env(nil), &out, &out))
		assert.Regexp(t, `(?m)^shop\s+postgres\s+2\s`, out.String())
	})

	t.Run("list -o ledger exports the expected-backups ledger", func(t *testing.T) {
		var out syncBuffer
		require.Equal(t, 0, run(context.Background(), []string{"list", "-o", "ledger", "--server", url}, env(nil), &out, &out))

		pvcs, err := ledger.Parse([]byte(out.String()))
		require.NoError(t, err, out.String())
		assert.True(t, pvcs[repo.PVC{Namespace: "shop", Name: "postgres"}], out.String())
		assert.True(t, pvcs[repo.PVC{Namespace: "shop", Name: "myappdata"}], "the dotted name comes back without dots (the ledger matches without them)")
		assert.Contains(t, out.String(), "#   kopia-fs: redis-backup@shop:/var/lib/redis", "sources without a PVC name are comments")
	})

	t.Run("list omits the fresh ones with --stale-for", func(t *testing.T) {
		var out syncBuffer
		require.Equal(t, 0, run(context.Background(), []string{"list", "--server", url, "--stale-for", "1h"}, env(nil), &out, &out))
		assert.NotContains(t, out.String(), "postgres", "the demo's backups are seconds old")
	})

	t.Run("json is the API's answer", func(t *testing.T) {
		var out syncBuffer
		require.Equal(t, 3, run(context.Background(), []string{"check", "-o", "json", "--server", url, "shop/cache"}, env(nil), &out, &out))

		var body map[string]any
		require.NoError(t, json.Unmarshal([]byte(out.String()), &body))
		assert.Equal(t, "fresh", body["decision"])
		assert.Equal(t, "cache-backup@shop:/data", body["source"])
	})
}

// TestCommandsReadTheRepository: without --server, a command loads the backends itself (here the
// demo's) and answers by the same rules.
func TestCommandsReadTheRepository(t *testing.T) {
	cases := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"check", "--demo", "shop/postgres"}, 0, "RESTORE"},
		{[]string{"check", "--demo", "shop/redis"}, 4, "UNKNOWN"},
		{[]string{"check", "--demo", "shop/cache"}, 3, "FRESH"},
		{[]string{"list", "--demo"}, 0, "postgres-backup@shop:/data"},
	}

	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut syncBuffer

			assert.Equal(t, tc.code, run(context.Background(), append(tc.args, "--state-dir", t.TempDir()), env(nil), &out, &errOut), errOut.String())
			assert.Contains(t, out.String(), tc.out)
		})
	}

	var out, errOut syncBuffer
	code := run(context.Background(), []string{"check", "shop/postgres"}, env(map[string]string{"KOPIA_REPOSITORY_PATH": t.TempDir(), "KOPIA_PASSWORD": "x"}), &out, &errOut)
	assert.Equal(t, 4, code, "an unreadable repository is unknown, as on the server")
	assert.Contains(t, out.String(), "UNKNOWN")
}

func TestCommandUsage(t *testing.T) {
	cases := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no argument", []string{"check", "--server", "http://127.0.0.1:1"}, 2, "want one NAMESPACE/PVC argument"},
		{"two arguments", []string{"snapshots", "a/b", "c/d", "--server", "http://127.0.0.1:1"}, 2, "want one NAMESPACE/PVC"},
		{"invalid name", []string{"identity", "web/Bad_Name", "--server", "http://127.0.0.1:1"}, 2, "must be a DNS-1123 subdomain"},
		{"bad output", []string{"list", "-o", "xml", "--server", "http://127.0.0.1:1"}, 2, `-o "xml"`},
		{"ledger is list's", []string{"check", "-o", "ledger", "--server", "http://127.0.0.1:1", "a/b"}, 2, "only list exports"},
		{"unknown flag", []string{"list", "--nope"}, 2, "flag provided but not defined: -nope"},
		{"two namespaces", []string{"list", "a", "b", "--server", "http://127.0.0.1:1"}, 2, "at most one NAMESPACE"},
		{"no repository configured", []string{"check", "web/app"}, 2, "KOPIA_REPOSITORY_PATH"},
		{"server unreachable", []string{"check", "web/app", "--server", "http://127.0.0.1:1"}, 1, "connection refused"},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut syncBuffer

			assert.Equal(t, tc.code, run(context.Background(), tc.args, env(nil), &out, &errOut))
			assert.Contains(t, errOut.String(), tc.msg)
		})
	}
}

// TestCommandHelp: every command teaches with examples and documents its exit codes.
func TestCommandHelp(t *testing.T) {
	for _, c := range commands() {
		t.Run(c.name, func(t *testing.T) {
			var out syncBuffer

			require.Equal(t, 0, run(context.Background(), []string{c.name, "-h"}, env(nil), &out, &out))

			help := out.String()
			assert.Contains(t, help, "backup-oracle "+c.name+" "+c.args)
			assert.Contains(t, help, "Examples:\n  backup-oracle "+c.name)
			assert.Contains(t, help, "Exit codes: 0 restore")
			assert.Contains(t, help, "3 fresh")
			assert.Contains(t, help, "4 unknown")
			assert.Contains(t, help, "2 usage error")
			assert.Contains(t, help, "-server")
			assert.Contains(t, help, "-kopia-repository-path", "the server's settings")
		})
	}

	var out syncBuffer
	require.Equal(t, 0, run(context.Background(), []string{"--help"}, env(nil), &out, &out))

	for _, c := range commands() {
		assert.Contains(t, out.String(), "backup-oracle "+c.name+" ", "--help lists %s", c.name)
	}
}

// TestCheckWaitsWhilePending: an answer that is unknown only while the PVC's snapshots are being
// verified is asked again (--wait), and the final answer is what is printed; past --wait the
// command says it is still verifying.
func TestCheckWaitsWhilePending(t *testing.T) {
	const pendingBody = `{"exists":false,"decision":"unknown","authoritative":false,"namespace":"team-a","pvc":"db","backend":"restic-s3",` +
		`"snapshotCount":0,"error":"restic: repository \"s3:b/team-a/db\": 1 of 1 snapshots not verified yet: snapshot unverifiable: verification pending","pending":true}`
	const restoreBody = `{"exists":true,"decision":"restore","authoritative":true,"namespace":"team-a","pvc":"db","backend":"restic-s3",` +
		`"source":"s3:b/team-a/db","snapshotCount":1,"latestSnapshot":{"id":"abc","time":"2026-12-01T00:00:00Z","size":1}}`

	var asked atomic.Int32

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if asked.Add(1) <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(pendingBody))

			return
		}

		_, _ = w.Write([]byte(restoreBody))
	}))
	t.Cleanup(srv.Close)

	var out, errOut syncBuffer
	code := run(context.Background(), []string{"check", "--server", srv.URL, "team-a/db"}, env(nil), &out, &errOut)
	assert.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out.String(), errOut.String())
	assert.Contains(t, out.String(), "RESTORE")
	assert.Contains(t, errOut.String(), "verifying this PVC's snapshots")
	assert.Equal(t, int32(3), asked.Load())

	asked.Store(-1000) // pending for ever

	out, errOut = syncBuffer{}, syncBuffer{}
	code = run(context.Background(), []string{"check", "--server", srv.URL, "--wait", "1500ms", "team-a/db"}, env(nil), &out, &errOut)
	assert.Equal(t, 4, code)
	assert.Contains(t, out.String(), "UNKNOWN")
	assert.Contains(t, errOut.String(), "still verifying this PVC's snapshots after 1.5s")

	asked.Store(-1000)

	out, errOut = syncBuffer{}, syncBuffer{}
	code = run(context.Background(), []string{"check", "--server", srv.URL, "--wait", "0", "team-a/db"}, env(nil), &out, &errOut)
	assert.Equal(t, 4, code, "--wait 0 answers at once")
	assert.Equal(t, int32(-999), asked.Load())
}
