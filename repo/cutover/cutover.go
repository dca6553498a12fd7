// Package cutover is the colour being left's side of a blue/green cutover (README, "Blue/green
// migration"): at the declared instant it takes the final backup of every backup-labelled PVC
// and reports, per PVC, whether it is done. For each PVC it waits until no pod other than a
// VolSync mover uses it (the app scaled to zero in Git; or, when asked, it scales the
// Deployments and StatefulSets itself and marks what it changed), then sets the manual trigger of
// every ReplicationSource backing the PVC up (spec.sourcePVC) to a value derived from the
// instant, and waits until VolSync reports it done (status.lastManualSync). Undo restores what it
// changed: the triggers it set and the replicas it scaled down.
//
// It declares what it needs (Claims, Pods, ReplicationSources, Workloads: repo/kube's Client,
// wired by cmd) and is tested with function-field fakes. It lives under repo/ beside the gate
// self-test: domain logic over a technology it does not know.
package cutover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/backup-oracle/backup-oracle/repo"
)

// Defaults for Options fields left zero.
const (
	DefaultInterval = 10 * time.Second
	DefaultTimeout  = 2 * time.Hour
)

// Claims lists the PVCs carrying the policies' backup label with one of its values.
type Claims interface {
	ListLabelledPVCs(ctx context.Context, key string, values []string) ([]repo.PVC, error)
}

// Pods lists, for every PVC in use, the unfinished pods using it.
type Pods interface {
	ListMounts(ctx context.Context) (map[repo.PVC][]repo.Mount, error)
}

// ReplicationSources reads and changes VolSync ReplicationSources. The changes are conditional:
// when the object changed since it was read, they fail with an error wrapping repo.ErrChanged.
type ReplicationSources interface {
	// ListReplicationSources lists every ReplicationSource, or only those carrying
	// repo.CutoverLabel when marked.
	ListReplicationSources(ctx context.Context, marked bool) ([]repo.ReplicationSource, error)
	// SetManualTrigger sets spec.trigger.manual to trigger and the cutover's marks (CutoverLabel
	// marker, the trigger, the manual trigger before it when there was one).
	SetManualTrigger(ctx context.Context, rs repo.ReplicationSource, trigger, marker string) error
	// ClearCutoverMarks removes the cutover's marks and, when manual is not nil, sets
	// spec.trigger.manual to it ("" removes it: the schedule runs the source again).
	ClearCutoverMarks(ctx context.Context, rs repo.ReplicationSource, manual *string) error
}

// Workloads reads and scales Deployments and StatefulSets. The changes are conditional, as for
// ReplicationSources.
type Workloads interface {
	// ReplicaSetOwner returns the Deployment controlling a ReplicaSet; false when none does.
	ReplicaSetOwner(ctx context.Context, namespace, name string) (repo.Workload, bool, error)
	GetWorkload(ctx context.Context, w repo.Workload) (repo.WorkloadState, error)
	// ScaleToZero sets the replicas to 0, CutoverLabel to marker and CutoverReplicasAnnotation to
	// record.
	ScaleToZero(ctx context.Context, st repo.WorkloadState, marker string, record int32) error
	// ListMarkedWorkloads lists the Deployments and StatefulSets carrying CutoverLabel.
	ListMarkedWorkloads(ctx context.Context) ([]repo.WorkloadState, error)
	// ClearWorkloadMarks removes the marks and, when replicas is not nil, sets the replicas.
	ClearWorkloadMarks(ctx context.Context, st repo.WorkloadState, replicas *int32) error
}

// Options configure a Runner.
type Options struct {
	// Cutover is the declared cutover; its instant is required.
	Cutover repo.Cutover
	// LabelKey and LabelValues select the backup-labelled PVCs (the policies' label); PVCs in
	// Excluded namespaces (the policies'), are left alone.
	LabelKey    string
	LabelValues []string
	Excluded    []string
	// Scale: scale the Deployments and StatefulSets whose pods use a PVC to zero (marking them),
	// instead of waiting for the GitOps engine to do it. Needs Workloads.
	Scale bool

	Claims    Claims
	Pods      Pods
	Sources   ReplicationSources
	Workloads Workloads

	// Interval is the pause between two passes; Timeout bounds Run from the instant (or from
	// its start when later).
	Interval, Timeout time.Duration
	// Registerer receives the metrics (a private registry); nil: none.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// OnPass is called with each pass's report (the command logs what changed).
	OnPass func(Report)
	// Now and After are the clock and the timer (tests replace them).
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
}

// Runner takes the final backup of a cutover. Its methods are not safe for concurrent use.
type Runner struct {
	opts    Options
	metrics *metrics
}

