// Package test checks the backup-oracle Helm chart: golden renders, schema rejections, the
// policies/ directory against the chart's default render, and every VolSync resource the policy
// tests expect against the VolSync CRDs. It is its own module so that its YAML dependency stays
// out of the service's go.mod.
package test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files and policies/ from the chart")

const (
	chartDir    = ".."
	policiesDir = "../../policies"
	release     = "backup-oracle"
	namespace   = "backup-oracle"
)

// helmBin returns the helm binary from HELM_BIN; a missing tool skips locally and fails in CI.
func helmBin(t *testing.T) string {
	t.Helper()

	bin := os.Getenv("HELM_BIN")
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("HELM_BIN is not set (run through `make test-chart`)")
		}

		t.Skip("HELM_BIN is not set; run through `make test-chart`")
	}

	return bin
}

// render runs helm template with the given values files and extra arguments.
func render(t *testing.T, args ...string) (string, error) {
	t.Helper()

	cmd := exec.Command(helmBin(t), append([]string{"template", release, chartDir, "--namespace", namespace}, args...)...)

	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr

	if err := cmd.Run(); err != nil {
		return stderr.String(), err
	}

	return stdout.String(), nil
}

func mustRender(t *testing.T, args ...string) string {
	t.Helper()

	out, err := render(t, args...)
	if err != nil {
		t.Fatalf("helm template %v: %v\n%s", args, err, out)
	}

	return out
}

// compareOrUpdate compares got with the file at path, or writes it with -update.
func compareOrUpdate(t *testing.T, path, got string) {
	t.Helper()

	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}

		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}

		return
	}

	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run `make update-golden`)", err)
	}

	if string(want) != got {
		t.Errorf("%s differs from the chart's render; run `make update-golden` and review the diff.\n%s", path, firstDiff(string(want), got))
	}
}

func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}

		if i < len(g) {
			gl = g[i]
		}

		if wl != gl {
			return "line " + strconv.Itoa(i+1) + ":\n  want: " + wl + "\n  got:  " + gl
		}
	}

	return ""
}

func valueSets(t *testing.T) []string {
	t.Helper()

	files, err := filepath.Glob("../testdata/values/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no value sets in ../testdata/values: %v", err)
	}

	return files
}

// TestGolden renders every value set and compares it with its golden file.
func TestGolden(t *testing.T) {
	for _, values := range valueSets(t) {
		name := strings.TrimSuffix(filepath.Base(values), ".yaml")
		t.Run(name, func(t *testing.T) {
			compareOrUpdate(t, filepath.Join("../testdata/golden", name+".yaml"), normaliseGenerated(t, mustRender(t, "-f", values)))
		})
	}
}

var (
	// A PEM certificate as written in a YAML block (each line indented alike) and as a JSON
	// string (in a CEL expression); the generated Secrets' base64 values.
	pemBlockRe  = regexp.MustCompile(`(?m)^([ \t]*)-----BEGIN CERTIFICATE-----\n(?:[ \t]*[A-Za-z0-9+/=]+\n)+[ \t]*-----END CERTIFICATE-----`)
	pemJSONRe   = regexp.MustCompile(`-----BEGIN CERTIFICATE-----\\n(?:[A-Za-z0-9+/=]+\\n)+-----END CERTIFICATE-----(?:\\n)?`)
	generatedRe = regexp.MustCompile(`(?m)^(  (?:ca\.crt|tls\.crt|tls\.key|token): )[A-Za-z0-9+/=]+$`)
)

// normaliseGenerated replaces what the chart generates at each render (the CA, the serving
// certificate and key, the policies' token) by fixed text: the example CA of
// testdata/example-ca.pem (a valid certificate, as the ClusterPolicies' caBundle must be in
// kyverno test) and base64("generated").
func normaliseGenerated(t *testing.T, out string) string {
	t.Helper()

	example, err := os.ReadFile("testdata/example-ca.pem")
	if err != nil {
		t.Fatal(err)
	}

	pem := strings.TrimSpace(string(example))
	out = pemBlockRe.ReplaceAllStringFunc(out, func(m string) string {
		indent := m[:len(m)-len(strings.TrimLeft(m, " \t"))]
		return indent + strings.ReplaceAll(pem, "\n", "\n"+indent)
	})

	jsonPEM, _ := json.Marshal(pem + "\n")
	out = pemJSONRe.ReplaceAllLiteralString(out, strings.Trim(string(jsonPEM), `"`))

	return generatedRe.ReplaceAllString(out, "${1}Z2VuZXJhdGVk")
}

