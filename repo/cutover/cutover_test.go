package cutover_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/repo"
	"github.com/backup-oracle/backup-oracle/repo/cutover"
)

var (
	at   = time.Date(2026, 12, 6, 18, 0, 0, 0, time.UTC)
	shop = repo.PVC{Namespace: "shop", Name: "db"}
)

// The values the issue states and VolSync compares verbatim: the trigger is derived from the
// instant only (a re-run sets the same one), the marker is a valid label value.
const (
	wantTrigger = "cutover-2026-12-06T18:00:00Z"
	wantMarker  = "20261206T180000Z"
)

func TestTriggerAndMarker(t *testing.T) {
	c := repo.Cutover{At: time.Date(2026, 12, 6, 19, 0, 0, 0, time.FixedZone("CET", 3600)), From: "blue"}
	assert.Equal(t, wantTrigger, c.Trigger(), "the instant in UTC, whatever zone it was written in")
	assert.Equal(t, wantMarker, c.Marker())
}

// idle is the RS the policies generate for shop/db, idle on its schedule.
func idle() repo.ReplicationSource {
	return repo.ReplicationSource{Namespace: "shop", Name: "db-backup", SourcePVC: "db", ResourceVersion: "7", Schedule: "17 * * * *",
		Condition: repo.Condition{Status: "False", Reason: repo.SyncReasonSchedule, Message: "Waiting for next scheduled synchronization"}}
}

func newRunner(t *testing.T, f *fake, now time.Time, scale bool, reg prometheus.Registerer) *cutover.Runner {
	t.Helper()

	if f.claims == nil {
		f.claims = func(key string, values []string) ([]repo.PVC, error) {
			assert.Equal(t, "backup", key)
			assert.Equal(t, []string{"daily", "hourly"}, values)

			return []repo.PVC{shop}, nil
		}
	}

	r, err := cutover.New(cutover.Options{
		Cutover: repo.Cutover{At: at, From: "blue"}, LabelKey: "backup", LabelValues: []string{"daily", "hourly"},
		Excluded: []string{"kube-system"}, Scale: scale,
		Claims: f, Pods: f, Sources: f, Workloads: f, Registerer: reg,
		Now: func() time.Time { return now },
	})
	require.NoError(t, err)

	return r
}

func sources(rs ...repo.ReplicationSource) func(bool) ([]repo.ReplicationSource, error) {
	return func(marked bool) ([]repo.ReplicationSource, error) {
		if marked {
			return nil, errors.New("the run lists every ReplicationSource, not the marked ones")
		}

		return rs, nil
	}
}

