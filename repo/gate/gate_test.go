package gate_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/repo"
	"github.com/backup-oracle/backup-oracle/repo/gate"
)

const ns = "backup-oracle-canary"

var (
	labels  = map[string]string{"backup": "daily"}                   //nolint:gochecknoglobals // test fixture
	checkAt = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)          //nolint:gochecknoglobals // test fixture
	denial  = `admission webhook "validate.kyverno.svc-fail" denied` //nolint:gochecknoglobals // test fixture
)

type fakeInventory func() []repo.Inventory

func (f fakeInventory) Inventory() []repo.Inventory { return f() }

// newGate returns a gate whose dry runs api answers, with a fixed clock and nonces n1, n2, ...
func newGate(t *testing.T, api gate.DryRunFunc, opts gate.Options) (*gate.Gate, *prometheus.Registry) {
	t.Helper()

	reg := prometheus.NewRegistry()
	n := 0

	opts.API, opts.Registerer = api, reg
	opts.Now = func() time.Time { return checkAt }
	opts.Nonce = func() (string, error) { n++; return strings.Repeat("0", 15) + string(rune('0'+n)), nil }

	if opts.Namespace == "" {
		opts.Namespace = ns
	}

	if opts.Labels == nil {
		opts.Labels = labels
	}

	g, err := gate.New(opts)
	require.NoError(t, err)

	return g, reg
}

// TestCheckArmed: the policies ask the oracle about the canary (Saw) and refuse it with the
// oracle's canary answer: armed. The dry run carries the canary's name, namespace, the
// policies' label and the canary annotation, within the check's timeout.
func TestCheckArmed(t *testing.T) {
	var g *gate.Gate

	api := func(ctx context.Context, pvc repo.PVC, l, a map[string]string) (repo.DryRun, error) {
		deadline, ok := ctx.Deadline()
		assert.True(t, ok, "a check is bounded")
		assert.WithinDuration(t, time.Now().Add(7*time.Second), deadline, 2*time.Second)
		assert.Equal(t, ns, pvc.Namespace)
		assert.Equal(t, "backup-oracle-canary-0000000000000001", pvc.Name)
		assert.Equal(t, labels, l)
		assert.Contains(t, a[gate.CanaryAnnotation], "dry run")

		answer := repo.CanaryAnswer(pvc)
		g.Saw(pvc) // the oracle's lookup, as Kyverno makes it during admission

		return repo.DryRun{Verdict: repo.DryRunDenied, Message: denial + ": backup-oracle-admission: (decision unknown: " + answer.Reason.Error() + ")"}, nil
	}

	g, reg := newGate(t, api, gate.Options{Timeout: 7 * time.Second, Interval: time.Minute})

	before := g.Status()
	assert.Equal(t, repo.GateUnchecked, before.State, "before the first check")
	assert.True(t, before.LastCheck.IsZero())

	st := g.Check(context.Background())
	assert.Equal(t, repo.GateArmed, st.State, st.Reason)
	assert.Contains(t, st.Reason, "this oracle answered it")
	assert.Equal(t, checkAt, st.LastCheck)
	assert.Equal(t, time.Minute, st.Interval)
	assert.Equal(t, repo.PVC{Namespace: ns, Name: "backup-oracle-canary-0000000000000001"}, st.Canary)
	assert.Equal(t, st, g.Status())

	assertState(t, reg, "armed")
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(fmt.Sprintf(`
# HELP backup_oracle_gate_last_check_timestamp_seconds When the last gate self-test started (Unix seconds); 0 before the first.
# TYPE backup_oracle_gate_last_check_timestamp_seconds gauge
backup_oracle_gate_last_check_timestamp_seconds %d
`, checkAt.Unix())), "backup_oracle_gate_last_check_timestamp_seconds"))
}