// New returns a runner, or an error wrapping repo.ErrInvalidConfig naming what is missing.
func New(opts Options) (*Runner, error) {
	var errs []error

	if opts.Cutover.At.IsZero() {
		errs = append(errs, repo.Problemf("cutover: the instant (CUTOVER_AT) is required"))
	}

	if opts.LabelKey == "" || len(opts.LabelValues) == 0 {
		errs = append(errs, repo.Problemf("cutover: the policies' backup label (POLICIES_LABEL_KEY, POLICIES_LABEL_VALUES) is required"))
	}

	if opts.Claims == nil || opts.Pods == nil || opts.Sources == nil || (opts.Scale && opts.Workloads == nil) {
		errs = append(errs, repo.Problemf("cutover: a Kubernetes API client is required"))
	}

	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}

	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}

	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}

	if opts.Now == nil {
		opts.Now = time.Now
	}

	if opts.After == nil {
		opts.After = time.After
	}

	return &Runner{opts: opts, metrics: newMetrics(opts.Registerer)}, nil
}

// Run makes passes until every PVC is done or the timeout passes, and returns the last report:
// Done tells which. A pass that cannot list what it needs (the API server unreachable) is logged
// and made again at the next interval; when none could be made by the timeout the last error is
// returned. A cancelled ctx returns its error with the last report.
func (r *Runner) Run(ctx context.Context) (Report, error) {
	start := r.opts.Now()
	if r.opts.Cutover.At.After(start) {
		start = r.opts.Cutover.At
	}

	deadline := start.Add(r.opts.Timeout)

	var (
		last    Report
		lastErr error
		made    bool
	)

	for {
		rep, err := r.Pass(ctx)
		if err != nil {
			lastErr = err
			r.opts.Logger.Warn("cutover: pass failed; trying again", "err", err)
		} else {
			last, made = rep, true
			if rep.Done() {
				return rep, nil
			}
		}

		if !r.opts.Now().Before(deadline) {
			if !made {
				return last, fmt.Errorf("cutover: no pass could be made in %s: %w", r.opts.Timeout, lastErr)
			}

			return last, nil
		}

		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-r.opts.After(r.opts.Interval):
		}
	}
}

// Pass looks at every backup-labelled PVC once, acts where it may (scale, set a trigger), and
// reports each PVC's state. Before the instant it only reports. An error means the PVCs, pods or
// ReplicationSources could not be listed.
func (r *Runner) Pass(ctx context.Context) (Report, error) {
	o := r.opts
	now := o.Now()
	rep := Report{Cutover: o.Cutover, Trigger: o.Cutover.Trigger(), Time: now}

	claims, err := o.Claims.ListLabelledPVCs(ctx, o.LabelKey, o.LabelValues)
	if err != nil {
		return rep, err
	}

	claims = slices.DeleteFunc(claims, func(p repo.PVC) bool { return slices.Contains(o.Excluded, p.Namespace) })
	slices.SortFunc(claims, func(a, b repo.PVC) int { return strings.Compare(a.String(), b.String()) })

	sources, err := o.Sources.ListReplicationSources(ctx, false)
	if err != nil {
		return rep, err
	}

	byPVC := map[repo.PVC][]repo.ReplicationSource{}
	for _, rs := range sources {
		p := repo.PVC{Namespace: rs.Namespace, Name: rs.SourcePVC}
		byPVC[p] = append(byPVC[p], rs)
	}

	mounts, err := o.Pods.ListMounts(ctx)
	if err != nil {
		return rep, err
	}

	for _, p := range claims {
		var res Result
		if now.Before(o.Cutover.At) {
			res = Result{PVC: p, State: Waiting, Sources: names(byPVC[p]),
				Detail: fmt.Sprintf("the cutover is at %s, in %s", o.Cutover.At.UTC().Format(time.RFC3339), o.Cutover.At.Sub(now).Round(time.Second))}
		} else {
			res = r.claim(ctx, p, byPVC[p], mounts[p], &rep)
		}

		rep.Results = append(rep.Results, res)
	}

	r.metrics.set(rep)

	if o.OnPass != nil {
		o.OnPass(rep)
	}

	return rep, nil
}

// claim decides and acts for one PVC, backed up by sources and used by mounts.
func (r *Runner) claim(ctx context.Context, p repo.PVC, sources []repo.ReplicationSource, mounts []repo.Mount, rep *Report) Result {
	res := Result{PVC: p, Sources: names(sources)}
	if len(sources) == 0 {
		res.State, res.Detail = Failed, "no ReplicationSource names it in spec.sourcePVC: nothing can take its final backup"
		return res
	}

	trigger := r.opts.Cutover.Trigger()

	var pending, untriggered []repo.ReplicationSource

	for _, rs := range sources {
		if rs.LastManualSync == trigger {
			continue
		}

		pending = append(pending, rs)
		if rs.Manual != trigger {
			untriggered = append(untriggered, rs)
		}
	}

	if len(pending) == 0 {
		res.State, res.Detail = Done, doneDetail(sources)
		return res
	}

	var notes []string

	if len(untriggered) > 0 {
		if writers := writersOf(mounts); len(writers) > 0 {
			res.State, res.Detail = Mounted, r.mounted(ctx, p, writers, rep)
			return res
		}

		notes = r.trigger(ctx, untriggered, trigger)
	}

	res.State = Waiting

	for _, rs := range pending {
		state, note := waiting(rs, trigger)
		if state == Failed {
			res.State = Failed
		}

		if note != "" {
			notes = append(notes, note)
		}
	}

	for _, n := range notes {
		if strings.HasPrefix(n, failedPrefix) {
			res.State = Failed
		}
	}

	res.Detail = strings.Join(notes, "; ")

	return res
}