func TestPass(t *testing.T) {
	after := at.Add(time.Minute)
	triggered := idle()
	triggered.Manual = wantTrigger
	triggered.Condition = repo.Condition{Status: "True", Reason: repo.SyncReasonInProgress, Message: "Synchronization in-progress"}

	cases := []struct {
		name    string
		now     time.Time
		sources []repo.ReplicationSource
		mounts  []repo.Mount
		setErr  error
		state   cutover.State
		detail  []string
		set     bool // the trigger must be set
	}{
		{"before the instant: only reported", at.Add(-90 * time.Second), []repo.ReplicationSource{idle()}, nil, nil,
			cutover.Waiting, []string{"the cutover is at 2026-12-06T18:00:00Z, in 1m30s"}, false},
		{"nothing backs it up", after, nil, nil, nil,
			cutover.Failed, []string{"no ReplicationSource names it in spec.sourcePVC"}, false},
		{"another PVC's source does not count", after, []repo.ReplicationSource{{Namespace: "shop", Name: "x", SourcePVC: "other"}}, nil, nil,
			cutover.Failed, []string{"no ReplicationSource"}, false},
		{"still used by the app", after, []repo.ReplicationSource{idle()},
			[]repo.Mount{{Pod: "db-0", Phase: "Running", OwnerKind: repo.KindStatefulSet, OwnerName: "db"}}, nil,
			cutover.Mounted, []string{"used by pod db-0 (Running): waiting until the app is scaled to zero"}, false},
		{"a VolSync mover is not a writer", after, []repo.ReplicationSource{idle()},
			[]repo.Mount{{Pod: "volsync-src-db-backup-x", Phase: "Running", Mover: true}}, nil,
			cutover.Waiting, []string{"db-backup: trigger " + wantTrigger + " set, waiting for VolSync (WaitingForSchedule: Waiting for next scheduled synchronization)"}, true},
		{"idle: the trigger is set", after, []repo.ReplicationSource{idle()}, nil, nil,
			cutover.Waiting, []string{"trigger " + wantTrigger + " set"}, true},
		{"a scheduled synchronization is running: not yet", after, []repo.ReplicationSource{func() repo.ReplicationSource {
			rs := idle()
			rs.SyncStarted = at.Add(-30 * time.Second)

			return rs
		}()}, nil, nil, cutover.Waiting, []string{"db-backup: a synchronization started at 2026-12-06T17:59:30Z is running; the trigger is set once it ends"}, false},
		{"changed meanwhile: again later", after, []repo.ReplicationSource{idle()}, nil, fmt.Errorf("kube: patch: %w", repo.ErrChanged),
			cutover.Waiting, []string{"db-backup changed while being triggered; again at the next pass"}, true},
		{"refused", after, []repo.ReplicationSource{idle()}, nil, errors.New("forbidden"),
			cutover.Failed, []string{"cannot set the manual trigger of db-backup: forbidden"}, true},
		{"set before (a re-run): waiting, not set again", after, []repo.ReplicationSource{triggered}, nil, nil,
			cutover.Waiting, []string{"db-backup: trigger " + wantTrigger + " set, waiting for VolSync (SyncInProgress: Synchronization in-progress)"}, false},
		{"VolSync reports an error", after, []repo.ReplicationSource{func() repo.ReplicationSource {
			rs := triggered
			rs.Condition = repo.Condition{Status: "False", Reason: repo.SyncReasonError, Message: `secret "volsync-db" not found`}

			return rs
		}()}, nil, nil, cutover.Failed, []string{`db-backup: VolSync reports Error: secret "volsync-db" not found`}, false},
		{"VolSync's mover Job failed", after, []repo.ReplicationSource{func() repo.ReplicationSource {
			rs := triggered
			rs.MoverResult, rs.MoverLogs = repo.MoverResultFailed, "connecting\nERROR: repository not found\n"

			return rs
		}()}, nil, nil, cutover.Failed, []string{"db-backup: VolSync's last mover Job failed (VolSync retries): ERROR: repository not found"}, false},
		{"done", after, []repo.ReplicationSource{func() repo.ReplicationSource {
			rs := triggered
			rs.LastManualSync, rs.LastSync = wantTrigger, at.Add(3*time.Minute)

			return rs
		}()}, []repo.Mount{{Pod: "back-again", Phase: "Running"}}, nil, cutover.Done, []string{"db-backup: final backup finished at 2026-12-06T18:03:00Z"}, false},
		{"an older cutover's trigger done is not this one's", after, []repo.ReplicationSource{func() repo.ReplicationSource {
			rs := idle()
			rs.Manual, rs.LastManualSync = "cutover-2026-11-01T00:00:00Z", "cutover-2026-11-01T00:00:00Z"

			return rs
		}()}, nil, nil, cutover.Waiting, []string{"trigger " + wantTrigger + " set"}, true},
		{"one of two sources done: waiting for the other", after, []repo.ReplicationSource{func() repo.ReplicationSource {
			rs := triggered
			rs.LastManualSync = wantTrigger

			return rs
		}(), func() repo.ReplicationSource {
			rs := idle()
			rs.Name = "db-offsite"

			return rs
		}()}, nil, nil, cutover.Waiting, []string{"db-offsite: trigger " + wantTrigger + " set"}, true},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var set []string

			f := &fake{sources: sources(tc.sources...), mounts: func() (map[repo.PVC][]repo.Mount, error) {
				return map[repo.PVC][]repo.Mount{shop: tc.mounts}, nil
			}}
			f.setTrig = func(rs repo.ReplicationSource, trigger, marker string) error {
				assert.Equal(t, wantTrigger, trigger)
				assert.Equal(t, wantMarker, marker)
				assert.Empty(t, rs.SyncStarted, "a trigger set while VolSync synchronizes")
				set = append(set, rs.Name)

				return tc.setErr
			}

			rep, err := newRunner(t, f, tc.now, false, nil).Pass(context.Background())
			require.NoError(t, err)
			require.Len(t, rep.Results, 1)

			res := rep.Results[0]
			assert.Equal(t, shop, res.PVC)
			assert.Equal(t, tc.state, res.State, res.Detail)

			for _, d := range tc.detail {
				assert.Contains(t, res.Detail, d)
			}

			assert.Equal(t, tc.set, len(set) > 0, "trigger set on %v", set)
			assert.Equal(t, wantTrigger, rep.Trigger)
		})
	}
}

func TestPassSkipsExcludedNamespacesAndSorts(t *testing.T) {
	f := &fake{sources: sources(), claims: func(string, []string) ([]repo.PVC, error) {
		return []repo.PVC{{Namespace: "shop", Name: "web"}, {Namespace: "kube-system", Name: "etcd"}, {Namespace: "blog", Name: "db"}, shop}, nil
	}}

	rep, err := newRunner(t, f, at, false, nil).Pass(context.Background())
	require.NoError(t, err)

	var got []string
	for _, r := range rep.Results {
		got = append(got, r.PVC.String())
	}

	assert.Equal(t, []string{"blog/db", "shop/db", "shop/web"}, got)
}

