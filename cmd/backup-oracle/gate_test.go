package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// unreachableKubeconfig is a kubeconfig whose API server refuses connections (nothing listens on
// port 1 of loopback).
func unreachableKubeconfig(t *testing.T) string {
	t.Helper()

	path := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(path, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600))

	return path
}

func TestGateSettings(t *testing.T) {
	c, err := parseConfig([]string{"--demo"}, env(nil), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, GateConfig{Interval: 5 * time.Minute, LabelKey: "backup", LabelValues: []string{"daily", "hourly"},
		Excluded: []string{"kube-system", "volsync-system", "kyverno"}}, c.Gate, "the chart's defaults; no canary namespace: off")
	assert.Equal(t, "the gate self-test is off: GATE_CANARY_NAMESPACE is not set (the chart sets it)", c.Gate.off())
	assert.Empty(t, c.Gate.rules(), "off: no right needed")

	c, err = parseConfig([]string{"--demo", "--policies-label-values", " weekly, ,daily"}, env(map[string]string{
		"GATE_CHECK_INTERVAL": "90s", "GATE_CANARY_NAMESPACE": "canary", "KUBECONFIG": "/k", "POLICIES_LABEL_KEY": "backup.example.com/schedule",
		"POLICIES_EXCLUDED_NAMESPACES": "kube-system,canary",
	}), io.Discard)
	require.NoError(t, err, "a canary namespace the policies exclude is not a configuration error: the self-test reports it")
	assert.Equal(t, GateConfig{Interval: 90 * time.Second, Namespace: "canary", Kubeconfig: "/k", LabelKey: "backup.example.com/schedule",
		LabelValues: []string{"weekly", "daily"}, Excluded: []string{"kube-system", "canary"}}, c.Gate)
	assert.Empty(t, c.Gate.off())

	c, err = parseConfig([]string{"--demo"}, env(map[string]string{"GATE_CHECK_INTERVAL": "0", "GATE_CANARY_NAMESPACE": "canary"}), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "the gate self-test is off: GATE_CHECK_INTERVAL is 0", c.Gate.off())

	_, err = parseConfig([]string{"--demo"}, env(map[string]string{"GATE_CHECK_INTERVAL": "-1s", "GATE_CANARY_NAMESPACE": "Canary_NS",
		"POLICIES_LABEL_VALUES": ","}), io.Discard)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "GATE_CHECK_INTERVAL must not be negative")
	assert.Contains(t, err.Error(), "GATE_CANARY_NAMESPACE: invalid name")
	assert.Contains(t, err.Error(), "POLICIES_LABEL_KEY and POLICIES_LABEL_VALUES must not be empty")

	c, err = parseConfig([]string{"--demo"}, env(map[string]string{"GATE_CANARY_NAMESPAC": "x"}), io.Discard)
	require.NoError(t, err)
	assert.Contains(t, c.Warnings, "GATE_CANARY_NAMESPAC is not a setting: did you mean GATE_CANARY_NAMESPACE?")
}

// TestRightsCommand: the rights the configuration needs, as the chart's Role renders them (a
// chart test compares the two).
func TestRightsCommand(t *testing.T) {
	var out syncBuffer

	require.Equal(t, 0, run(context.Background(), []string{"rights", "-o", "json"}, env(map[string]string{"GATE_CANARY_NAMESPACE": "canary"}), &out, io.Discard))

	var rules []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out.String()), &rules))
	require.Len(t, rules, 1)
	assert.Equal(t, "canary", rules[0]["namespace"])
	assert.Equal(t, []any{""}, rules[0]["apiGroups"])
	assert.Equal(t, []any{"persistentvolumeclaims"}, rules[0]["resources"])
	assert.Equal(t, []any{"create"}, rules[0]["verbs"], "create only: dry runs are authorised as creates")

	out = syncBuffer{}
	require.Equal(t, 0, run(context.Background(), []string{"rights"}, env(nil), &out, io.Discard))
	assert.Contains(t, out.String(), "none: the gate self-test is off")
}

