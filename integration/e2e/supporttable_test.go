//go:build e2e

package e2e

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the support tables of README.md and policies/README.md")

// supportRow is one feature of the support table: the subtest of TestRestoreAsCode that proves
// it on each version ({set} is the policy set's engine) and what that test asserts there.
type supportRow struct {
	feature string
	test    string
	cell    func(r kyvernoRelease, engine string) string
}

const ok = "✅"

var supportRows = []supportRow{ //nolint:gochecknoglobals // the table
	{"Controller flags `--apiCallTimeout`, `--httpBlocklist`", "controller-flags", func(r kyvernoRelease, _ string) string {
		if r.hasAPICallTimeout && r.hasHTTPBlocklist {
			return ok + " both"
		}

		return "⚠️ neither: a controller exits on them"
	}},
	{"Service call to the oracle on loopback, default HTTP flags", "default-http-flags", func(r kyvernoRelease, engine string) string {
		blocked := r.defaultBlocksAPICall
		if engine == "cel" {
			blocked = r.defaultBlocksCEL
		}

		if blocked {
			return "refused (loopback is on the default blocklist)"
		}

		return ok + " reached (no blocklist)"
	}},
	{"Service call to a ClusterIP, default HTTP flags", "default-http-flags", func(r kyvernoRelease, engine string) string {
		switch {
		case engine == "cel" && r.defaultBlocksPrivate:
			return "⚠️ refused (10.0.0.0/8 blocked): set `--httpBlocklist`"
		case engine == "cel" && r.defaultBlocksCEL, engine == "clusterpolicy" && r.defaultBlocksAPICall:
			return ok + " (default blocklist: metadata and loopback only)"
		default:
			return ok + " (no blocklist: loopback reached)"
		}
	}},
	{"The chart's manifests accepted (server-side dry run)", "chart/server-side-dry-run", always(ok)},
	{"`policies.engine: auto` (the default) on the API server's API versions: refused without `policies.kyverno.version`; with it, the set installed", "chart/policy-set-auto", func(r kyvernoRelease, _ string) string {
		switch {
		case r.autoSet == "cel":
			return ok + " CEL"
		case r.mutatingNoResourceLib:
			return ok + " ClusterPolicy (CEL with `auth.enabled: false`)"
		}

		return ok + " ClusterPolicy (CEL with `httpBlocklistOverridden`)"
	}},
	{"Restore: `dataSourceRef` set, RD generated with the looked-up identity", "{set}/restore", always(ok)},
	{"Fresh, unlabelled, excluded namespace: unchanged (0 calls for the last two)", "{set}/untouched", always(ok)},
	{"RS generated once the PVC is bound (not on `/status` alone)", "{set}/bound", always(ok)},
	{"GitOps re-apply of a restored PVC (server-side as Flux and as Argo CD, client-side): no error, data source kept and owned by no manager, dry-run diff empty", "{set}/gitops", always(ok)},
	{"Oracle answers `unknown` (not ready: wrong password): denied", "{set}/oracle-unknown", func(r kyvernoRelease, engine string) string {
		if r.sets[engine].unknownReason {
			return ok + " with the oracle's reason"
		}

		return ok + " with Kyverno's error (no reason)"
	}},
	{"Near miss: denied; acknowledged without a reason: denied; with one: admitted, counted", "{set}/near-miss", func(r kyvernoRelease, engine string) string {
		if r.sets[engine].nearMissReason {
			return ok + " denial names the near miss"
		}

		return "⚠️ denial without the oracle's reason (see `/explain`)"
	}},
	{"PVC naming its source (`backup-oracle.io/restore-source`): restored with the RD stating it; a source that does not exist, another namespace's, one the Kopia mover cannot restore: denied", "{set}/restore-source", func(r kyvernoRelease, engine string) string {
		if r.sets[engine].nearMissReason {
			return ok + " denials give the reason"
		}

		return "⚠️ denial without the oracle's reason (see `/explain`)"
	}},
	{"Oracle stopped: denied", "{set}/oracle-stopped", func(r kyvernoRelease, engine string) string {
		if r.sets[engine].downMessage == cpDownMessage {
			return ok + " with the policy's message"
		}

		return ok + " with Kyverno's error"
	}},
	{"Oracle hanging: refused within 18 s (measured 10.0 s)", "{set}/oracle-hanging", func(r kyvernoRelease, engine string) string {
		if r.sets[engine].hangDeniedCleanly {
			return ok + " denied, the policy's message"
		}

		return "⚠️ HTTP 500 at the 10 s webhook deadline"
	}},
	{"Oracle back: creates and restores pass", "{set}/oracle-back", always(ok)},
	{"Gate self-test: armed; refusing (Kyverno stopped); disarmed (policies deleted, canary namespace excluded) at the first check after; alert expressions agree; armed again; no object, report or generated resource left",
		"{set}/gate-self-test", always(ok + " armed with the oracle's canary answer")},
	{"`${APP}`/`${APP}-dst` layout, gate mode: `dataSourceRef` to the user's RD, nothing generated", "layouts/app-layout/{set}", layouts},
	{"Blue/green: RD restores from the newest snapshot's backend, RS backs up to the own one; a backend gone: denied", "layouts/blue-green/{set}", layouts},
	{"restic on upstream VolSync v0.16.0 (its controller, its mover script run as a kubelet would): backup written, answered restore, restored byte for byte; blue/green restores the chosen colour; a disagreement and a foreign snapshot detected", "restic/{set}", resticScenarios},
	{"Cleanup by the real cleanup controller (every minute in the test)", "cleanup/{set}", always(ok)},
	{"A predecessor-style CEL policy reading only `exists`, oracle `unknown`: the PVC admitted empty (the hazard); a check of `decision`: denied", "predecessor-policy", predecessor},
}

