package cutover

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/backup-oracle/backup-oracle/repo"
)

// undoAttempts bounds Undo's passes: an object that changed between its read and the write is
// read and restored again at the next one.
const undoAttempts = 5

// Change is one object Undo restored (or failed to).
type Change struct {
	// Object is "ReplicationSource namespace/name" or "Deployment namespace/name".
	Object string
	Action string
	Err    error
}

// Undo restores what any cutover changed, found by repo.CutoverLabel: each marked
// ReplicationSource gets back its manual trigger from before (none, for those the policies
// generate: their schedule runs them again), unless someone changed the trigger since; with
// workloads (nil: the cutover did not scale), each marked Deployment and StatefulSet still at zero
// gets back its recorded replicas. The marks are removed in any case. Re-run safe: nothing marked,
// nothing done. An error means the marked objects could not be listed; a change that failed is
// in its Change.
func Undo(ctx context.Context, sources ReplicationSources, workloads Workloads) ([]Change, error) {
	var done []Change

	for range undoAttempts {
		changes, err := undoPass(ctx, sources, workloads)
		if err != nil {
			return done, err
		}

		again := false

		for _, c := range changes {
			if errors.Is(c.Err, repo.ErrChanged) {
				again = true
				continue
			}

			done = append(done, c)
		}

		if !again {
			break
		}
	}

	slices.SortFunc(done, func(a, b Change) int { return strings.Compare(a.Object, b.Object) })

	return done, nil
}

func undoPass(ctx context.Context, sources ReplicationSources, workloads Workloads) ([]Change, error) {
	marked, err := sources.ListReplicationSources(ctx, true)
	if err != nil {
		return nil, err
	}

	changes := make([]Change, 0, len(marked))

	for _, rs := range marked {
		changes = append(changes, undoSource(ctx, sources, rs))
	}

	if workloads == nil {
		return changes, nil
	}

	scaled, err := workloads.ListMarkedWorkloads(ctx)
	if err != nil {
		return changes, err
	}

	for _, st := range scaled {
		changes = append(changes, undoWorkload(ctx, workloads, st))
	}

	return changes, nil
}

func undoSource(ctx context.Context, sources ReplicationSources, rs repo.ReplicationSource) Change {
	c := Change{Object: "ReplicationSource " + rs.String()}

	if rs.TriggerSet == "" || rs.Manual != rs.TriggerSet {
		c.Action = fmt.Sprintf("marks removed; its manual trigger %q is not the cutover's (%q) and is left", rs.Manual, rs.TriggerSet)
		c.Err = sources.ClearCutoverMarks(ctx, rs, nil)

		return c
	}

	manual := rs.ManualBefore

	switch {
	case manual != "":
		c.Action = fmt.Sprintf("manual trigger %q restored", manual)
	case rs.Schedule != "":
		c.Action = fmt.Sprintf("manual trigger removed: its schedule %q runs it again", rs.Schedule)
	default:
		c.Action = "manual trigger removed (it has no schedule: VolSync synchronizes it continuously)"
	}

	c.Err = sources.ClearCutoverMarks(ctx, rs, &manual)

	return c
}

func undoWorkload(ctx context.Context, workloads Workloads, st repo.WorkloadState) Change {
	c := Change{Object: st.String()}

	switch {
	case st.Recorded < 0:
		c.Action = fmt.Sprintf("marks removed; no replica count was recorded (%s), its replicas (%d) are left", repo.CutoverReplicasAnnotation, st.Replicas)
		c.Err = workloads.ClearWorkloadMarks(ctx, st, nil)

		return c
	case st.Replicas != 0:
		c.Action = fmt.Sprintf("marks removed; its replicas (%d) were changed since the cutover scaled it to zero, and are left", st.Replicas)
		c.Err = workloads.ClearWorkloadMarks(ctx, st, nil)

		return c
	}

	replicas := st.Recorded
	c.Action = fmt.Sprintf("scaled back from 0 to %d", replicas)
	c.Err = workloads.ClearWorkloadMarks(ctx, st, &replicas)

	return c
}
