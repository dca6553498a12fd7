package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/pager"

	"github.com/backup-oracle/backup-oracle/repo"
)

// The calls of the cutover command (repo/cutover), each with the rule it needs. Every list is
// cluster-wide (the backup-labelled PVCs may be in any namespace) and paged; every change is a
// JSON merge patch carrying the resourceVersion read, so it fails (repo.ErrChanged) when the
// object changed meanwhile instead of overwriting what someone else just wrote.

// replicationSources is VolSync's ReplicationSource resource (api/v1alpha1 of upstream v0.16.0
// and of the Kopia fork alike).
var replicationSources = schema.GroupVersionResource{Group: "volsync.backube", Version: "v1alpha1", Resource: "replicationsources"} //nolint:gochecknoglobals // a constant resource name

// ListLabelledPVCsRule is the right ListLabelledPVCs needs.
func ListLabelledPVCsRule() Rule {
	return Rule{APIGroups: []string{""}, Resources: []string{"persistentvolumeclaims"}, Verbs: []string{"list"},
		Why: "the cutover finds the backup-labelled PVCs (a label selector; RBAC cannot restrict a list to labels), in every namespace"}
}

// ListLabelledPVCs lists the PVCs whose label key has one of values, in every namespace. Needs
// ListLabelledPVCsRule.
func (c *Client) ListLabelledPVCs(ctx context.Context, key string, values []string) ([]repo.PVC, error) {
	req, err := labels.NewRequirement(key, selection.In, values)
	if err != nil {
		return nil, fmt.Errorf("kube: label selector %s in %v: %w", key, values, err)
	}

	var out []repo.PVC

	err = c.each(ctx, labels.NewSelector().Add(*req).String(), func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return c.cs.CoreV1().PersistentVolumeClaims("").List(ctx, o)
	}, func(obj runtime.Object) error {
		pvc, ok := obj.(*corev1.PersistentVolumeClaim)
		if ok {
			out = append(out, repo.PVC{Namespace: pvc.Namespace, Name: pvc.Name})
		}

		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("kube: list PVCs labelled %s on %s: %w", req, c.host, err)
	}

	return out, nil
}

// ListMountsRule is the right ListMounts needs.
func ListMountsRule() Rule {
	return Rule{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list"},
		Why: "the cutover waits until no running pod uses a PVC before its final backup (the pods of every namespace)"}
}

// ListMounts lists, per PVC, the pods using it that have not finished (phase neither Succeeded
// nor Failed: a pending pod is about to use it). Needs ListMountsRule.
func (c *Client) ListMounts(ctx context.Context) (map[repo.PVC][]repo.Mount, error) {
	out := map[repo.PVC][]repo.Mount{}

	err := c.each(ctx, "", func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return c.cs.CoreV1().Pods("").List(ctx, o)
	}, func(obj runtime.Object) error {
		pod, ok := obj.(*corev1.Pod)
		if !ok || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			return nil
		}

		m := repo.Mount{Pod: pod.Name, Phase: string(pod.Status.Phase), Mover: pod.Labels[repo.VolSyncMoverLabel] == repo.VolSyncMoverValue}
		if m.Phase == "" {
			m.Phase = "no phase yet"
		}

		if ref := metav1.GetControllerOf(pod); ref != nil {
			m.OwnerKind, m.OwnerName = ref.Kind, ref.Name
		}

		for _, v := range pod.Spec.Volumes {
			if v.PersistentVolumeClaim != nil {
				p := repo.PVC{Namespace: pod.Namespace, Name: v.PersistentVolumeClaim.ClaimName}
				out[p] = append(out[p], m)
			}
		}

		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("kube: list pods on %s: %w", c.host, err)
	}

	return out, nil
}

// ListReplicationSourcesRule is the right ListReplicationSources needs.
func ListReplicationSourcesRule() Rule {
	return Rule{APIGroups: []string{"volsync.backube"}, Resources: []string{"replicationsources"}, Verbs: []string{"list"},
		Why: "the cutover finds the ReplicationSources backing each PVC up (spec.sourcePVC) and reads their status; undo finds those it marked"}
}

