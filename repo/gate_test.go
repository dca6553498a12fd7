package repo_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/repo"
)

func TestCanaryNames(t *testing.T) {
	pvc := repo.PVC{Namespace: "backup-oracle-canary", Name: repo.CanaryName("0123456789abcdef")}
	assert.Equal(t, "backup-oracle-canary-0123456789abcdef", pvc.Name)
	require.NoError(t, pvc.Validate(), "a canary must be a PVC name Kubernetes accepts")

	nonce, ok := repo.CanaryNonce(pvc)
	assert.True(t, ok)
	assert.Equal(t, "0123456789abcdef", nonce)

	for _, name := range []string{"postgres", "backup-oracle-canary", "my-backup-oracle-canary-1", "backup-oracle-canaryx"} {
		_, ok := repo.CanaryNonce(repo.PVC{Namespace: "web", Name: name})
		assert.False(t, ok, name)
	}
}

// TestCanaryAnswer: a canary name is Unknown, never restore or fresh, and its reason names the
// self-test and the nonce in the words the self-test looks for.
func TestCanaryAnswer(t *testing.T) {
	a := repo.CanaryAnswer(repo.PVC{Namespace: "shop", Name: "backup-oracle-canary-feed"})

	assert.Equal(t, repo.Unknown, a.Decision)
	assert.False(t, a.Authoritative())
	require.ErrorIs(t, a.Reason, repo.ErrCanary)
	assert.Contains(t, a.Reason.Error(), "gate self-test canary feed")
	assert.Contains(t, a.Reason.Error(), repo.CanaryMarker("feed"))
	assert.NotContains(t, a.Reason.Error(), `"`, "no character a policy engine might escape")
}

// Denials as the API server words them (k8s.io/apiserver, webhook/errors.ToStatusErr), with the
// policies' messages (chart/templates/policies) around the oracle's canary answer.
const (
	nonce  = "5eed5eed5eed5eed"
	canary = "backup-oracle-canary-" + nonce
	answer = "gate self-test canary " + nonce + ": names starting backup-oracle-canary- are reserved for the backup-oracle gate self-test"

	clusterPolicyDenial = `admission webhook "validate.kyverno.svc-fail" denied the request:

resource PersistentVolumeClaim/backup-oracle-canary/` + canary + ` was blocked due to the following policies

backup-oracle-admission:
  deny-unknown: 'backup-oracle cannot say whether this PVC has a backup (decision unknown: ` + answer + `). Creating it empty could hide a backup'`
	celDenial = `admission webhook "vpol.validate.kyverno.svc-fail-finegrained-backup-oracle-admission" denied the request: Policy backup-oracle-admission failed: ` +
		`backup-oracle cannot say whether this PVC has a backup (` + answer + `).`
	// The ClusterPolicy set when Kyverno cannot reach the oracle: the apiCall default.
	unreachableDenial = `admission webhook "validate.kyverno.svc-fail" denied the request: resource PersistentVolumeClaim/backup-oracle-canary/` + canary +
		` was blocked due to the following policies backup-oracle-admission: deny-unknown: 'backup-oracle cannot say whether this PVC has a backup ` +
		`(decision unknown: backup-oracle unreachable, timed out or answered non-2xx)'`
	otherDenial = `admission webhook "validate.kyverno.svc-fail" denied the request: resource PersistentVolumeClaim/backup-oracle-canary/` + canary +
		` was blocked due to the following policies require-storage-class: check: 'a storageClassName is required'`
	webhookDown = `Internal error occurred: failed calling webhook "mutate.kyverno.svc-fail": failed to call webhook: Post ` +
		`"https://127.0.0.1:9443/mutate/fail?timeout=10s": dial tcp 127.0.0.1:9443: connect: connection refused`
)