func TestPassListingFails(t *testing.T) {
	for name, f := range map[string]*fake{
		"claims":  {claims: func(string, []string) ([]repo.PVC, error) { return nil, errors.New("down") }},
		"sources": {sources: func(bool) ([]repo.ReplicationSource, error) { return nil, errors.New("down") }},
		"pods": {sources: sources(), mounts: func() (map[repo.PVC][]repo.Mount, error) {
			return nil, errors.New("down")
		}},
	} {
		_, err := newRunner(t, f, at, false, nil).Pass(context.Background())
		assert.EqualError(t, err, "down", name)
	}
}

// TestScale: with Scale, the Deployment (through its ReplicaSet) or StatefulSet of a writer is
// scaled to zero with the replicas it had recorded; a workload marked before keeps its first
// record; one at zero is left; a pod of another kind is named, not touched.
func TestScale(t *testing.T) {
	deploy := repo.Workload{Kind: repo.KindDeployment, Namespace: "shop", Name: "db"}
	sts := repo.Workload{Kind: repo.KindStatefulSet, Namespace: "shop", Name: "cache"}

	cases := []struct {
		name   string
		mount  repo.Mount
		state  repo.WorkloadState
		record int32 // -1: no scale
		detail string
	}{
		{"a Deployment's pod", repo.Mount{Pod: "db-5d-x", Phase: "Running", OwnerKind: repo.KindReplicaSet, OwnerName: "db-5d"},
			repo.WorkloadState{Workload: deploy, Replicas: 3, Recorded: -1}, 3, "scaled Deployment shop/db from 3 to 0 (undoing the cutover restores 3)"},
		{"a StatefulSet's pod", repo.Mount{Pod: "cache-0", Phase: "Pending", OwnerKind: repo.KindStatefulSet, OwnerName: "cache"},
			repo.WorkloadState{Workload: sts, Replicas: 1, Recorded: -1}, 1, "scaled StatefulSet shop/cache from 1 to 0"},
		{"scaled up again after a first cutover run: the first record stays", repo.Mount{Pod: "cache-0", Phase: "Running", OwnerKind: repo.KindStatefulSet, OwnerName: "cache"},
			repo.WorkloadState{Workload: sts, Replicas: 2, Marker: wantMarker, Recorded: 5}, 5, "from 2 to 0 (undoing the cutover restores 5)"},
		{"at zero already: its pods are stopping", repo.Mount{Pod: "cache-0", Phase: "Running", OwnerKind: repo.KindStatefulSet, OwnerName: "cache"},
			repo.WorkloadState{Workload: sts, Replicas: 0, Recorded: -1}, -1, "StatefulSet shop/cache is at 0 replicas: waiting for its pods to stop"},
		{"a DaemonSet's pod", repo.Mount{Pod: "agent-x", Phase: "Running", OwnerKind: "DaemonSet", OwnerName: "agent"},
			repo.WorkloadState{}, -1, "pod agent-x is not run by a Deployment or StatefulSet (owned by DaemonSet agent): stop it yourself"},
		{"a bare pod", repo.Mount{Pod: "debug", Phase: "Running"}, repo.WorkloadState{}, -1, "(a bare pod): stop it yourself"},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			scaled := int32(-1)
			f := &fake{
				sources: sources(idle()),
				mounts:  func() (map[repo.PVC][]repo.Mount, error) { return map[repo.PVC][]repo.Mount{shop: {tc.mount}}, nil },
				rsOwner: func(ns, name string) (repo.Workload, bool, error) {
					assert.Equal(t, "shop", ns)
					assert.Equal(t, "db-5d", name)

					return deploy, true, nil
				},
				workload: func(w repo.Workload) (repo.WorkloadState, error) {
					assert.Equal(t, tc.state.Workload, w)
					return tc.state, nil
				},
				scale: func(st repo.WorkloadState, marker string, record int32) error {
					assert.Equal(t, tc.state, st)
					assert.Equal(t, wantMarker, marker)
					scaled = record

					return nil
				},
			}

			rep, err := newRunner(t, f, at, true, nil).Pass(context.Background())
			require.NoError(t, err)
			require.Len(t, rep.Results, 1)
			assert.Equal(t, cutover.Mounted, rep.Results[0].State, "the trigger waits until the pods are gone")
			assert.Contains(t, rep.Results[0].Detail, tc.detail)
			assert.Equal(t, tc.record, scaled)
			assert.Equal(t, tc.record >= 0, len(rep.Scaled) == 1, "%v", rep.Scaled)
		})
	}
}

