package kube

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/backup-oracle/backup-oracle/repo"
)

// TestReplicationSource: a ReplicationSource as VolSync v0.16.0 writes it (api/v1alpha1 field
// names; the condition as statemachine/conditions.go sets it while a synchronization runs),
// carrying the cutover's marks.
func TestReplicationSource(t *testing.T) {
	var u unstructured.Unstructured
	require.NoError(t, json.Unmarshal([]byte(`{
	  "apiVersion": "volsync.backube/v1alpha1", "kind": "ReplicationSource",
	  "metadata": {"name": "db-backup", "namespace": "shop", "resourceVersion": "4711",
	    "labels": {"backup-oracle.io/cutover": "20261206T180000Z"},
	    "annotations": {"backup-oracle.io/cutover-trigger": "cutover-2026-12-06T18:00:00Z", "backup-oracle.io/cutover-manual-before": "weekly"}},
	  "spec": {"sourcePVC": "db", "trigger": {"schedule": "17 * * * *", "manual": "cutover-2026-12-06T18:00:00Z"}, "kopia": {"repository": "volsync-db"}},
	  "status": {"lastSyncTime": "2026-12-06T17:17:41Z", "lastSyncStartTime": "2026-12-06T18:00:05Z", "lastManualSync": "weekly",
	    "latestMoverStatus": {"result": "Successful", "logs": "snapshot created"},
	    "conditions": [{"type": "Other", "status": "True", "reason": "X", "message": "y"},
	      {"type": "Synchronizing", "status": "True", "reason": "SyncInProgress", "message": "Synchronization in-progress", "lastTransitionTime": "2026-12-06T18:00:05Z"}]}
	}`), &u.Object))

	assert.Equal(t, repo.ReplicationSource{
		Namespace: "shop", Name: "db-backup", SourcePVC: "db", ResourceVersion: "4711",
		Schedule: "17 * * * *", Manual: "cutover-2026-12-06T18:00:00Z", LastManualSync: "weekly",
		LastSync: time.Date(2026, 12, 6, 17, 17, 41, 0, time.UTC), SyncStarted: time.Date(2026, 12, 6, 18, 0, 5, 0, time.UTC),
		Condition:   repo.Condition{Status: "True", Reason: "SyncInProgress", Message: "Synchronization in-progress"},
		MoverResult: "Successful", MoverLogs: "snapshot created",
		Marker: "20261206T180000Z", TriggerSet: "cutover-2026-12-06T18:00:00Z", ManualBefore: "weekly",
	}, replicationSource(&u))

	var bare unstructured.Unstructured
	require.NoError(t, json.Unmarshal([]byte(`{"metadata": {"name": "x", "namespace": "n"}, "spec": {"sourcePVC": "p"}}`), &bare.Object))
	assert.Equal(t, repo.ReplicationSource{Namespace: "n", Name: "x", SourcePVC: "p"}, replicationSource(&bare), "idle, never synchronized, unmarked")
}

func TestWorkloadState(t *testing.T) {
	w := repo.Workload{Kind: repo.KindDeployment, Namespace: "shop", Name: "web"}
	three := int32(3)

	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "9"}}
	assert.Equal(t, repo.WorkloadState{Workload: w, Replicas: 1, ResourceVersion: "9", Recorded: -1}, workloadState(w, d, nil),
		"replicas unset: the API server's default, 1")

	d.Labels = map[string]string{repo.CutoverLabel: "m"}
	d.Annotations = map[string]string{repo.CutoverReplicasAnnotation: "4"}
	assert.Equal(t, repo.WorkloadState{Workload: w, Replicas: 3, ResourceVersion: "9", Marker: "m", Recorded: 4}, workloadState(w, d, &three))

	d.Annotations[repo.CutoverReplicasAnnotation] = "many"
	assert.Equal(t, int32(-1), workloadState(w, d, &three).Recorded, "an unreadable record is no record")
}

func TestChanged(t *testing.T) {
	require.NoError(t, changed(nil, "x"))
	require.ErrorIs(t, changed(status(http.StatusConflict, metav1.StatusReasonConflict, "the object has been modified"), "patch %s", "a"), repo.ErrChanged)
	require.ErrorIs(t, changed(status(http.StatusNotFound, metav1.StatusReasonNotFound, "not found"), "patch"), repo.ErrChanged)

	err := changed(status(http.StatusForbidden, metav1.StatusReasonForbidden, "cannot patch"), "patch %s", "shop/db")
	require.NotErrorIs(t, err, repo.ErrChanged)
	assert.Equal(t, "kube: patch shop/db: cannot patch", err.Error())
}