func TestGateCheckJudge(t *testing.T) {
	pvc := repo.PVC{Namespace: "backup-oracle-canary", Name: canary}
	denied := func(msg string) repo.DryRun { return repo.DryRun{Verdict: repo.DryRunDenied, Message: msg} }

	cases := []struct {
		name   string
		dryRun repo.DryRun
		err    error
		seen   bool
		state  repo.GateState
		reason []string
	}{
		{"ClusterPolicy set: the oracle's answer in the denial", denied(clusterPolicyDenial), nil, true, repo.GateArmed,
			[]string{"refused with the oracle's canary answer (this oracle answered it)"}},
		{"CEL set: the oracle's answer in the denial", denied(celDenial), nil, true, repo.GateArmed, []string{"canary answer"}},
		{"another replica answered: the answer in the denial is enough", denied(celDenial), nil, false, repo.GateArmed, []string{"canary answer"}},
		{"wrapped differently: whitespace does not matter", denied("admission webhook \"x\" denied the request: (gate self-test\n   canary " + nonce + ")"),
			nil, false, repo.GateArmed, nil},
		{"another nonce's answer is not this canary's", denied(`admission webhook "x" denied the request: backup-oracle-admission: gate self-test canary 0000`),
			nil, false, repo.GateRefusing, nil},
		{"the reason dropped, but this oracle was asked by the policies", denied(`admission webhook "v" denied the request: Policy backup-oracle-admission failed`),
			nil, true, repo.GateArmed, []string{"after they asked this oracle", "does not carry the oracle's reason"}},
		{"the policies could not reach the oracle", denied(unreachableDenial), nil, false, repo.GateRefusing,
			[]string{"without the oracle's answer", "none can be created", "backup-oracle unreachable"}},
		{"another policy refused, the oracle never asked", denied(otherDenial), nil, false, repo.GateDisarmed,
			[]string{"not by the backup-oracle policies, which never asked the oracle", "require-storage-class"}},
		{"another policy refused after the oracle was asked (ours in Audit)", denied(otherDenial), nil, true, repo.GateDisarmed,
			[]string{"although this oracle was asked"}},
		{"admitted", repo.DryRun{Verdict: repo.DryRunAdmitted}, nil, false, repo.GateDisarmed,
			[]string{"canary backup-oracle-canary/" + canary + " was admitted", "without asking the oracle"}},
		{"admitted although the oracle was asked", repo.DryRun{Verdict: repo.DryRunAdmitted}, nil, true, repo.GateDisarmed, []string{"although this oracle was asked"}},
		{"Kyverno down, failurePolicy Fail", repo.DryRun{Verdict: repo.DryRunWebhookFailed, Message: webhookDown}, nil, false, repo.GateRefusing,
			[]string{"an admission webhook failed", "connection refused", "none can be created"}},
		{"the API server could not be asked", repo.DryRun{}, errors.New("dial tcp 10.0.0.1:443: i/o timeout"), false, repo.GateUnchecked,
			[]string{"could not be asked", "i/o timeout"}},
		{"an unknown verdict is never armed", repo.DryRun{Message: celDenial}, nil, true, repo.GateUnchecked, []string{"not understood"}},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			state, reason := repo.GateCheck{Canary: pvc, Nonce: nonce, DryRun: tc.dryRun, Err: tc.err, Seen: tc.seen}.Judge()
			assert.Equal(t, tc.state, state, reason)

			for _, want := range tc.reason {
				assert.Contains(t, reason, want)
			}
		})
	}
}

// TestGateCheckCanaryNameIsNotEvidence: the canary's own name and namespace contain
// "backup-oracle"; a denial that only echoes them does not name the policies.
func TestGateCheckCanaryNameIsNotEvidence(t *testing.T) {
	pvc := repo.PVC{Namespace: "backup-oracle-canary", Name: canary}
	msg := `admission webhook "x" denied the request: PVC backup-oracle-canary/` + canary + ` has no storage class`

	state, _ := repo.GateCheck{Canary: pvc, Nonce: nonce, DryRun: repo.DryRun{Verdict: repo.DryRunDenied, Message: msg}, Seen: true}.Judge()
	assert.Equal(t, repo.GateDisarmed, state)
}

func TestUncovered(t *testing.T) {
	stored := func(ns, name string) repo.Stored {
		return repo.Stored{Source: name + "@" + ns, PVC: repo.PVC{Namespace: ns, Name: name}, Snapshots: 1}
	}
	inv := []repo.Inventory{
		{Backend: "green", Stored: []repo.Stored{stored("kube-system", "etcd"), stored("shop", "postgres"), stored("kyverno", ""), stored("", "")}},
		{Backend: "blue", Stored: []repo.Stored{stored("kube-system", "coredns"), stored("kyverno", "reports")}},
		{Backend: "broken", Err: repo.ErrUnavailable},
	}

	got := repo.Uncovered(inv, []string{"volsync-system", "kyverno", "kube-system"})
	assert.Equal(t, []repo.UncoveredNamespace{
		{Namespace: "kube-system", Sources: 2, Backends: []string{"green", "blue"}},
		{Namespace: "kyverno", Sources: 2, Backends: []string{"green", "blue"}},
	}, got)
	assert.Equal(t, "backups exist for namespace kube-system, but its PVCs are never checked: the policies exclude it (2 backup source(s) on green, blue)",
		got[0].Reason())

	assert.Empty(t, repo.Uncovered(inv, nil))
	assert.Empty(t, repo.Uncovered(inv, []string{"volsync-system"}))
}
