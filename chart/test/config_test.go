package test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// kind is one backend kind as `backup-oracle kinds -o json` prints the binary's registry.
type kind struct {
	Name    string   `json:"name"`
	Aliases []string `json:"aliases"`
	Fields  []struct {
		Flag string   `json:"flag"`
		Env  []string `json:"env"`
	} `json:"fields"`
}

// registryKinds asks the binary for its registry of backend kinds.
func registryKinds(t *testing.T) []kind {
	t.Helper()

	out, err := exec.Command(toolBin(t, "BACKUP_ORACLE_BIN"), "kinds", "-o", "json").Output()
	if err != nil {
		t.Fatalf("backup-oracle kinds -o json: %v", err)
	}

	var kinds []kind
	if err := json.Unmarshal(out, &kinds); err != nil || len(kinds) == 0 {
		t.Fatalf("decode kinds %q: %v", out, err)
	}

	return kinds
}

// backendEnv lists every environment variable any backend kind reads, with the kinds reading it.
func backendEnv(kinds []kind) map[string][]string {
	out := map[string][]string{}

	for _, k := range kinds {
		for _, f := range k.Fields {
			for _, e := range f.Env {
				out[e] = append(out[e], k.Name)
			}
		}
	}

	return out
}

// TestSchemaMatchesRegistry: the chart's backend.type enum is exactly the binary's kinds, so a
// kind cannot be added or renamed in one place only.
func TestSchemaMatchesRegistry(t *testing.T) {
	raw, err := os.ReadFile("../values.schema.json")
	if err != nil {
		t.Fatal(err)
	}

	var schema struct {
		Properties struct {
			Backend struct {
				Properties struct {
					Type struct {
						Enum []string `json:"enum"`
					} `json:"type"`
				} `json:"properties"`
			} `json:"backend"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}

	var names []string
	for _, k := range registryKinds(t) {
		names = append(names, k.Name)
	}

	enum := slices.Clone(schema.Properties.Backend.Properties.Type.Enum)
	sort.Strings(enum)
	sort.Strings(names)

	if !slices.Equal(enum, names) {
		t.Errorf("chart schema backend.type enum %v, binary's kinds %v", enum, names)
	}
}

// TestEveryKindHasAValueSet: each kind of the registry is deployed by at least one value set,
// so TestRenderedConfigIsAccepted covers the chart's wiring of every kind.
func TestEveryKindHasAValueSet(t *testing.T) {
	covered := map[string]bool{}
	for _, values := range valueSets(t) {
		covered[backendType(t, values)] = true
	}

	for _, k := range registryKinds(t) {
		if !covered[k.Name] {
			t.Errorf("no value set in ../testdata/values deploys backend.type %s", k.Name)
		}
	}
}

// backendType is the backend.type a values file deploys (the chart's default when unset).
func backendType(t *testing.T, values string) string {
	t.Helper()

	read := func(path string) string {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}

		var v struct {
			Backend struct {
				Type string `yaml:"type"`
			} `yaml:"backend"`
		}
		if err := yaml.Unmarshal(raw, &v); err != nil {
			t.Fatal(err)
		}

		return v.Backend.Type
	}

	if typ := read(values); typ != "" {
		return typ
	}

	return read("../values.yaml")
}

// TestRenderedConfigIsAccepted runs `backup-oracle --check-config` with the environment the
// chart's Deployment sets, for every value set, so a renamed or mistyped variable fails here
// rather than in a cluster; every backend variable the chart sets must be one its kind reads
// (the binary warns about the others, and a warning fails the test too).
func TestRenderedConfigIsAccepted(t *testing.T) {
	bin := toolBin(t, "BACKUP_ORACLE_BIN")
	readers := backendEnv(registryKinds(t))

	for _, values := range valueSets(t) {
		t.Run(filepath.Base(values), func(t *testing.T) {
			typ := backendType(t, values)
			docs := splitBySource(mustRender(t, "-f", values))

			var deployment struct {
				Spec struct {
					Template struct {
						Spec struct {
							Containers []struct {
								Env []struct{ Name, Value string }
							}
						}
					}
				}
			}
			if err := yaml.Unmarshal([]byte(docs["templates/deployment.yaml"]), &deployment); err != nil {
				t.Fatal(err)
			}

			// Several backends: BACKENDS_FILE from the chart's ConfigMap, each entry's kind checked.
			wantKinds := []string{"(" + typ + ")"}
			backendsFile := ""

			if cm, ok := docs["templates/backends-configmap.yaml"]; ok {
				var m struct{ Data map[string]string }
				if err := yaml.Unmarshal([]byte(cm), &m); err != nil {
					t.Fatal(err)
				}

				var file struct {
					Backends []struct{ Name, Type string }
				}
				if err := yaml.Unmarshal([]byte(m.Data["backends.yaml"]), &file); err != nil || len(file.Backends) == 0 {
					t.Fatalf("the backends ConfigMap holds no backends (%v):\n%s", err, cm)
				}

				wantKinds = nil
				for _, b := range file.Backends {
					wantKinds = append(wantKinds, b.Name+" ("+b.Type+")")
				}

				backendsFile = filepath.Join(t.TempDir(), "backends.yaml")
				if err := os.WriteFile(backendsFile, []byte(m.Data["backends.yaml"]), 0o600); err != nil {
					t.Fatal(err)
				}
			}

			// The expected-backups ledger, from the chart's ConfigMap.
			ledgerFile := ""

			if cm, ok := docs["templates/expected-backups-configmap.yaml"]; ok {
				var m struct{ Data map[string]string }
				if err := yaml.Unmarshal([]byte(cm), &m); err != nil {
					t.Fatal(err)
				}

				ledgerFile = filepath.Join(t.TempDir(), "pvcs.yaml")
				if err := os.WriteFile(ledgerFile, []byte(m.Data["pvcs.yaml"]), 0o600); err != nil {
					t.Fatal(err)
				}
			}

			env := []string{"PATH=" + os.Getenv("PATH")}
			for _, e := range deployment.Spec.Template.Spec.Containers[0].Env {
				if e.Name == "STATE_DIR" {
					e.Value = t.TempDir()
				}

				if e.Name == "EXPECTED_BACKUPS_FILE" {
					if ledgerFile == "" {
						t.Fatal("the Deployment sets EXPECTED_BACKUPS_FILE but the chart renders no ledger ConfigMap")
					}

					e.Value = ledgerFile
				}

				if e.Name == "BACKENDS_FILE" {
					if backendsFile == "" {
						t.Fatal("the Deployment sets BACKENDS_FILE but the chart renders no backends ConfigMap")
					}

					e.Value = backendsFile
				}

				if kinds, ok := readers[e.Name]; ok && !slices.Contains(kinds, typ) {
					t.Errorf("the Deployment sets %s, which backend kind %s does not read (read by %v)", e.Name, typ, kinds)
				}

				env = append(env, e.Name+"="+e.Value)
			}

			cmd := exec.Command(bin, "--check-config")
			cmd.Env = env

			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "configuration ok") {
				t.Errorf("--check-config with the chart's environment: %v\n%s\nenv: %v", err, out, env)
			}

			for _, k := range wantKinds {
				if !strings.Contains(string(out), k) {
					t.Errorf("--check-config does not report backend %s:\n%s", k, out)
				}
			}

			if strings.Contains(string(out), "warning:") {
				t.Errorf("--check-config warns about the chart's environment:\n%s", out)
			}
		})
	}
}
