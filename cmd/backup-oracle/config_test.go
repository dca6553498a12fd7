package main

import (
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func env(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

func TestParseConfig(t *testing.T) {
	base := map[string]string{"KOPIA_REPOSITORY_PATH": "/repo", "KOPIA_PASSWORD": "pw"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}

		for k, v := range extra {
			m[k] = v
		}

		return m
	}

	cases := []struct {
		name  string
		env   map[string]string
		args  []string
		check func(t *testing.T, c Config)
		errs  []string
	}{
		{"defaults", base, nil, func(t *testing.T, c Config) {
			assert.Equal(t, "kopia-fs", c.Backend)
			assert.Equal(t, ":8080", c.listenAddress())
			assert.Equal(t, 30*time.Second, c.RefreshInterval)
			assert.Equal(t, 2*time.Minute, c.MaxIndexAge)
			assert.Equal(t, "{pvc}-backup", c.Kopia.Identity.SourceName)
			assert.Equal(t, "/data", c.Kopia.Identity.Path)
		}, nil},
		{"predecessor names", with(map[string]string{"PORT": "9090", "RE_WARM_INTERVAL": "45", "HTTP_TIMEOUT": "3", "CACHE_TTL": "1m", "LOG_LEVEL": "debug"}), nil,
			func(t *testing.T, c Config) {
				assert.Equal(t, ":9090", c.listenAddress())
				assert.Equal(t, 45*time.Second, c.RefreshInterval, "RE_WARM_INTERVAL is an alias, bare numbers are seconds")
				assert.Equal(t, 3*time.Second, c.HTTPTimeout)
				assert.Equal(t, time.Minute, c.CacheTTL)
			}, nil},
		{"REFRESH_INTERVAL wins over its alias", with(map[string]string{"REFRESH_INTERVAL": "10s", "RE_WARM_INTERVAL": "45s"}), nil,
			func(t *testing.T, c Config) { assert.Equal(t, 10*time.Second, c.RefreshInterval) }, nil},
		{"flag wins over environment", with(map[string]string{"PORT": "9090"}), []string{"--port", "7070", "--kopia-path", "/mnt"},
			func(t *testing.T, c Config) {
				assert.Equal(t, 7070, c.Port)
				assert.Equal(t, "/mnt", c.Kopia.Identity.Path)
			}, nil},
		{"password file", map[string]string{"KOPIA_REPOSITORY_PATH": "/r", "KOPIA_PASSWORD_FILE": "/s/pw"}, nil,
			func(t *testing.T, c Config) { assert.Equal(t, "/s/pw", c.Kopia.PasswordFile) }, nil},
		{"demo needs no repository", nil, []string{"--demo"}, func(t *testing.T, c Config) { assert.True(t, c.Demo) }, nil},
		{"every problem at once", map[string]string{"BACKEND_TYPE": "nfs", "PORT": "99999", "MAX_INDEX_AGE": "10s", "REFRESH_INTERVAL": "1m", "LOG_LEVEL": "loud", "CACHE_SIZE": "0"}, nil, nil,
			[]string{`unknown backend "nfs": valid backends are kopia-fs`, "PORT 99999", "MAX_INDEX_AGE (10s) must exceed REFRESH_INTERVAL (1m0s)", `LOG_LEVEL "loud"`, "CACHE_SIZE must be at least 1"}},
		{"missing repository and password", map[string]string{}, nil, nil,
			[]string{"KOPIA_REPOSITORY_PATH is required", "KOPIA_PASSWORD or KOPIA_PASSWORD_FILE is required"}},
		{"both passwords", with(map[string]string{"KOPIA_PASSWORD_FILE": "/f"}), nil, nil, []string{"not both"}},
		{"bad values name their variable", with(map[string]string{"PORT": "http", "HTTP_TIMEOUT": "soon"}), nil, nil,
			[]string{`PORT: "http" is not a whole number`, `HTTP_TIMEOUT: "soon" is not a duration`}},
		{"bad template", with(map[string]string{"KOPIA_SOURCE_NAME_TEMPLATE": "{name}-backup"}), nil, nil, []string{"only the placeholders {namespace} and {pvc}"}},
		{"bad listen address", with(map[string]string{"LISTEN_ADDRESS": "localhost"}), nil, nil, []string{`LISTEN_ADDRESS "localhost"`}},
		{"stray argument", base, []string{"serve"}, nil, []string{"unexpected arguments"}},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig(tc.args, env(tc.env), io.Discard)
			if tc.errs != nil {
				require.Error(t, err)

				for _, e := range tc.errs {
					assert.Contains(t, err.Error(), e)
				}

				return
			}

			require.NoError(t, err)
			tc.check(t, c)
		})
	}
}

func TestPasswordNeverPrinted(t *testing.T) {
	c, err := parseConfig(nil, env(map[string]string{"KOPIA_REPOSITORY_PATH": "/r", "KOPIA_PASSWORD": "hunter2"}), io.Discard)
	require.NoError(t, err)
	assert.NotContains(t, fmtAll(c), "hunter2")

	pw, err := c.kopiaPassword()()
	require.NoError(t, err)
	assert.Equal(t, "hunter2", pw)
}