// predecessor: how a CEL policy reading only exists admits an unknown PVC on the version.
func predecessor(r kyvernoRelease, engine string) string {
	switch {
	case engine != "cel":
		return "n/a (a CEL policy)"
	case r.celNon2xxBody:
		return "⚠️ admitted empty: the 503 body reaches the policy (`exists: false`, `statusCode: 503`)"
	default:
		return "⚠️ admitted empty: `http.Get` fails and a MutatingPolicy's error does not deny"
	}
}

// layouts: the layout scenarios run on the versions marked so (the newest).
func layouts(r kyvernoRelease, _ string) string {
	if r.layouts {
		return ok
	}

	return "not run (newest only)"
}

// resticScenarios: the restic scenarios run on the versions marked so.
func resticScenarios(r kyvernoRelease, _ string) string {
	if r.restic {
		return ok
	}

	return "not run (newest only)"
}

func always(s string) func(kyvernoRelease, string) string {
	return func(kyvernoRelease, string) string { return s }
}

// supportTable renders the support table from kyvernoReleases and supportRows.
func supportTable() string {
	var b strings.Builder

	b.WriteString("| Feature | Test `TestRestoreAsCode/versions/kyverno-<version>/…` |")

	for _, r := range kyvernoReleases {
		for _, set := range policySets {
			fmt.Fprintf(&b, " %s %s |", strings.TrimPrefix(r.version, "v"), map[string]string{"clusterpolicy": "ClusterPolicy", "cel": "CEL"}[set.engine])
		}
	}

	b.WriteString("\n|---|---|" + strings.Repeat("---|", len(kyvernoReleases)*len(policySets)) + "\n")

	for _, row := range supportRows {
		fmt.Fprintf(&b, "| %s | `%s` |", row.feature, row.test)

		for _, r := range kyvernoReleases {
			for _, set := range policySets {
				fmt.Fprintf(&b, " %s |", row.cell(r, set.engine))
			}
		}

		b.WriteString("\n")
	}

	return b.String()
}

const (
	tableBegin = "<!-- support-table: generated from integration/e2e/versions_test.go by `make update-golden` -->\n"
	tableEnd   = "<!-- end of support-table -->"
)

// TestSupportTable checks that the support tables of README.md and policies/README.md are the
// one rendered from the expectations the e2e test asserts (-update rewrites them).
func TestSupportTable(t *testing.T) {
	want := supportTable()

	for _, f := range []string{"README.md", "policies/README.md"} {
		path := filepath.Join("..", "..", f)
		b, err := os.ReadFile(path)
		require.NoError(t, err)

		before, rest, found := strings.Cut(string(b), tableBegin)
		require.True(t, found, "%s: no %q", f, tableBegin)
		got, after, found := strings.Cut(rest, tableEnd)
		require.True(t, found, "%s: no %q", f, tableEnd)

		if *update {
			require.NoError(t, os.WriteFile(path, []byte(before+tableBegin+want+tableEnd+after), 0o644)) //nolint:gosec // a README

			continue
		}

		require.Equal(t, want, got, "%s: the support table differs from the e2e expectations; run `make update-golden`", f)
	}
}
