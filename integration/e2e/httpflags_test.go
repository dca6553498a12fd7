//go:build e2e

package e2e

import (
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// defaultsNamespace holds the probe PVCs of the default-HTTP-flags checks; the repository
// holds a backup of its PVC "probe".
const defaultsNamespace = "e2e-defaults"

// clusterIPURL is an address of the usual Service range (kubeadm's 10.96.0.0/12). It is only
// called where the version's default blocklist must refuse it before any connection is
// attempted, so the test never sends traffic there.
const clusterIPURL = "http://10.96.0.10:8080"

// defaultHTTPFlags checks what each policy set's service calls can reach with the version's
// default HTTP flags (the admission controller runs without --httpBlocklist): the oracle on
// loopback, and for the CEL set on a version whose defaults block private ranges, a ClusterIP.
func defaultHTTPFlags(t *testing.T, k *kube, helm string, kv kyvernoUnderTest, o *oracle, results *measurements) {
	k.mustOK(t, http.MethodPost, "/api/v1/namespaces", map[string]any{"metadata": map[string]any{"name": defaultsNamespace}}, "")
	r := &run{t: t, maxCalls: 3, k: k, o: o, set: kv.version + "/default-flags", engine: "defaults", ns: defaultsNamespace, results: results}

	// The admission policies of each set, and nothing else.
	cp := policySet{engine: "clusterpolicy", templates: []string{"clusterpolicy-admission"}, kinds: []string{"clusterpolicies.kyverno.io"}}
	cel := policySet{engine: "cel", templates: []string{"cel-validate", "cel-mutate"},
		kinds: []string{"validatingpolicies.policies.kyverno.io", "mutatingpolicies.policies.kyverno.io"}}

	cases := []struct {
		set     policySet
		url     string
		blocked bool
		message string // part of the denial when blocked
	}{
		{cp, o.URL(), kv.defaultBlocksAPICall, cpDownMessage},
		{cel, o.URL(), kv.defaultBlocksCEL, "blocked range 127.0.0.0/8"},
	}
	if kv.defaultBlocksPrivate {
		cases = append(cases, struct {
			set     policySet
			url     string
			blocked bool
			message string
		}{cel, clusterIPURL, true, "blocked range 10.0.0.0/8"})
	}

	for _, c := range cases {
		args := []string{"--set", "policies.engine=" + c.set.engine, "--set", "policies.oracleURL=" + c.url}
		for _, tpl := range c.set.templates {
			args = append(args, "--show-only", "templates/policies/"+tpl+".yaml")
		}

		manifests := render(t, helm, "default", args...)
		c.set.install(t, k, manifests)

		scenario := c.set.engine + " to " + c.url
		res := r.create(scenario, defaultsNamespace, "probe", "hourly")

		if c.blocked {
			assert.Contains(t, []int{http.StatusBadRequest, http.StatusForbidden}, res.Code, "%s: %s", scenario, res.Raw)
			assert.Contains(t, res.Message(), c.message, "%s: the denial", scenario)
			assert.Equal(t, 0, r.last.calls, "%s: the oracle was called", scenario)
		} else {
			require.Equal(t, http.StatusCreated, res.Code, "%s: %s", scenario, res.Raw)
			assert.Equal(t, "probe-backup", str(res.Body, "spec", "dataSourceRef", "name"), "%s: restored", scenario)
			assert.Positive(t, r.last.calls, "%s: oracle calls", scenario)
		}

		if res.Code == http.StatusCreated { // the next case creates it again
			k.mustOK(t, http.MethodDelete, pvcPath(defaultsNamespace, "probe"), nil, "")
			k.mustOK(t, http.MethodPatch, pvcPath(defaultsNamespace, "probe"),
				map[string]any{"metadata": map[string]any{"finalizers": nil}}, "application/merge-patch+json")
			r.waitFor(pvcPath(defaultsNamespace, "probe"), false, 10*time.Second)
		}

		c.set.uninstall(t, k, manifests)
	}
}

// controllerFlags checks that each controller of the version has --apiCallTimeout and
// --httpBlocklist, or refuses to start with them (an unknown flag stops a Kyverno controller:
// the README's flags are version-specific).
func controllerFlags(t *testing.T, kv kyvernoUnderTest) {
	for _, bin := range []string{"kyverno", "background-controller", "cleanup-controller"} {
		for _, f := range []struct {
			arg  string
			want bool
		}{{"--apiCallTimeout=5s", kv.hasAPICallTimeout}, {"--httpBlocklist=" + e2eHTTPBlocklist, kv.hasHTTPBlocklist}} {
			// Flags are parsed in order: an unknown flag fails before --help prints the usage.
			out, _ := exec.Command(kv.bin(bin), f.arg, "--help").CombinedOutput() //nolint:gosec // pinned tool
			name, _, _ := strings.Cut(strings.TrimPrefix(f.arg, "--"), "=")
			undefined := strings.Contains(string(out), "flag provided but not defined: -"+name)
			assert.Equal(t, !f.want, undefined, "%s %s: %s", bin, f.arg, lastLines(string(out), 3))
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")

	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
