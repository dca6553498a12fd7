package all_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/backup-oracle/backup-oracle/repo"
	"github.com/backup-oracle/backup-oracle/repo/all"
)

func TestKindsAreWellFormed(t *testing.T) {
	kinds := all.Kinds()
	require.NotEmpty(t, kinds)

	names := map[string]bool{}
	shared := map[string]repo.Field{}

	for _, k := range kinds {
		t.Run(k.Name, func(t *testing.T) {
			for _, n := range append([]string{k.Name}, k.Aliases...) {
				assert.False(t, names[n], "name %q is used twice", n)
				names[n] = true
			}

			assert.NotEmpty(t, k.Summary)

			a, b := k.New(), k.New()
			require.NotSame(t, a, b, "New returns a fresh configuration")

			flags := map[string]bool{}

			for _, f := range a.Fields() {
				assert.False(t, flags[f.Flag], "flag %s declared twice", f.Flag)
				flags[f.Flag] = true

				assert.NotEmpty(t, f.Env, f.Flag)
				assert.NotEmpty(t, f.Usage, f.Flag)

				if prev, ok := shared[f.Flag]; ok {
					assert.Equal(t, prev.Env, f.Env, "flag %s is shared by kinds: same environment variables", f.Flag)
					assert.Equal(t, prev.YAML, f.YAML, "flag %s is shared by kinds: same YAML key", f.Flag)
					assert.Equal(t, prev.Usage, f.Usage, "flag %s is shared by kinds: same meaning", f.Flag)
				}

				shared[f.Flag] = f
			}

			err := a.Validate()
			require.Error(t, err, "an empty configuration is incomplete")
			assert.ErrorIs(t, err, repo.ErrInvalidConfig)
		})
	}
}

// TestYAMLKeysMatchFields: every key a backends file accepts is a declared field, and every
// declared YAML key is accepted (strictly) by the kind's configuration.
func TestYAMLKeysMatchFields(t *testing.T) {
	for _, k := range all.Kinds() {
		t.Run(k.Name, func(t *testing.T) {
			cfg := k.New()

			declared := map[string]bool{}
			for _, f := range cfg.Fields() {
				if f.YAML != "" {
					declared[f.YAML] = true

					doc := nest(f.YAML, "x")
					if strings.HasSuffix(f.Flag, "style") || strings.HasSuffix(f.Flag, "secure") {
						doc = nest(f.YAML, true)
					} else if strings.HasSuffix(f.Flag, "timeout") || strings.HasSuffix(f.Flag, "interval") {
						doc = nest(f.YAML, "5s")
					}

					body, err := yaml.Marshal(doc)
					require.NoError(t, err)

					dec := yaml.NewDecoder(strings.NewReader(string(body)))
					dec.KnownFields(true)
					assert.NoError(t, dec.Decode(k.New()), "field %s declares YAML key %s", f.Flag, f.YAML)
				}
			}

			body, err := yaml.Marshal(cfg)
			require.NoError(t, err)

			var tree map[string]any
			require.NoError(t, yaml.Unmarshal(body, &tree))

			for _, key := range leaves("", tree) {
				assert.True(t, declared[key], "YAML key %s of %s is not declared by any field", key, k.Name)
			}
		})
	}
}

func nest(path string, v any) map[string]any {
	parts := strings.Split(path, ".")
	m := map[string]any{parts[len(parts)-1]: v}

	for i := len(parts) - 2; i >= 0; i-- {
		m = map[string]any{parts[i]: m}
	}

	return m
}

func leaves(prefix string, m map[string]any) []string {
	var out []string

	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			out = append(out, leaves(prefix+k+".", sub)...)
			continue
		}

		out = append(out, prefix+k)
	}

	return out
}

func TestDescribeHidesSecrets(t *testing.T) {
	for _, k := range all.Kinds() {
		cfg := k.New()
		for _, f := range cfg.Fields() {
			if f.YAML == "" { // inline secrets
				require.NoError(t, f.Value.Set("hunter2"))
			}
		}

		assert.NotContains(t, cfg.Describe(), "hunter2", k.Name)
	}
}

// TestS3KindsAgreeOnEndpoints: every S3 kind gives the same verdict, with the same message, for
// the same endpoint (one parser).
func TestS3KindsAgreeOnEndpoints(t *testing.T) {
	endpoints := []string{
		"", "minio:9000", "https://minio:9000", "HTTPS://minio:9000/", "https://minio:9000/bucket",
		"user:pw@minio:9000", "https://user:pw@minio:9000", "http://[::1]:9000", "::1", "minio",
		"ftp://minio", "minio:0", "https://minio:9000?a=b",
	}

	var s3Kinds []repo.Kind

	for _, k := range all.Kinds() {
		for _, f := range k.New().Fields() {
			if f.Flag == "s3-endpoint" {
				s3Kinds = append(s3Kinds, k)
			}
		}
	}

	require.GreaterOrEqual(t, len(s3Kinds), 2, "kopia-s3 and restic-s3")

	for _, ep := range endpoints {
		var verdicts []string

		for _, k := range s3Kinds {
			cfg := k.New()
			set(t, cfg, "s3-endpoint", ep)
			set(t, cfg, "s3-bucket", "b")

			verdicts = append(verdicts, endpointProblem(cfg.Validate()))
		}

		for i := range verdicts {
			assert.Equal(t, verdicts[0], verdicts[i], "endpoint %q: %s and %s disagree", ep, s3Kinds[0].Name, s3Kinds[i].Name)
		}
	}
}

func set(t *testing.T, cfg repo.BackendConfig, flag, value string) {
	t.Helper()

	for _, f := range cfg.Fields() {
		if f.Flag == flag {
			require.NoError(t, f.Value.Set(value))
			return
		}
	}

	t.Fatalf("no field %s", flag)
}

// endpointProblem is the endpoint's line of a validation error, or "ok".
func endpointProblem(err error) string {
	if err == nil {
		return "ok"
	}

	for _, line := range strings.Split(err.Error(), "\n") {
		if strings.Contains(line, "S3_ENDPOINT") {
			return line
		}
	}

	return "ok"
}
