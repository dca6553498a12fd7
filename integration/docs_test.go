package integration

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/backup-oracle/backup-oracle/integration/harness"
)

// The documentation's claims a test can check, checked: README.md, chart/README.md and
// policies/README.md name only settings, metrics, chart values and files that exist, and the
// demo answers what README's first example block says it answers.

var docs = []string{"../README.md", "../chart/README.md", "../policies/README.md"}

func readDoc(t *testing.T, path string) string {
	t.Helper()

	b, err := os.ReadFile(path)
	require.NoError(t, err)

	return string(b)
}

// TestReadmeDemoAnswers: every `curl` line of README's `make run` block whose comment starts with
// the answer (restore, fresh, unknown, 400) gets that answer from the demo.
func TestReadmeDemoAnswers(t *testing.T) {
	readme := readDoc(t, "../README.md")
	start := strings.Index(readme, "`make run` prints something like:")
	require.Positive(t, start)

	block := readme[start:]
	end := strings.Index(block, "\n```\n\n")
	require.Positive(t, end, "the block ends")
	block = block[:end]

	line := regexp.MustCompile(`curl -s '?http://localhost:8080(/exists/[^ ']+)'?\s+# (restore|fresh|unknown|400)\b`)
	cases := line.FindAllStringSubmatch(block, -1)
	require.GreaterOrEqual(t, len(cases), 6, "the block's examples were found")

	o := harness.StartOracle(t, harness.OracleOptions{Bin: oracleBin, Env: []string{"DEMO=true", "STATE_DIR=" + t.TempDir()}})
	o.WaitReady(t, 2*time.Minute)

	for _, c := range cases {
		path, want := c[1], c[2]
		if strings.Contains(path, "…") {
			continue // an abbreviated name
		}

		r := o.Get(t, path)
		if want == "400" {
			assert.Equal(t, http.StatusBadRequest, r.Code, path)
			continue
		}

		assert.Equal(t, want, r.Body["decision"], "%s: %v", path, r.Body)
	}
}

// TestDocsNameRealSettings: every environment variable README's configuration tables name is
// one the binary reads (its --help lists it), and every one --help lists is documented.
func TestDocsNameRealSettings(t *testing.T) {
	help, err := exec.Command(oracleBin, "--help").CombinedOutput() //nolint:gosec // the binary under test
	require.NoError(t, err, "%s", help)

	read := map[string]bool{}
	for _, m := range regexp.MustCompile(`\[\$([A-Z0-9_]+)(?:, \$([A-Z0-9_]+))?\]`).FindAllStringSubmatch(string(help), -1) {
		for _, v := range m[1:] {
			if v != "" {
				read[v] = true
			}
		}
	}

	require.Greater(t, len(read), 30, "--help lists the settings: %s", help)

	readme := readDoc(t, "../README.md")
	cfgAt := strings.Index(readme, "\n## Configuration\n")
	require.Positive(t, cfgAt, "README has a Configuration section")
	cfg := readme[cfgAt:]
	cfgEnd := strings.Index(cfg, "\n### Several backends at once\n")
	require.Positive(t, cfgEnd, "the Configuration section is followed by Several backends at once")
	cfg = cfg[:cfgEnd]

	documented := map[string]bool{}

	for _, row := range strings.Split(cfg, "\n") {
		if !strings.HasPrefix(row, "| `") {
			continue
		}

		first := strings.SplitN(row, "|", 3)[1]
		for _, m := range regexp.MustCompile("`([A-Z][A-Z0-9_]+)`").FindAllStringSubmatch(first, -1) {
			documented[m[1]] = true
			assert.True(t, read[m[1]], "README's configuration names %s, which the binary does not read", m[1])
		}
	}

	for v := range read {
		if v == "KUBECONFIG" {
			continue // the Kubernetes clients' own variable, documented with the gate self-test
		}

		assert.True(t, documented[v] || strings.Contains(readme, "`"+v+"`"), "%s is read by the binary but not documented in README", v)
	}
}

// TestDocsNameRealMetrics: every backup_oracle_* metric the documentation names is one the
// program defines (its name is in the program's non-test Go source).
func TestDocsNameRealMetrics(t *testing.T) {
	var source strings.Builder

	require.NoError(t, filepath.WalkDir("..", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}

		if d.IsDir() && (d.Name() == ".tools" || d.Name() == ".git" || d.Name() == "bin" || d.Name() == "integration") {
			return filepath.SkipDir
		}

		if strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}

			source.Write(b)
		}

		return nil
	}))

	src := source.String()
	name := regexp.MustCompile(`\bbackup_oracle_[a-z0-9_]*[a-z0-9]`)

	for _, doc := range docs {
		for _, m := range name.FindAllString(readDoc(t, doc), -1) {
			base := m
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				base = strings.TrimSuffix(base, suffix)
			}

			assert.True(t, strings.Contains(src, `"`+base+`"`), "%s names %s, which the program does not define", doc, m)
		}
	}
}

