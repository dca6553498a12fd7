package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/backup-oracle/backup-oracle/integration/harness"
)

// TestOpenAPIMatchesLiveResponses runs the real binary (the demo repository, and a repository
// that cannot be read) and checks every route of openapi.yaml against its live answers: the
// spec the binary serves is the file reviewed, every status code is documented for its route,
// and every JSON body validates strictly against the documented schema (types, formats, enums,
// required fields, and no field the spec does not name).
func TestOpenAPIMatchesLiveResponses(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "openapi.yaml"))
	require.NoError(t, err)

	var spec openAPI
	require.NoError(t, yaml.Unmarshal(raw, &spec))

	demo := harness.StartOracle(t, harness.OracleOptions{Bin: oracleBin, Args: []string{"--demo", "--state-dir", t.TempDir()}})
	demo.WaitReady(t, 2*time.Minute)

	broken := harness.StartOracle(t, harness.OracleOptions{Bin: oracleBin,
		Env: []string{"KOPIA_REPOSITORY_PATH=" + filepath.Join(t.TempDir(), "absent"), "KOPIA_PASSWORD=x", "STATE_DIR=" + t.TempDir()}})

	served := fetch(t, demo.URL+"/openapi.yaml")
	assert.Equal(t, http.StatusOK, served.code)
	assert.Equal(t, string(raw), string(served.body), "the binary serves openapi.yaml as reviewed")

	requests := []struct {
		oracle *harness.Oracle
		path   string
		code   int
	}{
		{demo, "/exists/shop/postgres", 200}, {demo, "/exists/shop/redis", 503}, {demo, "/exists/shop/redis?accept=near-miss", 200}, {demo, "/exists/shop/redis?unknownStatus=200", 200},
		{demo, "/exists/shop/redis?unknownStatus=418", 400},
		{demo, "/exists/shop/cache", 200}, {demo, "/exists/shop/redis?accept=all", 400}, {demo, "/exists/shop/Bad_Name", 400},
		{demo, "/exists/shop/postgres?previous=1", 200}, {demo, "/exists/shop/postgres?previous=9", 503},
		{demo, "/exists/shop/postgres?asOf=2026-11-20", 400}, {broken, "/exists/shop/postgres", 503},
		{demo, "/explain/shop/redis", 200}, {demo, "/explain/shop/postgres?asOf=2099-01-01T00:00:00Z", 200}, {demo, "/explain/shop/Bad_Name", 400},
		{demo, "/snapshots/shop/postgres", 200}, {demo, "/snapshots/shop/redis", 404}, {demo, "/snapshots/shop/postgres?asOf=2001-01-01T00:00:00Z", 404},
		{demo, "/snapshots/shop/Bad_Name", 400}, {broken, "/snapshots/shop/postgres", 503},
		{demo, "/identity/shop/my.app.data", 200}, {demo, "/identity/Shop/x", 400}, {broken, "/identity/shop/x", 200},
		{demo, "/backups", 200}, {demo, "/backups?namespace=shop&staleFor=1s", 200}, {demo, "/backups?format=ledger", 200},
		{demo, "/backups?format=csv", 400}, {demo, "/backups?staleFor=1d", 400}, {broken, "/backups", 503},
		{demo, "/readyz", 200}, {broken, "/readyz", 503}, {demo, "/healthz", 200}, {demo, "/status", 200}, {broken, "/status", 200},
		{demo, "/metrics", 200}, {demo, "/openapi.yaml", 200}, {demo, "/", 200}, {demo, "/?pvc=shop/postgres", 200},
	}

	covered := map[string]bool{}

	for _, r := range requests {
		t.Run(r.path, func(t *testing.T) {
			route, op := spec.route(r.path)
			require.NotNil(t, op, "%s is not in openapi.yaml", r.path)
			covered[route] = true

			res := fetch(t, r.oracle.URL+r.path)
			require.Equal(t, r.code, res.code, "%s", res.body)

			doc, ok := op.Responses[fmt.Sprint(res.code)]
			require.True(t, ok, "%s answers %d, which openapi.yaml does not document for %s", r.path, res.code, route)
			require.NotEmpty(t, doc.Content, "a documented content type")

			served := false

			for ct, media := range doc.Content {
				if !strings.HasPrefix(res.contentType, ct) {
					continue
				}

				served = true

				if ct != "application/json" {
					continue
				}

				var body any
				require.NoError(t, json.Unmarshal(res.body, &body))
				assert.Empty(t, spec.validate(media.Schema, body, "$"), "%s", res.body)
			}

			assert.True(t, served, "content type %q is not one documented for %s %d", res.contentType, route, res.code)
		})
	}

	var missing []string

	for route := range spec.Paths {
		if !covered[route] {
			missing = append(missing, route)
		}
	}

	sort.Strings(missing)
	assert.Empty(t, missing, "routes of openapi.yaml no live request checks")
}

