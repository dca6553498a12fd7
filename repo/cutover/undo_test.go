package cutover_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/repo"
	"github.com/backup-oracle/backup-oracle/repo/cutover"
)

func ptr[T any](v T) *T { return &v }

// TestUndo: a source still on the cutover's trigger gets its trigger from before (none: the
// schedule runs it again); one whose trigger someone changed since keeps it; a workload still at
// zero gets its recorded replicas, one scaled since keeps its own; the marks go in every case.
func TestUndo(t *testing.T) {
	marked := func(name, manual, before string) repo.ReplicationSource {
		rs := idle()
		rs.Name, rs.Manual, rs.Marker, rs.TriggerSet, rs.ManualBefore = name, manual, wantMarker, wantTrigger, before

		return rs
	}
	deploy := repo.WorkloadState{Workload: repo.Workload{Kind: repo.KindDeployment, Namespace: "shop", Name: "web"}, Replicas: 0, Marker: wantMarker, Recorded: 3}
	sts := repo.WorkloadState{Workload: repo.Workload{Kind: repo.KindStatefulSet, Namespace: "shop", Name: "db"}, Replicas: 2, Marker: wantMarker, Recorded: 1}
	lost := repo.WorkloadState{Workload: repo.Workload{Kind: repo.KindStatefulSet, Namespace: "shop", Name: "lost"}, Marker: wantMarker, Recorded: -1}

	gotRS := map[string]*string{}
	gotW := map[string]*int32{}
	conflicts := 1
	f := &fake{
		sources: func(m bool) ([]repo.ReplicationSource, error) {
			require.True(t, m, "undo lists the marked sources only")

			var out []repo.ReplicationSource
			for _, rs := range []repo.ReplicationSource{marked("db-backup", wantTrigger, ""), marked("web-backup", wantTrigger, "nightly-7"),
				marked("changed-backup", "by-hand", "")} {
				if _, done := gotRS[rs.Name]; !done {
					out = append(out, rs)
				}
			}

			return out, nil
		},
		clearRS: func(rs repo.ReplicationSource, manual *string) error {
			if rs.Name == "web-backup" && conflicts > 0 {
				conflicts--
				return fmt.Errorf("kube: %w", repo.ErrChanged)
			}

			gotRS[rs.Name] = manual

			return nil
		},
		marked: func() ([]repo.WorkloadState, error) {
			var out []repo.WorkloadState
			for _, w := range []repo.WorkloadState{deploy, sts, lost} {
				if _, done := gotW[w.Name]; !done {
					out = append(out, w)
				}
			}

			return out, nil
		},
		clearWork: func(st repo.WorkloadState, replicas *int32) error {
			gotW[st.Name] = replicas
			return nil
		},
	}

	changes, err := cutover.Undo(context.Background(), f, f)
	require.NoError(t, err)

	assert.Equal(t, map[string]*string{"db-backup": ptr(""), "web-backup": ptr("nightly-7"), "changed-backup": nil}, gotRS)
	assert.Equal(t, map[string]*int32{"web": ptr(int32(3)), "db": nil, "lost": nil}, gotW)

	var lines []string
	for _, c := range changes {
		require.NoError(t, c.Err)
		lines = append(lines, c.Object+": "+c.Action)
	}

	assert.Equal(t, []string{
		"Deployment shop/web: scaled back from 0 to 3",
		`ReplicationSource shop/changed-backup: marks removed; its manual trigger "by-hand" is not the cutover's ("` + wantTrigger + `") and is left`,
		`ReplicationSource shop/db-backup: manual trigger removed: its schedule "17 * * * *" runs it again`,
		`ReplicationSource shop/web-backup: manual trigger "nightly-7" restored`,
		"StatefulSet shop/db: marks removed; its replicas (2) were changed since the cutover scaled it to zero, and are left",
		"StatefulSet shop/lost: marks removed; no replica count was recorded (backup-oracle.io/cutover-replicas), its replicas (0) are left",
	}, lines)
}

func TestUndoWithoutScalingAndFailures(t *testing.T) {
	f := &fake{
		sources: func(bool) ([]repo.ReplicationSource, error) {
			rs := idle()
			rs.Manual, rs.TriggerSet = wantTrigger, wantTrigger

			return []repo.ReplicationSource{rs}, nil
		},
		clearRS: func(repo.ReplicationSource, *string) error { return errors.New("forbidden") },
	}

	changes, err := cutover.Undo(context.Background(), f, nil)
	require.NoError(t, err, "the workloads are not asked about without scaling")
	require.Len(t, changes, 1)
	require.EqualError(t, changes[0].Err, "forbidden")

	f.sources = func(bool) ([]repo.ReplicationSource, error) { return nil, errors.New("unreachable") }
	_, err = cutover.Undo(context.Background(), f, nil)
	require.EqualError(t, err, "unreachable")
}

func TestReport(t *testing.T) {
	rep := cutover.Report{Cutover: repo.Cutover{At: at, From: "blue"}, Trigger: wantTrigger, Time: at, Results: []cutover.Result{
		{PVC: repo.PVC{Namespace: "blog", Name: "db"}, State: cutover.Done, Sources: []string{"db-backup"}, Detail: "db-backup: final backup finished at x"},
		{PVC: repo.PVC{Namespace: "shop", Name: "db"}, State: cutover.Mounted, Sources: []string{"db-backup"}, Detail: "used by pod db-0 (Running)"},
		{PVC: repo.PVC{Namespace: "shop", Name: "tmp"}, State: cutover.Failed, Detail: "no ReplicationSource names it"},
	}}

	assert.False(t, rep.Done())
	assert.True(t, cutover.Report{}.Done(), "no PVC: nothing to wait for")
	assert.Equal(t, "cutover at 2026-12-06T18:00:00Z from blue, trigger "+wantTrigger+": 3 PVCs: 1 done, 0 waiting, 1 mounted, 1 failed", rep.Summary())

	var b bytes.Buffer
	require.NoError(t, rep.Table(&b))
	assert.Equal(t, `NAMESPACE  PVC  STATE    REPLICATIONSOURCES  DETAIL
blog       db   done     db-backup           db-backup: final backup finished at x
shop       db   mounted  db-backup           used by pod db-0 (Running)
shop       tmp  failed   -                   no ReplicationSource names it
`, b.String())

	msg := rep.TerminationMessage(4096)
	assert.Equal(t, rep.Summary()+"\nshop/db mounted: used by pod db-0 (Running)\nshop/tmp failed: no ReplicationSource names it", msg)

	short := rep.TerminationMessage(len(rep.Summary()) + 50)
	assert.True(t, strings.HasSuffix(short, "\n…"), short)
	assert.LessOrEqual(t, len(short), len(rep.Summary())+50)
}