func TestGateCheckCommand(t *testing.T) {
	var out, errs syncBuffer

	code := run(context.Background(), []string{"gate", "check"}, env(map[string]string{"GATE_CANARY_NAMESPACE": "canary", "KUBECONFIG": unreachableKubeconfig(t)}),
		&out, &errs)
	assert.Equal(t, exitFailure, code, "unchecked: %s", errs.String())
	assert.Regexp(t, regexp.MustCompile(`gate: UNCHECKED\n  canary  canary/backup-oracle-canary-[0-9a-f]{16}\n  reason  the API server could not be asked`), out.String())
	assert.Contains(t, out.String(), "connection refused")

	for _, args := range [][]string{{"gate"}, {"gate", "open"}, {"gate", "check", "-o", "yaml"}} {
		errs = syncBuffer{}
		assert.Equal(t, exitUsage, run(context.Background(), args, env(map[string]string{"GATE_CANARY_NAMESPACE": "canary"}), io.Discard, &errs), "%v", args)
	}

	errs = syncBuffer{}
	assert.Equal(t, exitUsage, run(context.Background(), []string{"gate", "check"}, env(nil), io.Discard, &errs))
	assert.Contains(t, errs.String(), "GATE_CANARY_NAMESPACE")

	out = syncBuffer{}
	assert.Equal(t, 0, run(context.Background(), []string{"gate", "check", "-h"}, env(nil), &out, io.Discard))
	assert.Contains(t, out.String(), "Exit codes: 0 armed, 3 disarmed")
}

// TestRunServesTheGate: the real program (the demo) with the self-test on, the API server
// unreachable: /status, /metrics and the console say unchecked and why, /readyz ignores it, a
// canary name is answered unknown with the self-test's reason, an excluded namespace holding
// backups is reported, and every metric the chart's alerts name is exported.
func TestRunServesTheGate(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	exited := make(chan int, 1)

	go func() {
		exited <- run(ctx, []string{"--demo", "--listen-address", "127.0.0.1:0", "--state-dir", t.TempDir()}, env(map[string]string{
			"GATE_CANARY_NAMESPACE": "backup-oracle-canary", "GATE_CHECK_INTERVAL": "100ms", "KUBECONFIG": unreachableKubeconfig(t),
			"POLICIES_EXCLUDED_NAMESPACES": "kube-system,monitoring",
		}), stdout, stderr)
	}()

	var url string

	require.Eventually(t, func() bool {
		m := regexp.MustCompile(`curl -s (http://127\.0\.0\.1:\d+)/exists/shop/postgres`).FindStringSubmatch(stdout.String())
		if m != nil {
			url = m[1]
		}

		return m != nil
	}, 2*time.Minute, 50*time.Millisecond, "stderr:\n%s", stderr)

	var gate map[string]any

	require.Eventually(t, func() bool {
		gate, _ = getJSON(t, url+"/status").m["gate"].(map[string]any)
		return gate["lastCheck"] != nil
	}, time.Minute, 50*time.Millisecond, "a first check")

	assert.Equal(t, "unchecked", gate["state"])
	assert.Contains(t, gate["reason"], "connection refused")
	assert.Regexp(t, `^backup-oracle-canary/backup-oracle-canary-[0-9a-f]{16}$`, gate["canary"])
	assert.InDelta(t, 0.1, gate["intervalSeconds"], 0.0001)
	assert.Equal(t, []any{map[string]any{"namespace": "monitoring", "sources": 1.0, "backends": []any{"kopia-fs"},
		"reason": "backups exist for namespace monitoring, but its PVCs are never checked: the policies exclude it (1 backup source(s) on kopia-fs)"}},
		gate["uncoveredNamespaces"])

	assert.Equal(t, 200, getJSON(t, url+"/readyz").code, "the gate is not part of readiness")

	canary := getJSON(t, url+"/exists/backup-oracle-canary/backup-oracle-canary-0123456789abcdef?unknownStatus=200")
	assert.Equal(t, 200, canary.code)
	assert.Equal(t, "unknown", canary.m["decision"])
	assert.Contains(t, canary.m["error"], "gate self-test canary 0123456789abcdef")

	lookalike := getJSON(t, url+"/exists/shop/backup-oracle-canary-postgres")
	assert.Equal(t, 503, lookalike.code, "a name that merely looks like a canary is unknown too")

	_, metrics := get(t, url+"/metrics")
	assert.Contains(t, string(metrics), `backup_oracle_gate_state{state="unchecked"} 1`)
	assert.Contains(t, string(metrics), `backup_oracle_gate_state{state="armed"} 0`)
	assert.Contains(t, string(metrics), `backup_oracle_excluded_namespace_backups{pvc_namespace="monitoring"} 1`)
	assert.Regexp(t, `\nbackup_oracle_gate_last_check_timestamp_seconds [0-9.e+]+\n`, string(metrics))

	assertChartAlertMetricsExported(t, url) // every one: the run has asked, loaded, and holds an uncovered namespace

	_, page := get(t, url+"/")
	assert.Contains(t, string(page), `class="decision gate-unchecked">unchecked</span>`)
	assert.Contains(t, string(page), "backups exist for namespace monitoring, but its PVCs are never checked")

	assert.Contains(t, stderr.String(), "gate self-test: the gate is not armed", "the first state change is logged as a warning")

	cancel()
	select {
	case code := <-exited:
		assert.Equal(t, 0, code)
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}
