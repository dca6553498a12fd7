//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// kyvernoRelease is what the test expects of one Kyverno version. Every difference between
// versions is written here, as an expectation the scenarios assert: a version that starts
// behaving differently (fixed or broken) fails the test, and nothing is skipped.
type kyvernoRelease struct {
	version string
	// hasAPICallTimeout, hasHTTPBlocklist: the controllers have these flags (1.18+). An unknown
	// flag makes a Kyverno controller exit, so the documented flags are version-specific.
	hasAPICallTimeout, hasHTTPBlocklist bool
	// defaultBlocks* : with the version's default --httpBlocklist, a service on loopback is
	// blocked for CEL http calls and for apiCall.service (ClusterPolicy set) respectively.
	defaultBlocksCEL, defaultBlocksAPICall bool
	// defaultBlocksPrivate: the default --httpBlocklist also blocks private ranges (ClusterIPs)
	// for CEL http calls.
	defaultBlocksPrivate bool
	// celNon2xxBody: CEL http.Get hands a non-2xx answer's JSON body to the policy, with a
	// statusCode key, instead of failing (1.18+): a policy reading only exists then admits an
	// unknown PVC as if it were fresh.
	celNon2xxBody bool
	// autoSet: the set the chart's policies.engine auto installs on this version, told
	// policies.kyverno.version and seeing the API versions its API server serves (chart README,
	// "Which policy set"): the CEL set, except where the version's defaults break it.
	autoSet string
	// sets: the expectations of each policy set on this version, by engine.
	sets map[string]setExpectations
	// layouts: the layout scenarios (the ${APP}/${APP}-dst layout in gate mode, blue/green) run
	// on this version. Every version today (they add about 25 s to a version's run); a version
	// on which they would cost too much can be left out here, and the support table says so.
	layouts bool
	// scopedTokenEnv: the controllers read the token they send on service calls from
	// $KYVERNO_SCOPED_TOKEN_PATH (1.18+); 1.17.2 reads /var/run/secrets/kyverno/apicall/token
	// only (pkg/engine/apicall/executor.go, getToken).
	scopedTokenEnv bool
	// mutatingNoResourceLib: a MutatingPolicy cannot evaluate the resource library (1.17.2:
	// "nil pointer dereference" evaluating a variable that reads a Secret with resource.Get), so
	// the CEL set with authentication, whose token comes from resource.Get, never mutates: the
	// ValidatingPolicy then denies the PVCs to restore (fail safe; README, "Who may ask").
	mutatingNoResourceLib bool
	// restic: the restic scenarios (upstream VolSync's controller and its restic mover script run
	// by the Job runner, backups restored byte for byte) run on this version: the newest only.
	// They prove that the movers and the oracle agree, which does not depend on Kyverno's version:
	// the Kyverno features the restic set uses (mutate, generate with data, apiCall / CEL http)
	// are the ones the Kopia scenarios prove on every version, and the restic set's kyverno test
	// suite runs with each version's CLI (make test-policies). On every version they would add
	// about 2 minutes of run time each to make test, past the 10 minutes the issue allows with
	// the VolSync build.
	restic bool
}

// setExpectations are the version-specific outcomes of one policy set.
type setExpectations struct {
	// hangDeniedCleanly: a hanging oracle gets the policy's denial; otherwise the webhook times
	// out and the API server answers 500 "context deadline exceeded" (the PVC is still refused).
	hangDeniedCleanly bool
	// unknownMessage is part of the denial when the oracle answers unknown.
	unknownMessage string
	// unknownReason: that denial also carries the oracle's reason (the e2e oracle's wrong
	// password).
	unknownReason bool
	// downMessage is part of the denial when the oracle is stopped.
	downMessage string
	// nearMissReason: the denial of a PVC whose only snapshots are a near miss carries the
	// oracle's reason (the near miss named); otherwise it carries unknownMessage without it.
	nearMissReason bool
	// maxCalls bounds the oracle calls of one labelled PVC (an upper bound: the oracle counts a
	// request after answering it, so a scrape can miss the last one).
	maxCalls int
	// generateRewritesRS: an update of a PVC makes the set's generate policy rewrite its existing
	// ReplicationSource (Kyverno 1.19's GeneratingPolicy, whatever synchronize says), dropping a
	// manual trigger set since (TestCutover).
	generateRewritesRS bool
}

const (
	// cpUnknownMessage: the policy's message around the oracle's answer. The policies ask with
	// ?unknownStatus=200: a non-2xx answer would be an apiCall error, replaced by the default
	// (the unknown payload), and the oracle's reason would be lost.
	cpUnknownMessage = "backup-oracle cannot say whether this PVC has a backup (decision unknown"
	// celUnknownMessage: CEL http.Get reads the 503 body of /readyz, which the CEL set checks first.
	celUnknownMessage = "backup-oracle is not ready ("
	// cpDownMessage: the ClusterPolicy set's apiCall default gives the policy's own message.
	cpDownMessage = "see the break-glass procedure in"
	// celDownMessage: a CEL http.Get error has no default, so the policy errors and its
	// failurePolicy (Fail) denies with Kyverno's error naming the policy: the MutatingPolicy,
	// whose webhook runs first.
	celDownMessage = "Policy backup-oracle-restore: failed to evaluate policy"
	// celContextError: Kyverno 1.17's error when a CEL http.Get fails or answers non-2xx (its
	// http.Get cannot read a 503 body): the ValidatingPolicy denies with it; its MutatingPolicy
	// lets the request through unmutated on that error.
	celContextError = "Policy backup-oracle-admission error: failed to load context: request failed:"
)

