package test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// crdDir holds the vendored VolSync CRDs (see its README for their source and version).
const crdDir = "testdata/crds"

// crdSets maps a mover to the CRD directories its resources must validate against.
var crdSets = map[string][]string{
	"kopia":  {"volsync-kopia-fork-v0.17.11"},
	"restic": {"volsync-upstream-v0.16.0", "volsync-kopia-fork-v0.17.11"},
}

// TestGeneratedResourcesMatchCRDs validates every ReplicationSource and ReplicationDestination
// that the kyverno test suites expect (and so every one the policies generate) against the VolSync
// CRDs, rejecting unknown fields: VolSync silently ignores a misspelt one.
func TestGeneratedResourcesMatchCRDs(t *testing.T) {
	schemas := map[string]map[string]map[string]any{} // crd dir -> kind -> schema
	for _, dirs := range crdSets {
		for _, dir := range dirs {
			if _, ok := schemas[dir]; !ok {
				schemas[dir] = loadCRDs(t, filepath.Join(crdDir, dir))
			}
		}
	}

	var files []string
	err := filepath.WalkDir(filepath.Join(policiesDir, "tests"), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".yaml") {
			files = append(files, path)
		}

		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	checked := 0

	for _, path := range files {
		for _, doc := range readDocs(t, path) {
			kind, _ := doc["kind"].(string)
			if kind != "ReplicationSource" && kind != "ReplicationDestination" {
				continue
			}

			spec, _ := doc["spec"].(map[string]any)
			mover := "kopia"
			if _, ok := spec["restic"]; ok {
				mover = "restic"
			}

			for _, dir := range crdSets[mover] {
				name := fmt.Sprintf("%s %s/%s against %s", path, kind, nameOf(doc), dir)
				t.Run(name, func(t *testing.T) {
					var errs []error
					validate(schemas[dir][kind], doc, "", &errs)
					if err := errors.Join(errs...); err != nil {
						t.Error(err)
					}
				})
				checked++
			}
		}
	}

	if checked == 0 {
		t.Fatal("no ReplicationSource or ReplicationDestination found under policies/tests")
	}
}

// TestVendoredCRDsUnmodified: the vendored CRDs are the upstream files their README names
// (digests in SHA256SUMS), and every CRD set the checks use is there.
func TestVendoredCRDsUnmodified(t *testing.T) {
	sums, err := os.ReadFile(filepath.Join(crdDir, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}

	listed := map[string]bool{}

	for _, line := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
		want, file, ok := strings.Cut(line, "  ")
		if !ok {
			t.Fatalf("SHA256SUMS: malformed line %q", line)
		}

		data, err := os.ReadFile(filepath.Join(crdDir, file))
		if err != nil {
			t.Fatal(err)
		}

		if got := fmt.Sprintf("%x", sha256.Sum256(data)); got != want {
			t.Errorf("%s: sha256 %s, SHA256SUMS says %s: vendored CRDs are copied unmodified (see %s/README.md)", file, got, want, crdDir)
		}

		listed[filepath.Dir(file)] = true
	}

	for _, dirs := range crdSets {
		for _, dir := range dirs {
			if !listed[dir] {
				t.Errorf("CRD set %s is not listed in SHA256SUMS", dir)
			}
		}
	}
}

// TestValidatorNeedsSchema: a missing schema (a CRD file dropped, a kind or version renamed) is
// an error, never a pass.
func TestValidatorNeedsSchema(t *testing.T) {
	doc := map[string]any{"apiVersion": "volsync.backube/v1alpha1", "kind": "ReplicationSource",
		"spec": map[string]any{"sourcePVC": "x"}}

	var errs []error
	validate(nil, doc, "", &errs)

	if err := errors.Join(errs...); err == nil || !strings.Contains(err.Error(), "no schema") {
		t.Errorf("validate without a schema: got %v, want an error naming the missing schema", err)
	}

	// The same for a nested value whose schema is missing (an array without items).
	errs = nil
	validate(map[string]any{"type": "array"}, []any{"x"}, ".spec.list", &errs)

	if err := errors.Join(errs...); err == nil || !strings.Contains(err.Error(), "spec.list[0]: no schema") {
		t.Errorf("array without an items schema: got %v, want an error naming spec.list[0]", err)
	}
}

// TestValidatorRejects makes sure the validator is not vacuous.
func TestValidatorRejects(t *testing.T) {
	schemas := loadCRDs(t, filepath.Join(crdDir, "volsync-kopia-fork-v0.17.11"))
	bad := map[string]any{
		"apiVersion": "volsync.backube/v1alpha1", "kind": "ReplicationSource",
		"metadata": map[string]any{"name": "x"},
		"spec": map[string]any{
			"sourcePVC": "x",
			"trigger":   map[string]any{"schedule": "every hour"},
			"kopia":     map[string]any{"repository": "x", "retention": map[string]any{}, "capacity": "1 Gi", "copyMethod": "Snap"},
		},
	}

	var errs []error
	validate(schemas["ReplicationSource"], bad, "", &errs)

	want := []string{"spec.trigger.schedule", "spec.kopia.retention", "spec.kopia.capacity", "spec.kopia.copyMethod"}
	got := errors.Join(errs...)

	for _, w := range want {
		if got == nil || !strings.Contains(got.Error(), w) {
			t.Errorf("validator did not reject %s; errors: %v", w, got)
		}
	}
}