// TestRun: passes until every PVC is done, at the interval; a failed pass is made again; past
// the timeout the last report is returned, not done.
func TestRun(t *testing.T) {
	one := func(string, []string) ([]repo.PVC, error) { return []repo.PVC{shop}, nil }

	t.Run("until done", func(t *testing.T) {
		clk := &fakeClock{now: at}
		rs := idle()
		passes := 0
		f := &fake{claims: one, sources: func(bool) ([]repo.ReplicationSource, error) {
			passes++
			if passes == 2 {
				return nil, errors.New("the API server restarts")
			}

			return []repo.ReplicationSource{rs}, nil
		}}
		f.setTrig = func(got repo.ReplicationSource, trigger, _ string) error {
			rs.Manual, rs.LastManualSync, rs.LastSync = trigger, trigger, clk.now // VolSync, at once

			return nil
		}

		reg := prometheus.NewPedanticRegistry()
		r, err := cutover.New(cutover.Options{
			Cutover: repo.Cutover{At: at}, LabelKey: "backup", LabelValues: []string{"hourly"},
			Claims: f, Pods: f, Sources: f, Interval: time.Minute, Registerer: reg,
			Now: clk.Now, After: clk.After,
		})
		require.NoError(t, err)

		rep, err := r.Run(context.Background())
		require.NoError(t, err)
		assert.True(t, rep.Done())
		assert.Equal(t, 3, passes, "triggered, failed, done")
		assert.Equal(t, at.Add(2*time.Minute), rep.Time)

		assert.InDelta(t, 1, gauge(t, reg, cutover.PVCsMetric, "done"), 0)
		assert.InDelta(t, 0, gauge(t, reg, cutover.PVCsMetric, "waiting"), 0)
		assert.InDelta(t, 0, gauge(t, reg, cutover.PVCsMetric, "failed"), 0)
	})

	t.Run("timeout", func(t *testing.T) {
		clk := &fakeClock{now: at}
		f := &fake{claims: one, sources: sources(idle()), setTrig: func(repo.ReplicationSource, string, string) error {
			return fmt.Errorf("x: %w", repo.ErrChanged)
		}}
		r, err := cutover.New(cutover.Options{
			Cutover: repo.Cutover{At: at}, LabelKey: "backup", LabelValues: []string{"hourly"},
			Claims: f, Pods: f, Sources: f, Interval: time.Minute, Timeout: 10 * time.Minute,
			Now: clk.Now, After: clk.After,
		})
		require.NoError(t, err)

		rep, err := r.Run(context.Background())
		require.NoError(t, err)
		assert.False(t, rep.Done())
		assert.Equal(t, at.Add(10*time.Minute), rep.Time, "the timeout counts from the instant")
		assert.Equal(t, 1, rep.Count(cutover.Waiting))
	})

	t.Run("no pass possible", func(t *testing.T) {
		clk := &fakeClock{now: at}
		f := &fake{claims: one, sources: func(bool) ([]repo.ReplicationSource, error) { return nil, errors.New("unreachable") }}
		r, err := cutover.New(cutover.Options{
			Cutover: repo.Cutover{At: at}, LabelKey: "backup", LabelValues: []string{"hourly"},
			Claims: f, Pods: f, Sources: f, Interval: time.Minute, Timeout: 2 * time.Minute,
			Now: clk.Now, After: clk.After,
		})
		require.NoError(t, err)

		_, err = r.Run(context.Background())
		require.ErrorContains(t, err, "cutover: no pass could be made in 2m0s: unreachable")
	})
}

// fakeClock is a Runner's clock in a test: After advances it by the duration asked for and
// fires at once, so a run of passes takes no real time.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.now = c.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.now

	return ch
}

// gauge is the value of name{state} in reg.
func gauge(t *testing.T, reg *prometheus.Registry, name, state string) float64 {
	t.Helper()

	mfs, err := reg.Gather()
	require.NoError(t, err)

	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}

		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "state" && l.GetValue() == state {
					return m.GetGauge().GetValue()
				}
			}
		}
	}

	t.Fatalf("no %s{state=%q}", name, state)

	return 0
}

func TestNewRefuses(t *testing.T) {
	_, err := cutover.New(cutover.Options{})
	require.ErrorIs(t, err, repo.ErrInvalidConfig)
	assert.Contains(t, err.Error(), "the instant (CUTOVER_AT) is required")
	assert.Contains(t, err.Error(), "POLICIES_LABEL_KEY")
	assert.Contains(t, err.Error(), "a Kubernetes API client is required")
}