var wantRe = regexp.MustCompile(`(?m)^# want: (.+)$`)

// TestSchemaRejects checks that values.schema.json rejects every file in testdata/bad, for the
// reason its "# want:" line names.
func TestSchemaRejects(t *testing.T) {
	for _, values := range globValues(t, "../testdata/bad/*.yaml") {
		t.Run(filepath.Base(values), func(t *testing.T) {
			want, out := renderRefused(t, values)
			if !strings.Contains(out, "schema") || !strings.Contains(out, want) {
				t.Errorf("error does not mention the schema and %q:\n%s", want, out)
			}
		})
	}
}

// TestTemplateRefuses: values the schema cannot judge (they depend on each other) are refused by
// the templates with a sentence saying what to do (chart/testdata/refused/*.yaml, each with a
// '# want: <substring of the sentence>' line), for both policy sets.
func TestTemplateRefuses(t *testing.T) {
	for _, values := range globValues(t, "../testdata/refused/*.yaml") {
		for _, engine := range []string{"clusterpolicy", "cel"} {
			t.Run(filepath.Base(values)+"/"+engine, func(t *testing.T) {
				want, out := renderRefused(t, values, "--set", "policies.engine="+engine)
				if strings.Contains(out, "nil pointer") || !strings.Contains(out, want) {
					t.Errorf("the refusal does not say %q:\n%s", want, out)
				}
			})
		}
	}
}

func globValues(t *testing.T, pattern string) []string {
	t.Helper()

	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		t.Fatalf("no value sets %s: %v", pattern, err)
	}

	return files
}

// renderRefused renders the chart with values (and args), which must fail; it returns the
// substring the file's "# want:" line expects in the error, and the output.
func renderRefused(t *testing.T, values string, args ...string) (want, out string) {
	t.Helper()

	content, err := os.ReadFile(values)
	if err != nil {
		t.Fatal(err)
	}

	m := wantRe.FindSubmatch(content)
	if m == nil {
		t.Fatal("missing a '# want: <substring of the error>' line")
	}

	out, err = render(t, append([]string{"-f", values}, args...)...)
	if err == nil {
		t.Fatal("helm template accepted values the chart must refuse")
	}

	return string(m[1]), out
}

// policySets are the directories of policies/ and the chart values each is rendered from: every
// layout, mover and mode with each set (the CEL set's directory is the ClusterPolicy set's with
// -cel, except the defaults' clusterpolicy and cel). policies/parity_test.go holds their kyverno
// test suites to the same cases.
var policySets = map[string][]string{
	"clusterpolicy": {"-f", "../testdata/values/default.yaml", "--set", "policies.engine=clusterpolicy"},
	"cel":           {"-f", "../testdata/values/default.yaml", "--set", "policies.engine=cel"},
	"restic":        {"-f", "../testdata/values/restic.yaml", "--set", "policies.engine=clusterpolicy"},
	"restic-cel":    {"-f", "../testdata/values/restic.yaml", "--set", "policies.engine=cel"},
	// Fitting existing setups (README, "Fitting an existing setup"): the ${APP}/${APP}-dst layout in
	// gate mode, every identity setting, another snapshot path.
	"app-layout":          {"-f", "../testdata/values/app-layout.yaml", "--set", "policies.engine=clusterpolicy"},
	"app-layout-cel":      {"-f", "../testdata/values/app-layout.yaml", "--set", "policies.engine=cel"},
	"custom-identity":     {"-f", "../testdata/values/custom-identity.yaml", "--set", "policies.engine=clusterpolicy"},
	"custom-identity-cel": {"-f", "../testdata/values/custom-identity.yaml", "--set", "policies.engine=cel"},
	"custom-path":         {"-f", "../testdata/values/custom-path.yaml", "--set", "policies.engine=clusterpolicy"},
	"custom-path-cel":     {"-f", "../testdata/values/custom-path.yaml", "--set", "policies.engine=cel"},
	// Migrating from the predecessor (README): its <pvc>-volsync identity, its store's key names
	// mapped onto the mover's, KOPIA_REPOSITORY where the movers mount the NFS export.
	"predecessor":     {"-f", "../testdata/values/predecessor.yaml", "--set", "policies.engine=clusterpolicy"},
	"predecessor-cel": {"-f", "../testdata/values/predecessor.yaml", "--set", "policies.engine=cel"},
	// Blue/green (README, "Blue/green migration"): two backends, the RD restoring from the one the
	// oracle names, the RS backing up to the own one.
	"blue-green":     {"-f", "../testdata/values/blue-green.yaml", "--set", "policies.engine=clusterpolicy"},
	"blue-green-cel": {"-f", "../testdata/values/blue-green.yaml", "--set", "policies.engine=cel"},
}