func nameOf(doc map[string]any) string {
	meta, _ := doc["metadata"].(map[string]any)
	name, _ := meta["name"].(string)

	return name
}

func readDocs(t *testing.T, path string) []map[string]any {
	t.Helper()

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	var docs []map[string]any

	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			return docs
		} else if err != nil {
			t.Fatalf("%s: %v", path, err)
		}

		if doc != nil {
			docs = append(docs, doc)
		}
	}
}

// loadCRDs returns the v1alpha1 openAPIV3Schema of each CRD in dir, by kind.
func loadCRDs(t *testing.T, dir string) map[string]map[string]any {
	t.Helper()

	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs in %s: %v", dir, err)
	}

	out := map[string]map[string]any{}

	for _, f := range files {
		for _, crd := range readDocs(t, f) {
			spec, _ := crd["spec"].(map[string]any)
			names, _ := spec["names"].(map[string]any)
			kind, _ := names["kind"].(string)

			versions, _ := spec["versions"].([]any)
			for _, v := range versions {
				version, _ := v.(map[string]any)
				if version["name"] != "v1alpha1" {
					continue
				}

				schema, _ := version["schema"].(map[string]any)
				out[kind], _ = schema["openAPIV3Schema"].(map[string]any)
			}
		}
	}

	for _, kind := range []string{"ReplicationSource", "ReplicationDestination"} {
		if out[kind] == nil {
			t.Fatalf("%s: no v1alpha1 openAPIV3Schema for %s", dir, kind)
		}
	}

	return out
}

// validate checks value against a structural openAPIV3Schema the way the API server would,
// except that unknown fields are errors instead of being pruned. It covers the keywords the
// VolSync CRDs use: type, properties, additionalProperties, required, items, enum, pattern,
// anyOf, x-kubernetes-int-or-string and x-kubernetes-preserve-unknown-fields.
//
// A missing schema is an error: validating against nothing must not pass.
func validate(schema map[string]any, value any, path string, errs *[]error) {
	fail := func(format string, args ...any) {
		*errs = append(*errs, fmt.Errorf("%s: %s", strings.TrimPrefix(path, "."), fmt.Sprintf(format, args...)))
	}

	if schema == nil {
		fail("no schema to validate against")

		return
	}

	if value == nil {
		if schema["nullable"] != true {
			fail("null is not allowed")
		}

		return
	}

	if enum, ok := schema["enum"].([]any); ok && !contains(enum, value) {
		fail("%v is not one of %v", value, enum)
	}

	if schema["x-kubernetes-int-or-string"] == true {
		switch value.(type) {
		case int, int64, float64, string:
		default:
			fail("%T is neither an integer nor a string", value)
		}
	}

	if s, ok := value.(string); ok {
		if pattern, ok := schema["pattern"].(string); ok && !regexp.MustCompile(pattern).MatchString(s) {
			fail("%q does not match %s", s, pattern)
		}
	}

	switch schema["type"] {
	case "object":
		validateObject(schema, value, path, fail, errs)
	case "array":
		items, ok := value.([]any)
		if !ok {
			fail("%T is not an array", value)

			return
		}

		itemSchema, _ := schema["items"].(map[string]any)
		for i, item := range items {
			validate(itemSchema, item, fmt.Sprintf("%s[%d]", path, i), errs)
		}
	case "string":
		if _, ok := value.(string); !ok {
			fail("%T is not a string", value)
		}
	case "integer":
		if _, ok := value.(int); !ok {
			fail("%v is not an integer", value)
		}
	case "boolean":
		if _, ok := value.(bool); !ok {
			fail("%v is not a boolean", value)
		}
	case "number":
		switch value.(type) {
		case int, float64:
		default:
			fail("%v is not a number", value)
		}
	}
}

func validateObject(schema map[string]any, value any, path string, fail func(string, ...any), errs *[]error) {
	obj, ok := value.(map[string]any)
	if !ok {
		fail("%T is not an object", value)

		return
	}

	props, _ := schema["properties"].(map[string]any)
	additional, _ := schema["additionalProperties"].(map[string]any)
	preserve := schema["x-kubernetes-preserve-unknown-fields"] == true

	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}

	sort.Strings(keys)

	for _, k := range keys {
		switch sub, ok := props[k].(map[string]any); {
		case path == "" && (k == "apiVersion" || k == "kind" || k == "metadata"):
			// ObjectMeta is validated by the API server itself, not by the CRD schema.
		case ok:
			validate(sub, obj[k], path+"."+k, errs)
		case additional != nil:
			validate(additional, obj[k], path+"."+k, errs)
		case !preserve:
			*errs = append(*errs, fmt.Errorf("%s: unknown field", strings.TrimPrefix(path+"."+k, ".")))
		}
	}

	required, _ := schema["required"].([]any)
	for _, r := range required {
		if _, ok := obj[r.(string)]; !ok {
			fail("missing required field %q", r)
		}
	}
}

func contains(list []any, v any) bool {
	for _, x := range list {
		if fmt.Sprint(x) == fmt.Sprint(v) {
			return true
		}
	}

	return false
}
