package repo

import (
	"errors"
	"strings"
	"time"
)

// ErrChanged: an object changed between the read and a conditional write (its resourceVersion
// moved on); read it again and decide again.
var ErrChanged = errors.New("changed since it was read")

// The colour being left of a blue/green cutover takes a final backup of every backup-labelled
// PVC (README, "Blue/green migration"): repo/cutover does it through the Kubernetes API, whose
// objects it sees as the records below. What it changes on an object carries the marks below, so
// that undoing the cutover finds and restores exactly that.

// Marks the cutover leaves on what it changes.
const (
	// CutoverLabel marks a ReplicationSource whose manual trigger the cutover set, or a workload
	// it scaled to zero; the value is the cutover's Marker. A label, so undo can select them.
	CutoverLabel = "backup-oracle.io/cutover"
	// CutoverTriggerAnnotation is the manual trigger the cutover set on a ReplicationSource.
	CutoverTriggerAnnotation = "backup-oracle.io/cutover-trigger"
	// CutoverManualBeforeAnnotation is the ReplicationSource's manual trigger before the cutover
	// set its own (absent when it had none: the schedule ran it).
	CutoverManualBeforeAnnotation = "backup-oracle.io/cutover-manual-before"
	// CutoverReplicasAnnotation is a workload's replica count before the cutover scaled it to zero.
	CutoverReplicasAnnotation = "backup-oracle.io/cutover-replicas"
	// VolSyncMoverLabel and VolSyncMoverValue mark the pods of VolSync's mover Jobs (backube/volsync
	// v0.16.0, internal/controller/utils/labels.go, OwnedByLabelKey and OwnedByLabelValue, set on
	// each Job's pod template): they read a volume to back it up, they are not its writers.
	VolSyncMoverLabel = "app.kubernetes.io/created-by"
	VolSyncMoverValue = "volsync"
)

// Trigger is the manual trigger the colour being left sets on each ReplicationSource for its
// final backup: "cutover-" and the instant in UTC, RFC 3339. It depends on the instant only, so a
// re-run (a restarted Job) sets the same value and finds the backup already done.
func (c Cutover) Trigger() string { return "cutover-" + c.At.UTC().Format(time.RFC3339) }

// Marker is the value of CutoverLabel for this cutover: the instant in UTC as 20261206T180000Z (a
// valid label value).
func (c Cutover) Marker() string { return c.At.UTC().Format("20060102T150405Z") }

// Workload is a Deployment or StatefulSet, the owners whose replicas the cutover may scale.
type Workload struct {
	Kind, Namespace, Name string
}

// String returns "Kind namespace/name".
func (w Workload) String() string { return w.Kind + " " + w.Namespace + "/" + w.Name }

// Workload kinds the cutover scales.
const (
	KindDeployment  = "Deployment"
	KindStatefulSet = "StatefulSet"
	KindReplicaSet  = "ReplicaSet"
)

// Mount is a pod that uses a PVC and is not finished (phase neither Succeeded nor Failed).
type Mount struct {
	Pod   string // in the PVC's namespace
	Phase string
	// Mover: a VolSync mover's pod (VolSyncMoverLabel), reading the volume, not writing it.
	Mover bool
	// OwnerKind and OwnerName are the pod's controller (empty for a bare pod).
	OwnerKind, OwnerName string
}

// WorkloadState is what the cutover reads of a workload: its replicas and its marks.
type WorkloadState struct {
	Workload
	Replicas        int32
	ResourceVersion string
	// Marker is CutoverLabel's value, "" when unmarked; Recorded is CutoverReplicasAnnotation's
	// value (-1 when absent or unreadable).
	Marker   string
	Recorded int32
}

// ReplicationSource is what the cutover reads of a VolSync ReplicationSource (upstream v0.16.0,
// api/v1alpha1: spec.sourcePVC, spec.trigger.schedule and .manual; status.lastManualSync,
// lastSyncTime, lastSyncStartTime, latestMoverStatus and the Synchronizing condition).
type ReplicationSource struct {
	Namespace, Name, SourcePVC string
	ResourceVersion            string
	Schedule, Manual           string
	LastManualSync             string
	// LastSync is status.lastSyncTime; SyncStarted is status.lastSyncStartTime, set by VolSync
	// while a synchronization runs and cleared when it ends (zero: idle).
	LastSync, SyncStarted time.Time
	// Condition is the Synchronizing condition (zero when absent).
	Condition Condition
	// MoverResult and MoverLogs are status.latestMoverStatus: the last mover Job's result
	// (Successful, Failed) and the end of its log.
	MoverResult, MoverLogs string
	// Marker, TriggerSet and ManualBefore are the cutover's marks (CutoverLabel,
	// CutoverTriggerAnnotation, CutoverManualBeforeAnnotation); empty when absent.
	Marker, TriggerSet, ManualBefore string
}

// String returns "namespace/name".
func (r ReplicationSource) String() string { return r.Namespace + "/" + r.Name }

// Condition is a Kubernetes status condition.
type Condition struct {
	Status, Reason, Message string
}

// VolSync's Synchronizing condition reasons (api/v1alpha1/common_types.go).
const (
	SyncReasonInProgress = "SyncInProgress"
	SyncReasonSchedule   = "WaitingForSchedule"
	SyncReasonManual     = "WaitingForManual"
	SyncReasonCleanup    = "CleaningUp"
	SyncReasonError      = "Error"
	MoverResultFailed    = "Failed"
)

// String is "reason: message" (or "" when absent), one line.
func (c Condition) String() string {
	if c.Reason == "" && c.Message == "" {
		return ""
	}

	return strings.Join(strings.Fields(c.Reason+": "+c.Message), " ")
}