// ListReplicationSources lists every ReplicationSource, or those carrying repo.CutoverLabel when
// marked. Needs ListReplicationSourcesRule.
func (c *Client) ListReplicationSources(ctx context.Context, marked bool) ([]repo.ReplicationSource, error) {
	selector := ""
	if marked {
		selector = repo.CutoverLabel
	}

	var out []repo.ReplicationSource

	err := c.each(ctx, selector, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return c.dyn.Resource(replicationSources).List(ctx, o)
	}, func(obj runtime.Object) error {
		u, ok := obj.(*unstructured.Unstructured)
		if ok {
			out = append(out, replicationSource(u))
		}

		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("kube: list ReplicationSources on %s: %w", c.host, err)
	}

	return out, nil
}

// replicationSource reads the fields the cutover needs (VolSync v0.16.0, api/v1alpha1).
func replicationSource(u *unstructured.Unstructured) repo.ReplicationSource {
	s := func(path ...string) string { v, _, _ := unstructured.NestedString(u.Object, path...); return v }
	t := func(path ...string) time.Time {
		v, err := time.Parse(time.RFC3339, s(path...))
		if err != nil {
			return time.Time{}
		}

		return v
	}

	rs := repo.ReplicationSource{
		Namespace: u.GetNamespace(), Name: u.GetName(), SourcePVC: s("spec", "sourcePVC"), ResourceVersion: u.GetResourceVersion(),
		Schedule: s("spec", "trigger", "schedule"), Manual: s("spec", "trigger", "manual"),
		LastManualSync: s("status", "lastManualSync"), LastSync: t("status", "lastSyncTime"), SyncStarted: t("status", "lastSyncStartTime"),
		MoverResult: s("status", "latestMoverStatus", "result"), MoverLogs: s("status", "latestMoverStatus", "logs"),
		Marker: u.GetLabels()[repo.CutoverLabel], TriggerSet: u.GetAnnotations()[repo.CutoverTriggerAnnotation],
		ManualBefore: u.GetAnnotations()[repo.CutoverManualBeforeAnnotation],
	}

	conditions, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conditions {
		m, ok := c.(map[string]any)
		if !ok || m["type"] != "Synchronizing" {
			continue
		}

		str := func(k string) string { v, _ := m[k].(string); return v }
		rs.Condition = repo.Condition{Status: str("status"), Reason: str("reason"), Message: str("message")}
	}

	return rs
}

// PatchReplicationSourceRule is the right SetManualTrigger and ClearCutoverMarks need.
func PatchReplicationSourceRule() Rule {
	return Rule{APIGroups: []string{"volsync.backube"}, Resources: []string{"replicationsources"}, Verbs: []string{"patch"},
		Why: "the cutover sets the manual trigger of the final backup (and its marks); undo removes them"}
}

// SetManualTrigger sets spec.trigger.manual to trigger (the schedule stays: VolSync ignores it
// while a manual trigger is set, statemachine/machine.go getTrigger) with the marks: CutoverLabel,
// the trigger, and the manual trigger before it when there was one. Needs
// PatchReplicationSourceRule.
func (c *Client) SetManualTrigger(ctx context.Context, rs repo.ReplicationSource, trigger, marker string) error {
	annotations := map[string]any{repo.CutoverTriggerAnnotation: trigger, repo.CutoverManualBeforeAnnotation: nil}
	if rs.Manual != "" && rs.Manual != trigger {
		annotations[repo.CutoverManualBeforeAnnotation] = rs.Manual
	}

	return c.patchRS(ctx, rs, map[string]any{
		"metadata": map[string]any{"resourceVersion": rs.ResourceVersion, "labels": map[string]any{repo.CutoverLabel: marker}, "annotations": annotations},
		"spec":     map[string]any{"trigger": map[string]any{"manual": trigger}},
	}, "set the manual trigger of")
}

// ClearCutoverMarks removes the marks and, when manual is not nil, sets spec.trigger.manual to it
// ("" removes it). Needs PatchReplicationSourceRule.
func (c *Client) ClearCutoverMarks(ctx context.Context, rs repo.ReplicationSource, manual *string) error {
	patch := map[string]any{"metadata": map[string]any{
		"resourceVersion": rs.ResourceVersion, "labels": map[string]any{repo.CutoverLabel: nil},
		"annotations": map[string]any{repo.CutoverTriggerAnnotation: nil, repo.CutoverManualBeforeAnnotation: nil},
	}}

	if manual != nil {
		var v any
		if *manual != "" {
			v = *manual
		}

		patch["spec"] = map[string]any{"trigger": map[string]any{"manual": v}}
	}

	return c.patchRS(ctx, rs, patch, "restore the trigger of")
}