// TestCheckStates: what the API server answers, and whether the oracle was asked, make the state.
func TestCheckStates(t *testing.T) {
	cases := []struct {
		name  string
		saw   bool
		dry   repo.DryRun
		err   error
		state repo.GateState
	}{
		{"admitted: the policies are gone", false, repo.DryRun{Verdict: repo.DryRunAdmitted}, nil, repo.GateDisarmed},
		{"Kyverno stopped", false, repo.DryRun{Verdict: repo.DryRunWebhookFailed, Message: `failed calling webhook "mutate.kyverno.svc-fail"`}, nil, repo.GateRefusing},
		{"the API server unreachable", false, repo.DryRun{}, errors.New("connection refused"), repo.GateUnchecked},
		{"refused by a policy that never asked the oracle", false, repo.DryRun{Verdict: repo.DryRunDenied, Message: denial + ": require-storage-class"}, nil, repo.GateDisarmed},
		// Another nonce's answer is no evidence, and this denial does not name the policies.
		{"the canary answer of another nonce", true, repo.DryRun{Verdict: repo.DryRunDenied, Message: denial + ": " + repo.CanaryMarker("0000000000000009")}, nil,
			repo.GateDisarmed},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var g *gate.Gate

			g, reg := newGate(t, func(_ context.Context, pvc repo.PVC, _, _ map[string]string) (repo.DryRun, error) {
				if tc.saw {
					g.Saw(pvc)
				}

				return tc.dry, tc.err
			}, gate.Options{})

			st := g.Check(context.Background())
			assert.Equal(t, tc.state, st.State, st.Reason)
			assertState(t, reg, string(tc.state))
		})
	}
}

// TestSawOnlyCountsItsOwnCanary: a lookup of another canary nonce, of the canary name in another
// namespace, or after the check ended, is not evidence.
func TestSawOnlyCountsItsOwnCanary(t *testing.T) {
	var g *gate.Gate

	var last repo.PVC

	g, _ = newGate(t, func(_ context.Context, pvc repo.PVC, _, _ map[string]string) (repo.DryRun, error) {
		last = pvc
		g.Saw(repo.PVC{Namespace: "shop", Name: pvc.Name})                        // same name, another namespace
		g.Saw(repo.PVC{Namespace: ns, Name: repo.CanaryName("ffffffffffffffff")}) // a nonce nobody sent
		g.Saw(repo.PVC{Namespace: ns, Name: "postgres"})                          // not a canary

		return repo.DryRun{Verdict: repo.DryRunDenied, Message: denial + ": Policy backup-oracle-admission failed"}, nil
	}, gate.Options{})

	st := g.Check(context.Background())
	assert.Equal(t, repo.GateRefusing, st.State, "the policies refused without this oracle's answer: %s", st.Reason)

	g.Saw(last) // too late: the check is over
	assert.Equal(t, repo.GateRefusing, g.Status().State)
}

// TestRun: a check at once, then one per tick of the interval's timer, until the context ends.
func TestRun(t *testing.T) {
	var checks atomic.Int32

	ticks := make(chan time.Time)
	asked := make(chan time.Duration)

	g, _ := newGate(t, func(context.Context, repo.PVC, map[string]string, map[string]string) (repo.DryRun, error) {
		checks.Add(1)
		return repo.DryRun{Verdict: repo.DryRunAdmitted}, nil
	}, gate.Options{Interval: 3 * time.Second, After: func(d time.Duration) <-chan time.Time { asked <- d; return ticks }})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})

	go func() { g.Run(ctx); close(done) }()

	assert.Equal(t, 3*time.Second, <-asked, "waits the interval after the first check")
	assert.Equal(t, int32(1), checks.Load(), "the first check runs at once")

	ticks <- time.Time{}
	assert.Equal(t, 3*time.Second, <-asked)
	assert.Equal(t, int32(2), checks.Load(), "one check per interval")

	cancel()
	<-done
	assert.Equal(t, int32(2), checks.Load())
}

