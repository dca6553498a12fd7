package test

import (
	"bytes"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The API versions a cluster serves as Helm lists them (group/version and group/version/kind), for
// --api-versions. Kyverno 1.17.2, 1.18.2 and 1.19.1 serve the same ones (their CRDs, in
// .tools/kyverno-bin-<version>/crds: policies.kyverno.io v1, v1beta1, v1alpha1; kyverno.io v1,
// v2); Kyverno before 1.17 has no policies.kyverno.io/v1; the 1.21 plan drops kyverno.io.
var (
	kyverno117To119 = []string{"kyverno.io/v1", "kyverno.io/v1/ClusterPolicy", "kyverno.io/v2", "kyverno.io/v2/ClusterCleanupPolicy",
		"policies.kyverno.io/v1", "policies.kyverno.io/v1/ValidatingPolicy", "policies.kyverno.io/v1/MutatingPolicy",
		"policies.kyverno.io/v1/GeneratingPolicy", "policies.kyverno.io/v1/DeletingPolicy", "policies.kyverno.io/v1beta1"}
	kyvernoBefore117 = []string{"kyverno.io/v1", "kyverno.io/v1/ClusterPolicy", "kyverno.io/v2", "kyverno.io/v2/ClusterCleanupPolicy"}
	kyvernoCELOnly   = []string{"policies.kyverno.io/v1", "policies.kyverno.io/v1/ValidatingPolicy"}
)

// The kinds of each set, as the policy templates render them.
var (
	celKinds           = []string{"DeletingPolicy", "GeneratingPolicy", "MutatingPolicy", "ValidatingPolicy"}
	clusterPolicyKinds = []string{"ClusterCleanupPolicy", "ClusterPolicy"}
)

var (
	renderedKind  = regexp.MustCompile(`(?m)^kind: (\S+)$`)
	setComment    = regexp.MustCompile(`(?m)^# backup-oracle policy set: (\S+); (.+)\.$`)
	setDocHeading = regexp.MustCompile(`(?m)^# Source: backup-oracle/templates/policies/((?:cel|clusterpolicy)-\S+)$`)
)

// TestPolicySetChoice: which set policies.engine installs, from what the chart is told
// (policies.kyverno.*) and what it sees (the API versions), as the chart README's table
// "Which policy set" states it; each rendered policy file names the set and why; where no set
// can act, or the chart cannot tell whether the CEL set can, the render is refused with a
// sentence.
func TestPolicySetChoice(t *testing.T) {
	cases := []struct {
		name    string
		engine  string // policies.engine; empty: the chart's default
		version string // policies.kyverno.version
		blockOK bool   // policies.kyverno.httpBlocklistOverridden
		noAuth  bool   // auth.enabled=false
		apis    []string
		want    string // cel, clusterpolicy, none; or "refused: <part of the sentence>"
		why     string // part of the reason in the comment
	}{
		{name: "default, no cluster", want: "cel", why: "rendered without a cluster"},
		{name: "1.17 stated", version: "1.17.2", want: "clusterpolicy", why: "Kyverno 1.17.2's MutatingPolicy cannot read the token"},
		{name: "1.17 stated, authentication off", version: "1.17.2", noAuth: true, want: "cel", why: "Kyverno 1.17.2 serves the CEL policies"},
		{name: "cel on 1.17 with authentication", engine: "cel", version: "1.17.2", want: "refused: MutatingPolicy cannot read the token"},
		{name: "1.18 stated", version: "1.18.2", want: "clusterpolicy", why: "default --httpBlocklist refuses CEL http calls"},
		{name: "1.18 stated, blocklist overridden", version: "v1.18.2", blockOK: true, want: "cel", why: "(--httpBlocklist overridden)"},
		{name: "1.18 minor stated", version: "1.18", want: "clusterpolicy", why: "Kyverno 1.18's default --httpBlocklist"},
		{name: "1.19 stated", version: "1.19.1", want: "cel", why: "Kyverno 1.19.1 serves"},
		{name: "1.20 stated", version: "1.20.0", want: "cel", why: "Kyverno 1.20.0 serves"},
		{name: "1.16 stated", version: "1.16.3", want: "clusterpolicy", why: "Kyverno 1.16.3 has no policies.kyverno.io/v1"},
		{name: "cluster before 1.17", apis: kyvernoBefore117, want: "clusterpolicy", why: "without policies.kyverno.io/v1"},
		{name: "cluster 1.17+, version unknown", apis: kyverno117To119, want: "refused: Set policies.kyverno.version"},
		{name: "cluster 1.17+ (group/version only), version unknown", apis: []string{"policies.kyverno.io/v1"}, want: "refused: cannot see which Kyverno"},
		{name: "cluster 1.17+, 1.19 stated", apis: kyverno117To119, version: "1.19.1", want: "cel", why: "Kyverno 1.19.1 serves"},
		{name: "cluster 1.17+, 1.18 stated", apis: kyverno117To119, version: "1.18.2", want: "clusterpolicy", why: "--httpBlocklist"},
		{name: "cluster 1.17+, 1.18 overridden", apis: kyverno117To119, version: "1.18.2", blockOK: true, want: "cel", why: "overridden"},
		{name: "cluster before 1.17, 1.20 stated", apis: kyvernoBefore117, version: "1.20.0", want: "refused: neither set would act"},
		{name: "cel, no cluster", engine: "cel", want: "cel", why: "policies.engine=cel"},
		{name: "cel on 1.18", engine: "cel", version: "1.18.2", want: "refused: set policies.kyverno.httpBlocklistOverridden=true"},
		{name: "cel on 1.18 overridden", engine: "cel", version: "1.18.2", blockOK: true, want: "cel", why: "policies.engine=cel"},
		{name: "cel on 1.16", engine: "cel", version: "1.16.3", want: "refused: has no policies.kyverno.io/v1"},
		{name: "cel, cluster before 1.17", engine: "cel", apis: kyvernoBefore117, want: "refused: without policies.kyverno.io/v1"},
		{name: "cel, cluster 1.17+, version unknown", engine: "cel", apis: kyverno117To119, want: "refused: Set policies.kyverno.version"},
		{name: "clusterpolicy, cluster 1.17+", engine: "clusterpolicy", apis: kyverno117To119, want: "clusterpolicy", why: "policies.engine=clusterpolicy"},
		{name: "clusterpolicy on 1.20", engine: "clusterpolicy", version: "1.20.0", want: "refused: removes the engine that runs ClusterPolicies"},
		{name: "clusterpolicy, cluster without ClusterPolicy", engine: "clusterpolicy", apis: kyvernoCELOnly, want: "refused: does not serve kyverno.io/v1 ClusterPolicy"},
		{name: "none, cluster 1.17+", engine: "none", apis: kyverno117To119, want: "none"},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"-f", "../testdata/values/default.yaml", "--set", "policies.kyverno.version=" + tc.version}
			if tc.engine != "" {
				args = append(args, "--set", "policies.engine="+tc.engine)
			}

			if tc.noAuth {
				args = append(args, "--set", "auth.enabled=false")
			}

			if tc.blockOK {
				args = append(args, "--set", "policies.kyverno.httpBlocklistOverridden=true")
			}

			for _, api := range tc.apis {
				args = append(args, "--api-versions", api)
			}

			out, err := render(t, args...)

			if sentence, refused := strings.CutPrefix(tc.want, "refused: "); refused {
				if err == nil || !strings.Contains(out, sentence) {
					t.Fatalf("want the render refused with %q, got %v:\n%s", sentence, err, out)
				}

				return
			}

			if err != nil {
				t.Fatalf("helm template %v: %v\n%s", args, err, out)
			}

			checkSet(t, out, tc.want, tc.why)
		})
	}
}