func (c *Client) patchRS(ctx context.Context, rs repo.ReplicationSource, patch map[string]any, what string) error {
	body, err := json.Marshal(patch)
	if err != nil {
		return fmt.Errorf("kube: %s ReplicationSource %s: %w", what, rs, err)
	}

	_, err = c.dyn.Resource(replicationSources).Namespace(rs.Namespace).Patch(ctx, rs.Name, types.MergePatchType, body, metav1.PatchOptions{})

	return changed(err, "%s ReplicationSource %s on %s", what, rs, c.host)
}

// ReplicaSetOwnerRule is the right ReplicaSetOwner needs.
func ReplicaSetOwnerRule() Rule {
	return Rule{APIGroups: []string{"apps"}, Resources: []string{"replicasets"}, Verbs: []string{"get"},
		Why: "the cutover finds the Deployment of a pod using a PVC (through its ReplicaSet) to scale it to zero (cutover.scaleWorkloads)"}
}

// ReplicaSetOwner returns the Deployment controlling ReplicaSet namespace/name; false when none
// does. Needs ReplicaSetOwnerRule.
func (c *Client) ReplicaSetOwner(ctx context.Context, namespace, name string) (repo.Workload, bool, error) {
	rs, err := c.cs.AppsV1().ReplicaSets(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return repo.Workload{}, false, fmt.Errorf("kube: read ReplicaSet %s/%s on %s: %w", namespace, name, c.host, err)
	}

	if ref := metav1.GetControllerOf(rs); ref != nil && ref.Kind == repo.KindDeployment {
		return repo.Workload{Kind: repo.KindDeployment, Namespace: namespace, Name: ref.Name}, true, nil
	}

	return repo.Workload{}, false, nil
}

// GetWorkloadRule is the right GetWorkload needs.
func GetWorkloadRule() Rule {
	return Rule{APIGroups: []string{"apps"}, Resources: []string{"deployments", "statefulsets"}, Verbs: []string{"get"},
		Why: "the cutover reads the replicas of a workload using a PVC before scaling it to zero (cutover.scaleWorkloads)"}
}

// GetWorkload reads a Deployment's or StatefulSet's replicas and marks. Needs GetWorkloadRule.
func (c *Client) GetWorkload(ctx context.Context, w repo.Workload) (repo.WorkloadState, error) {
	var (
		obj      metav1.Object
		replicas *int32
		err      error
	)

	switch w.Kind {
	case repo.KindDeployment:
		var d *appsv1.Deployment
		if d, err = c.cs.AppsV1().Deployments(w.Namespace).Get(ctx, w.Name, metav1.GetOptions{}); err == nil {
			obj, replicas = d, d.Spec.Replicas
		}
	case repo.KindStatefulSet:
		var s *appsv1.StatefulSet
		if s, err = c.cs.AppsV1().StatefulSets(w.Namespace).Get(ctx, w.Name, metav1.GetOptions{}); err == nil {
			obj, replicas = s, s.Spec.Replicas
		}
	default:
		err = fmt.Errorf("not a Deployment or StatefulSet")
	}

	if err != nil {
		return repo.WorkloadState{}, fmt.Errorf("kube: read %s on %s: %w", w, c.host, err)
	}

	return workloadState(w, obj, replicas), nil
}

func workloadState(w repo.Workload, obj metav1.Object, replicas *int32) repo.WorkloadState {
	st := repo.WorkloadState{Workload: w, Replicas: 1, ResourceVersion: obj.GetResourceVersion(), Marker: obj.GetLabels()[repo.CutoverLabel], Recorded: -1}
	if replicas != nil {
		st.Replicas = *replicas // nil: the API server's default, 1
	}

	if v, err := strconv.ParseInt(obj.GetAnnotations()[repo.CutoverReplicasAnnotation], 10, 32); err == nil && v >= 0 {
		st.Recorded = int32(v)
	}

	return st
}

// PatchWorkloadRule is the right ScaleToZero and ClearWorkloadMarks need.
func PatchWorkloadRule() Rule {
	return Rule{APIGroups: []string{"apps"}, Resources: []string{"deployments", "statefulsets"}, Verbs: []string{"patch"},
		Why: "the cutover scales a workload using a PVC to zero and records its replicas; undo scales it back (cutover.scaleWorkloads)"}
}

// ScaleToZero sets the replicas to 0 with the marks: CutoverLabel and the replicas to restore.
// Needs PatchWorkloadRule.
func (c *Client) ScaleToZero(ctx context.Context, st repo.WorkloadState, marker string, record int32) error {
	return c.patchWorkload(ctx, st, map[string]any{
		"metadata": map[string]any{"resourceVersion": st.ResourceVersion, "labels": map[string]any{repo.CutoverLabel: marker},
			"annotations": map[string]any{repo.CutoverReplicasAnnotation: strconv.Itoa(int(record))}},
		"spec": map[string]any{"replicas": 0},
	}, "scale to zero")
}