// failedPrefix starts a note that makes the PVC failed.
const failedPrefix = "cannot "

// trigger sets the manual trigger of each source, while VolSync is idle: a synchronization that
// is running started before the trigger was set (possibly before the writers stopped), and
// VolSync would record it as the trigger's when it ends (statemachine/machine.go,
// transitionToCleaningUp copies spec.trigger.manual to status.lastManualSync). The change is
// conditional on the object being unchanged since it was read, so one that started meanwhile is
// seen at the next pass.
func (r *Runner) trigger(ctx context.Context, sources []repo.ReplicationSource, trigger string) []string {
	var notes []string

	for _, rs := range sources {
		if !rs.SyncStarted.IsZero() {
			notes = append(notes, fmt.Sprintf("%s: a synchronization started at %s is running; the trigger is set once it ends",
				rs.Name, rs.SyncStarted.UTC().Format(time.RFC3339)))

			continue
		}

		err := r.opts.Sources.SetManualTrigger(ctx, rs, trigger, r.opts.Cutover.Marker())

		switch {
		case err == nil:
			r.opts.Logger.Info("cutover: manual trigger set", "replicationSource", rs.String(), "trigger", trigger)
			notes = append(notes, fmt.Sprintf("%s: trigger %s set, waiting for VolSync (%s)", rs.Name, trigger, conditionOf(rs)))
		case errors.Is(err, repo.ErrChanged):
			notes = append(notes, fmt.Sprintf("%s changed while being triggered; again at the next pass", rs.Name))
		default:
			notes = append(notes, fmt.Sprintf("%sset the manual trigger of %s: %v", failedPrefix, rs.Name, err))
		}
	}

	return notes
}

// waiting is the state of a source whose final backup is not done: failed when VolSync reports
// an error (its Synchronizing condition, or a failed mover Job: VolSync retries either, so the
// PVC may still become done), else waiting for VolSync. A source whose trigger is not set yet
// (idle or busy, see trigger) gets no note here.
func waiting(rs repo.ReplicationSource, trigger string) (State, string) {
	if rs.Manual != trigger {
		return Waiting, ""
	}

	switch {
	case rs.Condition.Reason == repo.SyncReasonError:
		return Failed, fmt.Sprintf("%s: VolSync reports %s", rs.Name, rs.Condition)
	case rs.MoverResult == repo.MoverResultFailed:
		return Failed, fmt.Sprintf("%s: VolSync's last mover Job failed (VolSync retries): %s", rs.Name, lastLine(rs.MoverLogs))
	}

	return Waiting, fmt.Sprintf("%s: trigger %s set, waiting for VolSync (%s)", rs.Name, trigger, conditionOf(rs))
}

// conditionOf is VolSync's Synchronizing condition of rs, for a note.
func conditionOf(rs repo.ReplicationSource) string {
	if c := rs.Condition.String(); c != "" {
		return c
	}

	return "no condition yet"
}

func doneDetail(sources []repo.ReplicationSource) string {
	parts := make([]string, 0, len(sources))

	for _, rs := range sources {
		at := "unknown time"
		if !rs.LastSync.IsZero() {
			at = rs.LastSync.UTC().Format(time.RFC3339)
		}

		parts = append(parts, fmt.Sprintf("%s: final backup finished at %s", rs.Name, at))
	}

	return strings.Join(parts, "; ")
}

// writersOf is the mounts that are not VolSync movers.
func writersOf(mounts []repo.Mount) []repo.Mount {
	return slices.DeleteFunc(slices.Clone(mounts), func(m repo.Mount) bool { return m.Mover })
}

func names(sources []repo.ReplicationSource) []string {
	out := make([]string, 0, len(sources))
	for _, rs := range sources {
		out = append(out, rs.Name)
	}

	slices.Sort(out)

	return out
}

func lastLine(logs string) string {
	lines := strings.Split(strings.TrimSpace(logs), "\n")
	if l := strings.TrimSpace(lines[len(lines)-1]); l != "" {
		return l
	}

	return "no log"
}
