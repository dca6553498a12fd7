package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/backup-oracle/backup-oracle/integration/harness"
)

func fmtAll(c Config) string { return fmt.Sprintf("%v %+v %#v", c, c, c) }

// syncBuffer collects the concurrent writes of run's goroutines.
type syncBuffer = harness.SyncBuffer

// TestRunDemo is `make run`: the real program, in-process, on 127.0.0.1:0.
func TestRunDemo(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	state := t.TempDir()
	exited := make(chan int, 1)

	go func() {
		exited <- run(ctx, []string{"--demo", "--listen-address", "127.0.0.1:0", "--state-dir", state}, env(nil), stdout, stderr)
	}()

	var url string

	require.Eventually(t, func() bool {
		m := regexp.MustCompile(`curl -s (http://127\.0\.0\.1:\d+)/exists/shop/postgres`).FindStringSubmatch(stdout.String())
		if m != nil {
			url = m[1]
		}

		return m != nil
	}, 2*time.Minute, 50*time.Millisecond, "curl lines are printed once ready; stderr:\n%s", stderr)

	cases := []struct {
		path     string
		code     int
		decision string
		count    float64
	}{
		{"/exists/shop/postgres", 200, "restore", 2},
		{"/exists/shop/my.app.data", 200, "restore", 1},
		{"/exists/analytics/" + demoLongPVC, 200, "restore", 1},
		{"/exists/shop/cache", 200, "fresh", 0},
		{"/exists/shop/redis", 503, "unknown", 0},
		{"/exists/shop/redis?accept=near-miss", 200, "fresh", 0},
		{"/exists/staging/redis", 200, "restore", 1},
		{"/exists/web/redis", 200, "fresh", 0},
		{"/exists/monitoring/" + demoReplica + "0", 503, "unknown", 0},
		{"/exists/monitoring/" + demoReplica + "1", 503, "unknown", 0},
		{"/exists/staging/cache", 200, "fresh", 0},
		{"/exists/shop/Bad_Name", 400, "unknown", 0},
	}

	for _, tc := range cases {
		body := getJSON(t, url+tc.path)
		assert.Equal(t, tc.code, body.code, tc.path)
		assert.Equal(t, tc.decision, body.m["decision"], tc.path)
		assert.Equal(t, tc.count, body.m["snapshotCount"], tc.path)
	}

	assert.Equal(t, 200, getJSON(t, url+"/readyz").code)
	assert.Contains(t, stdout.String(), "/exists/shop/redis")
	assert.Contains(t, stdout.String(), "accept=near-miss")

	redis := getJSON(t, url+"/exists/shop/redis")
	assert.Contains(t, redis.m["error"], "redis-backup@shop:/var/lib/redis", "the near miss is named")
	require.NotEmpty(t, redis.m["nearMiss"])

	accepted := getJSON(t, url+"/exists/shop/redis?accept=near-miss")
	assert.Equal(t, "near-miss", accepted.m["accepted"], "the acceptance is echoed")

	cancel()
	select {
	case code := <-exited:
		assert.Equal(t, 0, code)
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after cancel")
	}

	assert.NotContains(t, stderr.String(), "backup-oracle-demo", "the demo password is not logged")
}

func TestRunExitCodes(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  map[string]string
		code int
		out  string
	}{
		{"bad config", nil, map[string]string{"BACKEND_TYPE": "tape"}, 2, "unknown type \"tape\""},
		{"check-config ok", []string{"--check-config"}, map[string]string{"KOPIA_REPOSITORY_PATH": "/r", "KOPIA_PASSWORD": "x"}, 0, "configuration ok"},
		{"check-config reads the ledger", []string{"--check-config"}, map[string]string{"KOPIA_REPOSITORY_PATH": "/r", "KOPIA_PASSWORD": "x",
			"EXPECTED_BACKUPS_FILE": writeTemp("pvcs: [shop/postgres, web/my.app.data]\n")}, 0, "expected-backups ledger"},
		{"check-config refuses a malformed ledger", []string{"--check-config"}, map[string]string{"KOPIA_REPOSITORY_PATH": "/r", "KOPIA_PASSWORD": "x",
			"EXPECTED_BACKUPS_FILE": writeTemp("pvcs: [Bad_Name]\n")}, 1, `entry 1 "Bad_Name": want <namespace>/<pvc>`},
		{"check-config refuses a missing ledger", []string{"--check-config"}, map[string]string{"KOPIA_REPOSITORY_PATH": "/r", "KOPIA_PASSWORD": "x",
			"EXPECTED_BACKUPS_FILE": "/nonexistent/pvcs.yaml"}, 1, "FAILED: expected-backups ledger"},
		{"check-config opens the demo", []string{"--check-config", "--demo", "--open"}, nil, 0, "backend 1: opened: 6 sources"},
		{"version without configuration", []string{"--version"}, nil, 0, "backup-oracle dev"},
		{"help", []string{"-h"}, nil, 0, "KOPIA_PASSWORD_FILE"},
		{"cannot listen", []string{"--listen-address", "256.0.0.1:1"}, map[string]string{"KOPIA_REPOSITORY_PATH": "/r", "KOPIA_PASSWORD": "x"}, 1, "listen on 256.0.0.1:1"},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out syncBuffer

			code := run(context.Background(), tc.args, env(tc.env), &out, &out)
			assert.Equal(t, tc.code, code)
			assert.Contains(t, out.String(), tc.out)
		})
	}
}

