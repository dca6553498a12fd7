package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCutoverRights: what each invocation of the cutover command may do, stated independently of
// repo/kube (the chart renders the Job's ClusterRole from the same statement; a chart test
// compares the two).
func TestCutoverRights(t *testing.T) {
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"run"}, []string{
			"/persistentvolumeclaims list", "/pods list",
			"volsync.backube/replicationsources list", "volsync.backube/replicationsources patch",
		}},
		{[]string{"run", "--scale-workloads"}, []string{
			"/persistentvolumeclaims list", "/pods list",
			"apps/deployments get", "apps/deployments patch", "apps/replicasets get", "apps/statefulsets get", "apps/statefulsets patch",
			"volsync.backube/replicationsources list", "volsync.backube/replicationsources patch",
		}},
		{[]string{"undo"}, []string{"volsync.backube/replicationsources list", "volsync.backube/replicationsources patch"}},
		{[]string{"undo", "--scale-workloads"}, []string{
			"apps/deployments list", "apps/deployments patch", "apps/statefulsets list", "apps/statefulsets patch",
			"volsync.backube/replicationsources list", "volsync.backube/replicationsources patch",
		}},
	}

	for _, tc := range cases {
		var out syncBuffer

		args := append(append([]string{"cutover"}, tc.args...), "--rights")
		require.Equal(t, 0, run(context.Background(), args, env(map[string]string{"CUTOVER_AT": "2026-12-06T18:00:00Z"}), &out, io.Discard), "%v", tc.args)

		var rules []struct {
			Namespace string   `json:"namespace"`
			APIGroups []string `json:"apiGroups"`
			Resources []string `json:"resources"`
			Verbs     []string `json:"verbs"`
			Why       string   `json:"why"`
		}
		require.NoError(t, json.Unmarshal([]byte(out.String()), &rules))

		var got []string
		for _, r := range rules {
			assert.Empty(t, r.Namespace, "cluster-wide: the labelled PVCs may be in any namespace")
			assert.NotEmpty(t, r.Why)

			for _, g := range r.APIGroups {
				for _, res := range r.Resources {
					for _, v := range r.Verbs {
						got = append(got, g+"/"+res+" "+v)
					}
				}
			}
		}

		slices.Sort(got)
		assert.Equal(t, tc.want, got, "%v", tc.args)
	}
}

func TestCutoverCommandUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"cutover"}, nil, "want the subcommand run or undo"},
		{[]string{"cutover", "go"}, nil, "want the subcommand run or undo"},
		{[]string{"cutover", "run"}, nil, "CUTOVER_AT (--cutover-at) is not set"},
		{[]string{"cutover", "run"}, map[string]string{"CUTOVER_AT": "6 Dec 2026"}, `CUTOVER_AT "6 Dec 2026" is not an RFC 3339 time`},
		{[]string{"cutover", "run", "--timeout", "0s"}, map[string]string{"CUTOVER_AT": "2026-12-06T18:00:00Z"}, "--interval and --timeout must be positive"},
		{[]string{"cutover", "undo", "--frobnicate"}, nil, "flag provided but not defined: -frobnicate"},
	} {
		var errs syncBuffer
		assert.Equal(t, exitUsage, run(context.Background(), tc.args, env(tc.env), io.Discard, &errs), "%v", tc.args)
		assert.Contains(t, errs.String(), tc.want, "%v", tc.args)
	}

	var out syncBuffer
	require.Equal(t, 0, run(context.Background(), []string{"cutover", "run", "-h"}, env(nil), &out, io.Discard))
	assert.Contains(t, out.String(), "exit 0 when every PVC is done, 3 when the\ntimeout passed first")
	assert.Contains(t, out.String(), "-scale-workloads")
}

// TestCutoverCommandUnreachable: with the API server unreachable, run makes no pass by the
// timeout (exit 1) and writes the termination message; undo cannot list (exit 1).
func TestCutoverCommandUnreachable(t *testing.T) {
	term := filepath.Join(t.TempDir(), "termination-log")

	var out, errs syncBuffer

	code := run(context.Background(), []string{"cutover", "run", "--timeout", "1ms", "--interval", "1ms", "--termination-log", term},
		env(map[string]string{"CUTOVER_AT": "2020-12-06T18:00:00Z", "CUTOVER_FROM": "blue", "KUBECONFIG": unreachableKubeconfig(t)}), &out, &errs)
	assert.Equal(t, exitFailure, code, errs.String())
	assert.Contains(t, out.String(), "cutover at 2020-12-06T18:00:00Z from blue on https://127.0.0.1:1: trigger cutover-2020-12-06T18:00:00Z for the PVCs labelled backup in (daily,hourly)")
	assert.Contains(t, out.String(), "NAMESPACE  PVC  STATE  REPLICATIONSOURCES  DETAIL")
	assert.Contains(t, errs.String(), "cutover: no pass could be made in 1ms")
	assert.Contains(t, errs.String(), "connection refused")

	msg, err := os.ReadFile(term)
	require.NoError(t, err)
	assert.Contains(t, string(msg), "0 PVCs")

	errs = syncBuffer{}
	assert.Equal(t, exitFailure, run(context.Background(), []string{"cutover", "undo"}, env(map[string]string{"KUBECONFIG": unreachableKubeconfig(t)}),
		io.Discard, &errs))
	assert.Contains(t, errs.String(), "kube: list ReplicationSources on https://127.0.0.1:1")
}