// TestPoliciesMatchRender checks that policies/<set>/ holds exactly the chart's policy templates
// rendered for that set.
func TestPoliciesMatchRender(t *testing.T) {
	for set, args := range policySets {
		t.Run(set, func(t *testing.T) {
			docs := splitBySource(mustRender(t, args...))

			var names []string
			for source, doc := range docs {
				if !strings.HasPrefix(source, "templates/policies/") {
					continue
				}

				name := filepath.Base(source)
				names = append(names, name)
				compareOrUpdate(t, filepath.Join(policiesDir, set, name), normaliseGenerated(t, doc))
			}

			if len(names) == 0 {
				t.Fatal("the render holds no policies")
			}

			existing, _ := filepath.Glob(filepath.Join(policiesDir, set, "*.yaml"))
			sort.Strings(names)

			for _, path := range existing {
				if i := sort.SearchStrings(names, filepath.Base(path)); i == len(names) || names[i] != filepath.Base(path) {
					t.Errorf("%s is not rendered by the chart any more; delete it", path)
				}
			}
		})
	}
}

// splitBySource groups helm template output by its "# Source:" template path.
func splitBySource(out string) map[string]string {
	docs := map[string]string{}

	for _, doc := range strings.Split(out, "\n---\n") {
		doc = strings.TrimPrefix(doc, "---\n")

		first, rest, _ := strings.Cut(doc, "\n")
		source, ok := strings.CutPrefix(first, "# Source: ")
		if !ok {
			continue
		}

		source = strings.TrimPrefix(source, release+"/")
		if prev, ok := docs[source]; ok {
			docs[source] = prev + "---\n" + strings.TrimSpace(rest) + "\n"
		} else {
			docs[source] = strings.TrimSpace(rest) + "\n"
		}
	}

	return docs
}

// TestMemoryAlertThresholds: the memory alerts' thresholds are computed from the quantities the
// values hold (Kubernetes' binary and decimal suffixes, Go's KiB/MiB/GiB), and a quantity the
// chart cannot read fails the render with the reason.
func TestMemoryAlertThresholds(t *testing.T) {
	cases := []struct {
		limit, goMemLimit string
		memoryExpr        string // threshold of BackupOracleMemoryNearLimit: 80 % of the limit
		indexExpr         string // threshold of BackupOracleIndexNearMemoryLimit: 50 % of goMemLimit
	}{
		{"256Mi", "96MiB", "214748364", "50331648"},      // 268435456*0.8, 100663296*0.5
		{"1Gi", "512MiB", "858993459", "268435456"},      // 1073741824*0.8, 536870912*0.5
		{"500M", "300000000B", "400000000", "150000000"}, // decimal suffix, bytes
	}

	sel := `{namespace="` + namespace + `", service="` + release + `"}) > `
	values := []string{"-f", "../testdata/values/default.yaml", "--set", "prometheusRule.enabled=true"}

	for _, tc := range cases {
		t.Run(tc.limit, func(t *testing.T) {
			out := mustRender(t, append(values, "--set", "resources.limits.memory="+tc.limit, "--set", "config.goMemLimit="+tc.goMemLimit)...)

			for _, want := range []string{
				"max(process_resident_memory_bytes" + sel + tc.memoryExpr + "\n",
				"max(backup_oracle_index_bytes" + sel + tc.indexExpr + "\n",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("render has no %q", want)
				}
			}
		})
	}

	out, err := render(t, append(values, "--set", "resources.limits.memory=1.5Gi")...)
	if err == nil || !strings.Contains(out, `cannot read the memory quantity "1.5Gi"`) {
		t.Errorf("a quantity the chart cannot read must fail the render with the reason, got %v:\n%s", err, out)
	}
}
