//go:build e2e

package e2e

import (
	"context"
	"slices"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness/jobrunner"
)

// moverJob waits for the mover Job VolSync creates for the owner, runs it with runner and
// requires it to succeed and to reach its script's end ("=== Done ===": VolSync's
// mover-restic/entry.sh and the Kopia fork's mover-kopia/entry.sh both print it last); it
// returns the run's result.
func (r *run) moverJob(runner *jobrunner.Runner, ownerKind, owner, what string) jobrunner.Result {
	t := r.t

	var name string

	took, ok := eventually(60*time.Second, 200*time.Millisecond, func() bool {
		name = r.pendingMoverJob(ownerKind, owner)
		return name != ""
	})
	require.True(t, ok, "VolSync made no Job for %s %s/%s", ownerKind, r.ns, owner)

	start := time.Now()
	res := r.runJob(runner, name)
	require.Equal(t, 0, res.ExitCode, "%s Job %s:\n%s", what, name, res.Log)
	require.Contains(t, res.Log, "=== Done ===", "%s Job %s ran to its end", what, name)
	t.Logf("%s Job %s (made %s after the %s) ran in %s", what, name, took.Round(time.Millisecond), ownerKind, time.Since(start).Round(time.Millisecond))

	return res
}

// pendingMoverJob is the name of a Job of r.ns owned by ownerKind/owner that has not
// succeeded yet, or "" when there is none.
func (r *run) pendingMoverJob(ownerKind, owner string) string {
	list := r.k.get(r.t, "/apis/batch/v1/namespaces/"+r.ns+"/jobs")
	items, _ := list.Body["items"].([]any)

	for _, it := range items {
		j, _ := it.(map[string]any)
		refs, _ := nested(j, "metadata", "ownerReferences").([]any)

		for _, ref := range refs {
			m, _ := ref.(map[string]any)
			if m["kind"] == ownerKind && m["name"] == owner && nested(j, "status", "succeeded") == nil {
				return str(j, "metadata", "name")
			}
		}
	}

	return ""
}

// runJob runs Job name of r.ns once with runner (the pod could not be run: the test fails) and
// returns what it left, whatever its exit code.
func (r *run) runJob(runner *jobrunner.Runner, name string) jobrunner.Result {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	res, err := runner.Run(ctx, r.ns, name)
	require.NoError(r.t, err)

	return res
}

// waitStatus waits until VolSync recorded every field in the status of kind/name and returns
// the status.
func (r *run) waitStatus(kind, name string, fields ...string) map[string]any {
	var status map[string]any

	_, ok := eventually(60*time.Second, 200*time.Millisecond, func() bool {
		status, _ = nested(r.k.get(r.t, volsyncPath(r.ns, kind, name)).Body, "status").(map[string]any)

		return !slices.ContainsFunc(fields, func(f string) bool { return status[f] == nil })
	})
	require.True(r.t, ok, "%s %s: VolSync recorded not all of status %v: %v", kind, name, fields, status)

	return status
}