// writeTemp writes content to a new file in the system's temporary directory (removed when the
// test binary's temporary files are) and returns its path.
func writeTemp(content string) string {
	f, err := os.CreateTemp("", "backup-oracle-test-*.yaml")
	if err != nil {
		panic(err)
	}

	defer f.Close()

	if _, err := f.WriteString(content); err != nil {
		panic(err)
	}

	return f.Name()
}

type jsonResponse struct {
	code int
	m    map[string]any
}

func getJSON(t *testing.T, url string) jsonResponse {
	t.Helper()

	code, b := get(t, url)
	r := jsonResponse{code: code}
	require.NoError(t, json.Unmarshal(b, &r.m), "%s", b)

	return r
}

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()

	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	require.NoError(t, err)

	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()

	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)

	return resp.StatusCode, b
}

// assertChartAlertMetricsExported: the chart's PrometheusRule alerts on metrics by name; each
// must be one the service really exports.
func assertChartAlertMetricsExported(t *testing.T, url string) {
	t.Helper()

	raw, err := os.ReadFile(filepath.Join("..", "..", "chart", "values.yaml"))
	require.NoError(t, err)

	var values struct {
		PrometheusRule struct {
			Metrics map[string]string `yaml:"metrics"`
		} `yaml:"prometheusRule"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &values))
	require.NotEmpty(t, values.PrometheusRule.Metrics)

	_, body := get(t, url+"/metrics")

	for key, name := range values.PrometheusRule.Metrics {
		// A series line: the name, then its labels or (for an unlabelled metric such as the
		// process collector's) the value.
		assert.Regexp(t, regexp.MustCompile(`\n`+regexp.QuoteMeta(name)+`[{ ]`), string(body), "chart alert metric %s (%s) is not exported", key, name)
	}
}

// TestHelpListsTheRegistry: --help documents every kind of the registry and every setting each
// kind reads, with its environment variables.
func TestHelpListsTheRegistry(t *testing.T) {
	var out syncBuffer

	require.Equal(t, 0, run(context.Background(), []string{"--help"}, env(nil), &out, io.Discard))

	help := out.String()
	for _, k := range registry() {
		assert.True(t, strings.Contains(help, "\n  "+k.Name+" "), "--help does not list kind %s", k.Name)

		for _, f := range k.New().Fields() {
			assert.Regexp(t, regexp.MustCompile(`\n  -`+regexp.QuoteMeta(f.Flag)+`[ \n]`), help, "--help does not list flag %s of %s", f.Flag, k.Name)

			for _, e := range f.Env {
				assert.True(t, strings.Contains(help, "$"+e), "--help does not name $%s (flag %s)", e, f.Flag)
			}
		}
	}

	assert.NotContains(t, help, "(default [redacted])", "an unset secret has no default to show")
	assert.NotContains(t, help, "(default 0s)")
}

func TestKindsCommand(t *testing.T) {
	var out, errOut syncBuffer

	require.Equal(t, 0, run(context.Background(), []string{"kinds", "-o", "json"}, env(nil), &out, &errOut), errOut.String())

	var kinds []kindJSON
	require.NoError(t, json.Unmarshal([]byte(out.String()), &kinds))
	require.Len(t, kinds, len(registry()))

	for i, k := range registry() {
		assert.Equal(t, k.Name, kinds[i].Name)
		assert.Len(t, kinds[i].Fields, len(k.New().Fields()))
	}

	out = syncBuffer{}
	require.Equal(t, 0, run(context.Background(), []string{"kinds"}, env(nil), &out, &errOut))
	assert.Contains(t, out.String(), "RESTIC_REPOSITORY_PATH")

	assert.Equal(t, 2, run(context.Background(), []string{"kinds", "-o", "xml"}, env(nil), &out, &errOut))
}