type openAPI struct {
	Paths map[string]struct {
		Get *operation `yaml:"get"`
	} `yaml:"paths"`
	Components struct {
		Schemas map[string]map[string]any `yaml:"schemas"`
	} `yaml:"components"`
}

type operation struct {
	Responses map[string]struct {
		Content map[string]struct {
			Schema map[string]any `yaml:"schema"`
		} `yaml:"content"`
	} `yaml:"responses"`
}

// route finds the spec route of a request path ("/exists/shop/x?q" matches "/exists/{namespace}/{pvc}").
func (s openAPI) route(path string) (string, *operation) {
	path, _, _ = strings.Cut(path, "?")
	segs := strings.Split(path, "/")

	for route, item := range s.Paths {
		rsegs := strings.Split(route, "/")
		if len(rsegs) != len(segs) {
			continue
		}

		match := true

		for i := range rsegs {
			if !strings.HasPrefix(rsegs[i], "{") && rsegs[i] != segs[i] {
				match = false
				break
			}
		}

		if match {
			return route, item.Get
		}
	}

	return "", nil
}

// validate checks v against schema strictly and returns every violation.
func (s openAPI) validate(schema map[string]any, v any, at string) []string {
	if ref, ok := schema["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/components/schemas/")
		target, ok := s.Components.Schemas[name]
		if !ok {
			return []string{at + ": unknown $ref " + ref}
		}

		return s.validate(target, v, at)
	}

	var errs []string

	if enum, ok := schema["enum"].([]any); ok {
		found := false
		for _, e := range enum {
			found = found || fmt.Sprint(e) == fmt.Sprint(v)
		}

		if !found {
			errs = append(errs, fmt.Sprintf("%s: %v is not one of %v", at, v, enum))
		}
	}

	switch schema["type"] {
	case "object":
		obj, ok := v.(map[string]any)
		if !ok {
			return append(errs, fmt.Sprintf("%s: want an object, got %T", at, v))
		}

		props, _ := schema["properties"].(map[string]any)

		for k, val := range obj {
			p, ok := props[k].(map[string]any)
			if !ok {
				errs = append(errs, fmt.Sprintf("%s.%s: not documented", at, k))
				continue
			}

			errs = append(errs, s.validate(p, val, at+"."+k)...)
		}

		req, _ := schema["required"].([]any)
		for _, r := range req {
			if _, ok := obj[fmt.Sprint(r)]; !ok {
				errs = append(errs, fmt.Sprintf("%s: required %v missing", at, r))
			}
		}
	case "array":
		arr, ok := v.([]any)
		if !ok {
			return append(errs, fmt.Sprintf("%s: want an array, got %T", at, v))
		}

		items, _ := schema["items"].(map[string]any)
		for i, x := range arr {
			errs = append(errs, s.validate(items, x, fmt.Sprintf("%s[%d]", at, i))...)
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			return append(errs, fmt.Sprintf("%s: want a string, got %T", at, v))
		}

		if schema["format"] == "date-time" {
			if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
				errs = append(errs, fmt.Sprintf("%s: %q is not a date-time", at, str))
			}
		}
	case "integer":
		n, ok := v.(float64)
		if !ok || n != float64(int64(n)) {
			errs = append(errs, fmt.Sprintf("%s: want an integer, got %v", at, v))
		}
	case "number":
		if _, ok := v.(float64); !ok {
			errs = append(errs, fmt.Sprintf("%s: want a number, got %T", at, v))
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			errs = append(errs, fmt.Sprintf("%s: want a boolean, got %T", at, v))
		}
	case nil:
		errs = append(errs, at+": schema without a type")
	}

	return errs
}

type fetched struct {
	code        int
	contentType string
	body        []byte
}

func fetch(t *testing.T, url string) fetched {
	t.Helper()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)

	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()

	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)

	return fetched{code: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), body: b}
}
