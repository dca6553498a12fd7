package server_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// TestGoldenResponsesMatchOpenAPI keeps openapi.yaml honest: every field the server sends is
// documented, and every required field is sent.
func TestGoldenResponsesMatchOpenAPI(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "openapi.yaml"))
	require.NoError(t, err)

	var spec struct {
		Components struct {
			Schemas map[string]struct {
				Required   []string       `yaml:"required"`
				Properties map[string]any `yaml:"properties"`
			} `yaml:"schemas"`
		} `yaml:"components"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &spec))

	goldens := map[string][]string{
		"Exists": {"restore.json", "fresh.json", "unknown.json", "invalid-pvc.json", "invalid-namespace.json", "too-long.json",
			"restore-asof.json", "restore-previous.json", "asof-none.json", "previous-none.json", "fresh-asof.json", "bad-asof.json", "bad-previous.json",
			"nearmiss.json", "nearmiss-accepted.json", "bad-accept.json", "restore-source.json", "restore-source-unknown.json", "bad-source.json"},
		"Ready":   {"ready.json", "not-ready.json"},
		"Explain": {"explain-restore.json", "explain-fresh.json", "explain-asof.json", "explain-restore-source.json"},
		"Snapshots": {"snapshots.json", "snapshots-asof.json", "snapshots-previous.json", "snapshots-asof-none.json", "snapshots-none.json",
			"snapshots-unknown.json", "snapshots-invalid.json", "snapshots-bad-asof.json"},
		"Identity": {"identity.json", "identity-invalid.json"},
		"Backups":  {"backups.json", "backups-shop.json", "backups-stale.json", "backups-incomplete.json"},
		"Error":    {"backups-bad.json", "not-found.json", "method.json"},
	}

	// Nested objects: the status's backends and the answers' near misses.
	nested := map[string][]map[string]any{}

	var status struct {
		Backends []map[string]any `json:"backends"`
	}
	b, err := os.ReadFile(filepath.Join("testdata", "status.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &status))
	nested["BackendStatus"] = status.Backends

	var gated struct {
		Gate map[string]any `json:"gate"`
	}
	b, err = os.ReadFile(filepath.Join("testdata", "status-gate.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &gated))
	nested["GateStatus"] = []map[string]any{gated.Gate}

	uncovered, _ := gated.Gate["uncoveredNamespaces"].([]any)
	require.NotEmpty(t, uncovered)

	for _, u := range uncovered {
		m, _ := u.(map[string]any)
		nested["UncoveredNamespace"] = append(nested["UncoveredNamespace"], m)
	}

	var near struct {
		NearMiss []map[string]any `json:"nearMiss"`
	}
	b, err = os.ReadFile(filepath.Join("testdata", "nearmiss.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &near))
	require.NotEmpty(t, near.NearMiss)
	nested["NearMiss"] = near.NearMiss

	for schema, bodies := range nested {
		s, ok := spec.Components.Schemas[schema]
		require.True(t, ok, "schema %s", schema)

		for _, body := range bodies {
			for k := range body {
				assert.Contains(t, s.Properties, k, "field %q is not in openapi.yaml's %s", k, schema)
			}

			for _, k := range s.Required {
				assert.Contains(t, body, k, "%s: required field %q missing", schema, k)
			}
		}
	}

	for schema, files := range goldens {
		s, ok := spec.Components.Schemas[schema]
		require.True(t, ok, "schema %s", schema)

		for _, f := range files {
			b, err := os.ReadFile(filepath.Join("testdata", f))
			require.NoError(t, err)

			var body map[string]any
			require.NoError(t, json.Unmarshal(b, &body))

			for k := range body {
				assert.Contains(t, s.Properties, k, "%s: field %q is not in openapi.yaml's %s", f, k, schema)
			}

			for _, k := range s.Required {
				assert.Contains(t, body, k, "%s: required field %q missing", f, k)
			}
		}
	}
}