// TestChartReadmeValuesExist: the values chart/README.md's table documents exist in
// chart/values.yaml.
func TestChartReadmeValuesExist(t *testing.T) {
	raw, err := os.ReadFile("../chart/values.yaml")
	require.NoError(t, err)

	var values map[string]any
	require.NoError(t, yaml.Unmarshal(raw, &values))

	n := 0

	for _, row := range strings.Split(readDoc(t, "../chart/README.md"), "\n") {
		if !strings.HasPrefix(row, "| `") {
			continue
		}

		first := strings.SplitN(row, "|", 3)[1]
		items := regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(first, -1)

		if len(items) == 0 || !regexp.MustCompile(`^[a-z][A-Za-z0-9]*[.\[]`).MatchString(items[0][1]) {
			continue // not a values row
		}

		parent := ""

		for i, it := range items {
			p := it[1]

			switch {
			case i == 0:
				if j := strings.LastIndexByte(strings.Split(p, "/")[0], '.'); j >= 0 {
					parent = p[:j]
				}
			case strings.HasPrefix(p, "."):
				p = parent + p
			case !strings.Contains(p, "."):
				p = parent + "." + p
			}

			for _, path := range expandValuePath(p) {
				n++
				assert.True(t, hasValue(values, path), "chart/README.md documents %s, which chart/values.yaml does not have", path)
			}
		}
	}

	assert.Greater(t, n, 40, "the values table was read")
}

// expandValuePath expands the table's shorthands: "a.b/c" (b and c), "a.{b,c}" and "a.*"/"a[]".
func expandValuePath(p string) []string {
	p = strings.TrimSuffix(strings.TrimSuffix(p, ".*"), "[]")
	p = strings.ReplaceAll(p, "[].", ".")

	if i := strings.IndexByte(p, '{'); i >= 0 {
		j := strings.IndexByte(p, '}')

		var out []string
		for _, alt := range strings.Split(p[i+1:j], ",") {
			out = append(out, expandValuePath(p[:i]+alt+p[j+1:])...)
		}

		return out
	}

	if i := strings.LastIndexByte(p, '.'); i >= 0 && strings.Contains(p[i:], "/") {
		var out []string
		for _, alt := range strings.Split(p[i+1:], "/") {
			out = append(out, p[:i+1]+alt)
		}

		return out
	}

	return []string{p}
}

// hasValue reports whether values holds the dotted path; a list's items are looked into.
func hasValue(values map[string]any, path string) bool {
	var cur any = values

	for _, part := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return true // below a list or a free-form map (backends[], extraEnv): not checked
		}

		if cur, ok = m[part]; !ok {
			return false
		}
	}

	return true
}

// TestDocsLinksExist: the relative links of the documentation point at files that exist.
func TestDocsLinksExist(t *testing.T) {
	link := regexp.MustCompile(`\]\(([^)#:]+)(#[^)]*)?\)`)

	for _, doc := range docs {
		for _, m := range link.FindAllStringSubmatch(readDoc(t, doc), -1) {
			target := filepath.Join(filepath.Dir(doc), m[1])
			_, err := os.Stat(target)
			assert.NoError(t, err, "%s links to %s", doc, m[1])

			if m[2] != "" && err == nil && strings.HasSuffix(target, ".md") {
				assert.Contains(t, headingAnchors(t, target), m[2][1:], "%s links to a heading of %s", doc, m[1])
			}
		}

		// Links within the same document: [text](#anchor).
		anchors := headingAnchors(t, doc)
		for _, m := range regexp.MustCompile(`\]\(#([^)]+)\)`).FindAllStringSubmatch(readDoc(t, doc), -1) {
			assert.Contains(t, anchors, m[1], "%s links to its own heading #%s", doc, m[1])
		}
	}
}

// headingAnchors are the anchors GitHub gives the headings of a Markdown file: lower case,
// punctuation other than '-' and '_' removed, spaces as '-', a repeated one suffixed -1, -2...
// (github/cmark-gfm's extension and GitHub's renderer; restated, not copied). Headings inside
// fenced code blocks are not headings.
func headingAnchors(t *testing.T, doc string) map[string]bool {
	t.Helper()

	anchors := map[string]bool{}
	seen := map[string]int{}
	inFence := false

	for _, line := range strings.Split(readDoc(t, doc), "\n") {
		if strings.HasPrefix(line, "```") {
			inFence = !inFence
		}

		if inFence || !strings.HasPrefix(line, "#") {
			continue
		}

		text := strings.TrimSpace(strings.TrimLeft(line, "#"))

		var b strings.Builder

		for _, r := range strings.ToLower(text) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}

		a := b.String()
		if n := seen[a]; n > 0 {
			anchors[fmt.Sprintf("%s-%d", a, n)] = true
		} else {
			anchors[a] = true
		}

		seen[a]++
	}

	return anchors
}