// TestOff: with the self-test off nothing is sent, the state says why, and coverage is still
// reported.
func TestOff(t *testing.T) {
	reg := prometheus.NewRegistry()
	inv := fakeInventory(func() []repo.Inventory {
		return []repo.Inventory{{Backend: "kopia-fs", Stored: []repo.Stored{
			{Source: "etcd-backup@kube-system:/data", PVC: repo.PVC{Namespace: "kube-system", Name: "etcd"}, Snapshots: 3},
			{Source: "coredns-backup@kube-system:/data", PVC: repo.PVC{Namespace: "kube-system", Name: "coredns"}, Snapshots: 1},
			{Source: "postgres-backup@shop:/data", PVC: repo.PVC{Namespace: "shop", Name: "postgres"}, Snapshots: 1},
		}}}
	})

	g, err := gate.New(gate.Options{Off: "GATE_CHECK_INTERVAL is 0", Registerer: reg, Inventory: inv, Excluded: []string{"kube-system", "kyverno"}})
	require.NoError(t, err)

	g.Run(context.Background()) // returns at once
	st := g.Check(context.Background())
	assert.Equal(t, repo.GateOff, st.State)
	assert.Equal(t, "GATE_CHECK_INTERVAL is 0", st.Reason)
	assert.Equal(t, []repo.UncoveredNamespace{{Namespace: "kube-system", Sources: 2, Backends: []string{"kopia-fs"}}}, st.Uncovered)

	assertState(t, reg, "off")
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP backup_oracle_excluded_namespace_backups Backup sources stored for a namespace the policies exclude: its PVCs are never checked, so they start empty although backups exist.
# TYPE backup_oracle_excluded_namespace_backups gauge
backup_oracle_excluded_namespace_backups{pvc_namespace="kube-system"} 2
`), "backup_oracle_excluded_namespace_backups"))
}

func TestNewRefusesAnIncompleteGate(t *testing.T) {
	api := gate.DryRunFunc(func(context.Context, repo.PVC, map[string]string, map[string]string) (repo.DryRun, error) {
		return repo.DryRun{}, nil
	})

	for _, o := range []gate.Options{{}, {API: api, Labels: labels}, {API: api, Namespace: ns}, {Namespace: ns, Labels: labels}} {
		_, err := gate.New(o)
		require.ErrorIs(t, err, repo.ErrInvalidConfig)
	}
}

// assertState checks that backup_oracle_gate_state is 1 for want and 0 for every other state.
func assertState(t *testing.T, reg *prometheus.Registry, want string) {
	t.Helper()

	var b strings.Builder

	b.WriteString("# HELP backup_oracle_gate_state The gate self-test's state: 1 for the current one (armed, refusing, disarmed, unchecked or off), 0 for the others.\n")
	b.WriteString("# TYPE backup_oracle_gate_state gauge\n")

	for _, s := range []string{"armed", "disarmed", "off", "refusing", "unchecked"} {
		v := "0"
		if s == want {
			v = "1"
		}

		b.WriteString(`backup_oracle_gate_state{state="` + s + `"} ` + v + "\n")
	}

	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(b.String()), "backup_oracle_gate_state"))
}

// TestDefaults: a zero interval and timeout take the defaults (5 minutes between checks; a check
// bounded by 30 s), never "no pause" and "no time at all".
func TestDefaults(t *testing.T) {
	var remaining time.Duration

	g, _ := newGate(t, func(ctx context.Context, _ repo.PVC, _, _ map[string]string) (repo.DryRun, error) {
		require.NoError(t, ctx.Err(), "a zero timeout is the default one, not an expired context")

		deadline, ok := ctx.Deadline()
		require.True(t, ok, "a check is bounded")
		remaining = time.Until(deadline)

		return repo.DryRun{Verdict: repo.DryRunAdmitted}, nil
	}, gate.Options{})

	assert.Equal(t, gate.DefaultInterval, g.Status().Interval)

	g.Check(context.Background())
	assert.Greater(t, remaining, gate.DefaultTimeout-10*time.Second)
	assert.LessOrEqual(t, remaining, gate.DefaultTimeout)
}