// kyvernoReleases are the versions the Makefile pins (KYVERNO_VERSIONS); the test fails if the
// two lists differ, so a version is never run without expectations, nor dropped silently.
var kyvernoReleases = []kyvernoRelease{ //nolint:gochecknoglobals // test table
	{
		version: "v1.17.2", layouts: true, mutatingNoResourceLib: true,
		autoSet: "clusterpolicy", // the CEL set only with auth.enabled=false (mutatingNoResourceLib)
		sets: map[string]setExpectations{
			// No --apiCallTimeout: a hanging oracle outlasts the webhook deadline.
			"clusterpolicy": {hangDeniedCleanly: false, unknownMessage: cpUnknownMessage, unknownReason: true, downMessage: cpDownMessage, nearMissReason: true, maxCalls: 2},
			// CEL http.Get errors on a non-2xx answer (the /readyz of a not-ready oracle: its reason
			// is lost), and a MutatingPolicy error does not deny: the ValidatingPolicy does, with
			// Kyverno's error. /exists is asked with ?unknownStatus=200, so a near miss is named.
			"cel": {hangDeniedCleanly: false, unknownMessage: celContextError + " HTTP 503", downMessage: celContextError, nearMissReason: true, maxCalls: 3},
		},
	},
	{
		version: "v1.18.2", layouts: true, scopedTokenEnv: true, hasAPICallTimeout: true, hasHTTPBlocklist: true, defaultBlocksCEL: true, defaultBlocksPrivate: true,
		celNon2xxBody: true, autoSet: "clusterpolicy", // the CEL set only with policies.kyverno.httpBlocklistOverridden
		sets: map[string]setExpectations{
			"clusterpolicy": {hangDeniedCleanly: true, unknownMessage: cpUnknownMessage, unknownReason: true, downMessage: cpDownMessage, nearMissReason: true, maxCalls: 2},
			"cel":           {hangDeniedCleanly: false, unknownMessage: celUnknownMessage, unknownReason: true, downMessage: celDownMessage, nearMissReason: true, maxCalls: 3},
		},
	},
	{
		version: "v1.19.1", layouts: true, restic: true, scopedTokenEnv: true, hasAPICallTimeout: true, hasHTTPBlocklist: true, defaultBlocksCEL: true, defaultBlocksAPICall: true,
		celNon2xxBody: true, autoSet: "cel",
		sets: map[string]setExpectations{
			"clusterpolicy": {hangDeniedCleanly: true, unknownMessage: cpUnknownMessage, unknownReason: true, downMessage: cpDownMessage, nearMissReason: true, maxCalls: 2},
			// Kyverno 1.19.1's CEL http.Get has no timeout (--apiCallTimeout does not apply to
			// it): with a hanging oracle the webhook times out.
			"cel": {hangDeniedCleanly: false, unknownMessage: celUnknownMessage, unknownReason: true, downMessage: celDownMessage, nearMissReason: true, maxCalls: 3,
				generateRewritesRS: true},
		},
	},
}

// kyvernoUnderTest is one version with the folder make e2e built it into: kubectl-kyverno,
// kyverno (admission controller), background-controller, cleanup-controller and crds/.
type kyvernoUnderTest struct {
	kyvernoRelease
	dir string
}

func (k kyvernoUnderTest) bin(name string) string { return filepath.Join(k.dir, name) }

// kyvernoVersions reads KYVERNO_BINS ("<version>=<folder> ...", set by make e2e) and pairs each
// version with its expectations. A missing variable fails in CI and skips elsewhere.
func kyvernoVersions(t *testing.T) []kyvernoUnderTest {
	t.Helper()

	env := os.Getenv("KYVERNO_BINS")
	if env == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("KYVERNO_BINS is not set (run through `make e2e`)")
		}

		t.Skip("KYVERNO_BINS is not set; run `make e2e`")
	}

	var got, want []string
	for _, r := range kyvernoReleases {
		want = append(want, r.version)
	}

	var out []kyvernoUnderTest

	for _, f := range strings.Fields(env) {
		version, dir, ok := strings.Cut(f, "=")
		require.True(t, ok, "KYVERNO_BINS entry %q is not <version>=<folder>", f)
		got = append(got, version)

		i := slices.IndexFunc(kyvernoReleases, func(r kyvernoRelease) bool { return r.version == version })
		if i < 0 {
			continue
		}

		for _, name := range []string{"kyverno", "background-controller", "cleanup-controller", "crds"} {
			_, err := os.Stat(filepath.Join(dir, name))
			require.NoError(t, err, "Kyverno %s", version)
		}

		out = append(out, kyvernoUnderTest{kyvernoRelease: kyvernoReleases[i], dir: dir})
	}

	require.Equal(t, want, got, "the Kyverno versions of the Makefile (KYVERNO_VERSIONS) and of kyvernoReleases must be the same")

	return out
}
