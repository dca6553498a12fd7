package cutover

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/backup-oracle/backup-oracle/repo"
)

// mounted describes the writers of p and, with Options.Scale, scales their Deployments and
// StatefulSets to zero, recording the replicas they had.
func (r *Runner) mounted(ctx context.Context, p repo.PVC, writers []repo.Mount, rep *Report) string {
	pods := make([]string, 0, len(writers))
	for _, m := range writers {
		pods = append(pods, fmt.Sprintf("%s (%s)", m.Pod, m.Phase))
	}

	detail := "used by pod " + strings.Join(pods, ", ")
	if !r.opts.Scale {
		return detail + ": waiting until the app is scaled to zero"
	}

	var (
		notes []string
		seen  []repo.Workload
	)

	for _, m := range writers {
		w, ok, err := r.workloadOf(ctx, p.Namespace, m)

		switch {
		case err != nil:
			notes = append(notes, fmt.Sprintf("%sfind the workload of pod %s: %v", failedPrefix, m.Pod, err))
		case !ok:
			notes = append(notes, fmt.Sprintf("pod %s is not run by a Deployment or StatefulSet (%s): stop it yourself", m.Pod, ownerOf(m)))
		case !slices.Contains(seen, w):
			seen = append(seen, w)
			notes = append(notes, r.scale(ctx, w, rep))
		}
	}

	return detail + ": " + strings.Join(notes, "; ")
}

// workloadOf is the Deployment or StatefulSet running the pod, if any.
func (r *Runner) workloadOf(ctx context.Context, namespace string, m repo.Mount) (repo.Workload, bool, error) {
	switch m.OwnerKind {
	case repo.KindStatefulSet:
		return repo.Workload{Kind: repo.KindStatefulSet, Namespace: namespace, Name: m.OwnerName}, true, nil
	case repo.KindReplicaSet:
		return r.opts.Workloads.ReplicaSetOwner(ctx, namespace, m.OwnerName)
	default:
		return repo.Workload{}, false, nil
	}
}

// scale scales w to zero unless it is there already; the replicas recorded are those it had
// before the first scale-down of any cutover (a workload marked already keeps its record).
func (r *Runner) scale(ctx context.Context, w repo.Workload, rep *Report) string {
	st, err := r.opts.Workloads.GetWorkload(ctx, w)
	if err != nil {
		return fmt.Sprintf("%sread %s: %v", failedPrefix, w, err)
	}

	if st.Replicas == 0 {
		return fmt.Sprintf("%s is at 0 replicas: waiting for its pods to stop", w)
	}

	record := st.Replicas
	if st.Marker != "" && st.Recorded >= 0 {
		record = st.Recorded
	}

	err = r.opts.Workloads.ScaleToZero(ctx, st, r.opts.Cutover.Marker(), record)

	switch {
	case err == nil:
		r.opts.Logger.Info("cutover: scaled to zero", "workload", w.String(), "replicas", st.Replicas, "recorded", record)
		rep.Scaled = append(rep.Scaled, fmt.Sprintf("%s from %d to 0", w, st.Replicas))

		return fmt.Sprintf("scaled %s from %d to 0 (undoing the cutover restores %d)", w, st.Replicas, record)
	case errors.Is(err, repo.ErrChanged):
		return fmt.Sprintf("%s changed while being scaled; again at the next pass", w)
	default:
		return fmt.Sprintf("%sscale %s to 0: %v", failedPrefix, w, err)
	}
}

func ownerOf(m repo.Mount) string {
	if m.OwnerKind == "" {
		return "a bare pod"
	}

	return "owned by " + m.OwnerKind + " " + m.OwnerName
}