// ClearWorkloadMarks removes the marks and, when replicas is not nil, sets the replicas. Needs
// PatchWorkloadRule.
func (c *Client) ClearWorkloadMarks(ctx context.Context, st repo.WorkloadState, replicas *int32) error {
	patch := map[string]any{"metadata": map[string]any{"resourceVersion": st.ResourceVersion,
		"labels": map[string]any{repo.CutoverLabel: nil}, "annotations": map[string]any{repo.CutoverReplicasAnnotation: nil}}}
	if replicas != nil {
		patch["spec"] = map[string]any{"replicas": *replicas}
	}

	return c.patchWorkload(ctx, st, patch, "restore")
}

func (c *Client) patchWorkload(ctx context.Context, st repo.WorkloadState, patch map[string]any, what string) error {
	body, err := json.Marshal(patch)
	if err != nil {
		return fmt.Errorf("kube: %s %s: %w", what, st.Workload, err)
	}

	switch st.Kind {
	case repo.KindDeployment:
		_, err = c.cs.AppsV1().Deployments(st.Namespace).Patch(ctx, st.Name, types.MergePatchType, body, metav1.PatchOptions{})
	case repo.KindStatefulSet:
		_, err = c.cs.AppsV1().StatefulSets(st.Namespace).Patch(ctx, st.Name, types.MergePatchType, body, metav1.PatchOptions{})
	default:
		err = fmt.Errorf("not a Deployment or StatefulSet")
	}

	return changed(err, "%s %s on %s", what, st.Workload, c.host)
}

// ListMarkedWorkloadsRule is the right ListMarkedWorkloads needs.
func ListMarkedWorkloadsRule() Rule {
	return Rule{APIGroups: []string{"apps"}, Resources: []string{"deployments", "statefulsets"}, Verbs: []string{"list"},
		Why: "undoing the cutover finds the workloads it scaled to zero (cutover.scaleWorkloads)"}
}

// ListMarkedWorkloads lists the Deployments and StatefulSets carrying CutoverLabel. Needs
// ListMarkedWorkloadsRule.
func (c *Client) ListMarkedWorkloads(ctx context.Context) ([]repo.WorkloadState, error) {
	var out []repo.WorkloadState

	err := c.each(ctx, repo.CutoverLabel, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return c.cs.AppsV1().Deployments("").List(ctx, o)
	}, func(obj runtime.Object) error {
		if d, ok := obj.(*appsv1.Deployment); ok {
			out = append(out, workloadState(repo.Workload{Kind: repo.KindDeployment, Namespace: d.Namespace, Name: d.Name}, d, d.Spec.Replicas))
		}

		return nil
	})
	if err == nil {
		err = c.each(ctx, repo.CutoverLabel, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return c.cs.AppsV1().StatefulSets("").List(ctx, o)
		}, func(obj runtime.Object) error {
			if s, ok := obj.(*appsv1.StatefulSet); ok {
				out = append(out, workloadState(repo.Workload{Kind: repo.KindStatefulSet, Namespace: s.Namespace, Name: s.Name}, s, s.Spec.Replicas))
			}

			return nil
		})
	}

	if err != nil {
		return nil, fmt.Errorf("kube: list workloads labelled %s on %s: %w", repo.CutoverLabel, c.host, err)
	}

	return out, nil
}

// each lists page by page (500 items a page) with the label selector and calls fn for each item.
func (c *Client) each(ctx context.Context, selector string, list pager.ListPageFunc, fn func(runtime.Object) error) error {
	p := pager.New(list)
	p.PageSize = 500

	return p.EachListItem(ctx, metav1.ListOptions{LabelSelector: selector}, fn)
}

// changed wraps a change's error: a conflict (the resourceVersion moved on) or a vanished object
// wraps repo.ErrChanged.
func changed(err error, format string, a ...any) error {
	switch {
	case err == nil:
		return nil
	case apierrors.IsConflict(err), apierrors.IsNotFound(err):
		return fmt.Errorf("kube: "+format+": %w (%w)", append(a, repo.ErrChanged, err)...)
	default:
		return fmt.Errorf("kube: "+format+": %w", append(a, err)...)
	}
}