// checkSet checks that a rendering holds exactly the kinds of set, and that every policy file
// says so with why.
func checkSet(t *testing.T, out, set, why string) {
	t.Helper()

	var kinds []string

	for _, m := range renderedKind.FindAllStringSubmatch(out, -1) {
		if slices.Contains(celKinds, m[1]) || slices.Contains(clusterPolicyKinds, m[1]) {
			kinds = append(kinds, m[1])
		}
	}

	slices.Sort(kinds)
	kinds = slices.Compact(kinds)

	want := map[string][]string{"cel": celKinds, "clusterpolicy": clusterPolicyKinds, "none": nil}[set]
	if !slices.Equal(kinds, want) {
		t.Errorf("policy kinds rendered: %v, want the %s set's %v", kinds, set, want)
	}

	files := map[string]bool{}
	for _, m := range setDocHeading.FindAllStringSubmatch(out, -1) {
		files[m[1]] = true
	}

	comments := setComment.FindAllStringSubmatch(out, -1)
	if len(comments) != len(files) {
		t.Errorf("%d policy set comments in %d policy files, want one per file", len(comments), len(files))
	}

	for _, c := range comments {
		if c[1] != set || !strings.Contains(c[2], why) {
			t.Errorf("comment says %q (%s), want %s and %q", c[1], c[2], set, why)
		}
	}
}

// TestPolicySetNotes: helm install prints which set it installs and why, and the controller
// flags that set needs.
func TestPolicySetNotes(t *testing.T) {
	cases := []struct {
		args []string
		want []string
		not  []string
	}{
		{nil, []string{"Kyverno policies: the CEL set; policies.engine=auto, rendered without a cluster", "--httpBlocklist=127.0.0.0/8"}, []string{"--apiCallTimeout=5s"}},
		{[]string{"--set", "policies.kyverno.version=1.18.2"}, []string{"Kyverno policies: the ClusterPolicy set; policies.engine=auto: Kyverno 1.18.2's default --httpBlocklist", "--apiCallTimeout=5s"}, []string{"--httpBlocklist="}},
		{[]string{"--set", "policies.engine=none"}, nil, []string{"Kyverno policies"}},
	}

	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			args := append([]string{"install", release, chartDir, "--namespace", namespace, "--dry-run=client", "-f", "../testdata/values/default.yaml"}, tc.args...)
			cmd := exec.Command(helmBin(t), args...)
			cmd.Env = append(cmd.Environ(), "KUBECONFIG="+t.TempDir()+"/none") // client-side: no cluster

			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr

			if err := cmd.Run(); err != nil {
				t.Fatalf("helm %v: %v\n%s", args, err, stderr.String())
			}

			_, notes, ok := strings.Cut(stdout.String(), "\nNOTES:\n")
			if !ok {
				t.Fatalf("no NOTES in:\n%s", stdout.String())
			}

			for _, w := range tc.want {
				if !strings.Contains(notes, w) {
					t.Errorf("NOTES lack %q:\n%s", w, notes)
				}
			}

			for _, n := range tc.not {
				if strings.Contains(notes, n) {
					t.Errorf("NOTES have %q:\n%s", n, notes)
				}
			}
		})
	}
}
