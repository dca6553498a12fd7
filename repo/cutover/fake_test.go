package cutover_test

import (
	"context"

	"github.com/backup-oracle/backup-oracle/repo"
)

// fake is every interface the cutover needs, made of function fields; a nil field fails the
// call it stands for with errUnexpected, so a test states each call it allows.
type fake struct {
	claims    func(key string, values []string) ([]repo.PVC, error)
	mounts    func() (map[repo.PVC][]repo.Mount, error)
	sources   func(marked bool) ([]repo.ReplicationSource, error)
	setTrig   func(rs repo.ReplicationSource, trigger, marker string) error
	clearRS   func(rs repo.ReplicationSource, manual *string) error
	rsOwner   func(namespace, name string) (repo.Workload, bool, error)
	workload  func(w repo.Workload) (repo.WorkloadState, error)
	scale     func(st repo.WorkloadState, marker string, record int32) error
	marked    func() ([]repo.WorkloadState, error)
	clearWork func(st repo.WorkloadState, replicas *int32) error
}

type unexpected string

func (u unexpected) Error() string { return "unexpected call: " + string(u) }

func (f *fake) ListLabelledPVCs(_ context.Context, key string, values []string) ([]repo.PVC, error) {
	if f.claims == nil {
		return nil, unexpected("ListLabelledPVCs")
	}

	return f.claims(key, values)
}

func (f *fake) ListMounts(context.Context) (map[repo.PVC][]repo.Mount, error) {
	if f.mounts == nil {
		return nil, nil
	}

	return f.mounts()
}

func (f *fake) ListReplicationSources(_ context.Context, marked bool) ([]repo.ReplicationSource, error) {
	if f.sources == nil {
		return nil, unexpected("ListReplicationSources")
	}

	return f.sources(marked)
}

func (f *fake) SetManualTrigger(_ context.Context, rs repo.ReplicationSource, trigger, marker string) error {
	if f.setTrig == nil {
		return unexpected("SetManualTrigger " + rs.String())
	}

	return f.setTrig(rs, trigger, marker)
}

func (f *fake) ClearCutoverMarks(_ context.Context, rs repo.ReplicationSource, manual *string) error {
	if f.clearRS == nil {
		return unexpected("ClearCutoverMarks " + rs.String())
	}

	return f.clearRS(rs, manual)
}

func (f *fake) ReplicaSetOwner(_ context.Context, namespace, name string) (repo.Workload, bool, error) {
	if f.rsOwner == nil {
		return repo.Workload{}, false, unexpected("ReplicaSetOwner")
	}

	return f.rsOwner(namespace, name)
}

func (f *fake) GetWorkload(_ context.Context, w repo.Workload) (repo.WorkloadState, error) {
	if f.workload == nil {
		return repo.WorkloadState{}, unexpected("GetWorkload " + w.String())
	}

	return f.workload(w)
}

func (f *fake) ScaleToZero(_ context.Context, st repo.WorkloadState, marker string, record int32) error {
	if f.scale == nil {
		return unexpected("ScaleToZero " + st.String())
	}

	return f.scale(st, marker, record)
}

func (f *fake) ListMarkedWorkloads(context.Context) ([]repo.WorkloadState, error) {
	if f.marked == nil {
		return nil, unexpected("ListMarkedWorkloads")
	}

	return f.marked()
}

func (f *fake) ClearWorkloadMarks(_ context.Context, st repo.WorkloadState, replicas *int32) error {
	if f.clearWork == nil {
		return unexpected("ClearWorkloadMarks " + st.String())
	}

	return f.clearWork(st, replicas)
}
