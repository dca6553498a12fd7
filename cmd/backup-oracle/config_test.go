package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/repo/kopia"
	"github.com/backup-oracle/backup-oracle/repo/restic"
)

func env(kv map[string]string) []string {
	out := make([]string, 0, len(kv))
	for k, v := range kv {
		out = append(out, k+"="+v)
	}

	return out
}

func kopiaFS(t *testing.T, c Config) *kopia.FSConfig { t.Helper(); return kopiaFSAt(t, c, 0) }

func kopiaFSAt(t *testing.T, c Config, i int) *kopia.FSConfig {
	t.Helper()
	require.Greater(t, len(c.Backends), i)

	k, ok := c.Backends[i].Config.(*kopia.FSConfig)
	require.True(t, ok, "backend %d is %T", i, c.Backends[i].Config)

	return k
}

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
			require.Len(t, c.Backends, 1)
			assert.Equal(t, "kopia-fs", c.Backends[0].Kind.Name)
			assert.Equal(t, "kopia-fs", c.Backends[0].Name)
			assert.Equal(t, ":8080", c.listenAddress())
			assert.Equal(t, 30*time.Second, c.RefreshInterval)
			assert.Equal(t, 2*time.Minute, c.MaxIndexAge)
			assert.Equal(t, "{pvc}-backup", kopiaFS(t, c).Kopia.Identity().SourceName)
			assert.Equal(t, "/data", kopiaFS(t, c).Kopia.Identity().Path)
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
				assert.Equal(t, "/mnt", kopiaFS(t, c).Kopia.Identity().Path)
			}, nil},
		{"password file", map[string]string{"KOPIA_REPOSITORY_PATH": "/r", "KOPIA_PASSWORD_FILE": "/s/pw"}, nil,
			func(t *testing.T, c Config) { assert.Equal(t, "/s/pw", kopiaFS(t, c).Kopia.PasswordFile) }, nil},
		{"demo needs no repository", nil, []string{"--demo"}, func(t *testing.T, c Config) { assert.True(t, c.Demo) }, nil},
		{"every problem at once", map[string]string{"BACKEND_TYPE": "nfs", "PORT": "99999", "MAX_INDEX_AGE": "10s", "REFRESH_INTERVAL": "1m", "LOG_LEVEL": "loud", "CACHE_SIZE": "0"}, nil, nil,
			[]string{`unknown type "nfs": valid types are kopia-fs, kopia-s3, restic-s3, s3, restic-fs`, "PORT 99999", "MAX_INDEX_AGE (10s) must exceed REFRESH_INTERVAL (1m0s)", `LOG_LEVEL "loud"`, "CACHE_SIZE must be at least 1"}},
		{"missing repository and password", map[string]string{}, nil, nil,
			[]string{"backend kopia-fs: KOPIA_REPOSITORY_PATH (kopia.repositoryPath) is required", "KOPIA_PASSWORD or KOPIA_PASSWORD_FILE (kopia.passwordFile) is required"}},
		{"both passwords", with(map[string]string{"KOPIA_PASSWORD_FILE": "/f"}), nil, nil, []string{"set KOPIA_PASSWORD or KOPIA_PASSWORD_FILE, not both"}},
		{"bad values name their variable", with(map[string]string{"PORT": "http", "HTTP_TIMEOUT": "soon"}), nil, nil,
			[]string{`PORT: "http" is not a whole number`, `HTTP_TIMEOUT: "soon" is not a duration`}},
		{"a value that does not parse and backend problems, together", with(map[string]string{"REFRESH_INTERVAL": "zz", "KOPIA_SOURCE_NAME_TEMPLATE": "{bad}", "KOPIA_PATH": "rel"}), nil, nil,
			[]string{`REFRESH_INTERVAL: "zz" is not a duration`, `source name template "{bad}": only the placeholders`, `path "rel" must be absolute`}},
		{"bad template", with(map[string]string{"KOPIA_SOURCE_NAME_TEMPLATE": "{name}-backup"}), nil, nil, []string{"only the placeholders {namespace} and {pvc}"}},
		{"a template without {pvc} (what a Flux ${APP} substitution produces)", with(map[string]string{"KOPIA_SOURCE_NAME_TEMPLATE": "gitea"}), nil, nil,
			[]string{`source name template "gitea" has no {pvc}: every PVC of a namespace would map to one identity`}},
		{"bad listen address", with(map[string]string{"LISTEN_ADDRESS": "localhost"}), nil, nil, []string{`LISTEN_ADDRESS "localhost"`}},
		{"stray argument", base, []string{"serve"}, nil, []string{"unexpected arguments"}},
		{"predecessor s3", map[string]string{"BACKEND_TYPE": "s3", "S3_ENDPOINT": "minio:9000", "S3_BUCKET": "volsync", "S3_ACCESS_KEY": "ak", "S3_SECRET_KEY": "sk", "S3_SECURE": "false"}, nil,
			func(t *testing.T, c Config) {
				b := c.Backends[0]
				assert.Equal(t, "restic-s3", b.Kind.Name)
				r, ok := b.Config.(*restic.S3Config)
				require.True(t, ok)
				assert.Equal(t, "minio:9000", r.S3.Endpoint)
				assert.False(t, r.S3.Secure)
				ep, err := r.S3.ParseEndpoint()
				require.NoError(t, err)
				assert.Equal(t, "http://minio:9000", ep.URL())
				assert.Equal(t, "volsync", r.S3.Bucket)
				assert.Empty(t, r.S3.Prefix, "repositories at <bucket>/<namespace>/<pvc>, as VolSync's RESTIC_REPOSITORY")
				ak, sk, err := r.S3.Credentials()
				require.NoError(t, err)
				assert.Equal(t, "ak", ak.Reveal())
				assert.Equal(t, "sk", sk.Reveal())
			}, nil},
		{"restic-s3 without bucket, half the keys, restic password twice", map[string]string{"BACKEND_TYPE": "restic-s3", "S3_ACCESS_KEY": "ak", "RESTIC_PASSWORD": "a", "RESTIC_PASSWORD_FILE": "/f"}, nil, nil,
			[]string{"S3_BUCKET (s3.bucket) is required", "set both S3 keys", "set RESTIC_PASSWORD or RESTIC_PASSWORD_FILE, not both"}},
		{"shared restic layout needs a password", map[string]string{"BACKEND_TYPE": "restic-fs", "RESTIC_REPOSITORY_PATH": "/r", "RESTIC_LAYOUT": "shared"}, nil, nil,
			[]string{"the shared layout needs the password"}},
		{"kopia-s3", map[string]string{"BACKEND_TYPE": "kopia-s3", "S3_ENDPOINT": "https://s3.example", "S3_BUCKET": "kopia", "KOPIA_PASSWORD_FILE": "/pw"}, nil,
			func(t *testing.T, c Config) {
				k, ok := c.Backends[0].Config.(*kopia.S3Config)
				require.True(t, ok)
				ep, err := k.S3.ParseEndpoint()
				require.NoError(t, err)
				assert.Equal(t, "s3.example", ep.Host)
				assert.True(t, ep.Secure, "an https URL wins over S3_SECURE")
			}, nil},
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

func TestIgnoredSettingsWarn(t *testing.T) {
	c, err := parseConfig([]string{"--restic-layout", "shared"}, env(map[string]string{
		"KOPIA_REPOSITORY_PATH": "/r", "KOPIA_PASSWORD": "pw", "S3_PREFIX": "volsync/", "S3_BUCKET": "b",
	}), io.Discard)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{
		"S3_BUCKET is set but ignored: the kopia-fs backend does not read it",
		"S3_PREFIX is set but ignored: the kopia-fs backend does not read it",
		"--restic-layout is set but ignored: the kopia-fs backend does not read it",
	}, c.Warnings)

	c, err = parseConfig(nil, env(map[string]string{"BACKEND_TYPE": "kopia-s3", "S3_BUCKET": "b", "KOPIA_PASSWORD": "pw"}), io.Discard)
	require.NoError(t, err)
	assert.Empty(t, c.Warnings, "settings the kind reads are not ignored")
}

// TestUnknownVariablesWarn: variables that look like settings but are not (misspelt, the
// movers' own) are named with the setting probably meant; others are ignored silently.
func TestUnknownVariablesWarn(t *testing.T) {
	c, err := parseConfig(nil, env(map[string]string{
		"KOPIA_REPOSITORY_PATH": "/r", "KOPIA_PASSWORD": "pw",
		"KOPIA_SOURCE_NAME_TEMPLTE": "{pvc}", "S3_BUKET": "b", "KOPIA_REPOSITORY": "filesystem:///repository",
		"KOPIA_FS_PATH": "/repository", "RESTIC_CACHE_DIR": "/tmp/c", "PATH": "/bin", "HOME": "/root", "KOPIA_EMPTY": "",
	}), io.Discard)
	require.NoError(t, err)

	assert.ElementsMatch(t, []string{
		"KOPIA_SOURCE_NAME_TEMPLTE is not a setting: did you mean KOPIA_SOURCE_NAME_TEMPLATE?",
		"S3_BUKET is not a setting: did you mean S3_BUCKET?",
		"KOPIA_REPOSITORY is the Kopia mover's repository URL; backup-oracle reads KOPIA_REPOSITORY_PATH (kopia-fs, the mounted directory) or S3_ENDPOINT, S3_BUCKET and S3_PREFIX (kopia-s3)",
		"KOPIA_FS_PATH is the Kopia mover's; backup-oracle reads KOPIA_REPOSITORY_PATH",
		"RESTIC_CACHE_DIR is not a setting backup-oracle reads (backup-oracle --help lists them)",
	}, c.Warnings)

	var out syncBuffer
	code := run(context.Background(), []string{"--check-config"}, env(map[string]string{
		"KOPIA_REPOSITORY_PATH": "/r", "KOPIA_PASSWORD": "pw", "KOPIA_SOURCE_NAME_TEMPLTE": "{pvc}",
	}), &out, &out)
	assert.Equal(t, 0, code)
	assert.Contains(t, out.String(), "warning: KOPIA_SOURCE_NAME_TEMPLTE is not a setting: did you mean KOPIA_SOURCE_NAME_TEMPLATE?")
}

func TestPasswordNeverPrinted(t *testing.T) {
	c, err := parseConfig(nil, env(map[string]string{"KOPIA_REPOSITORY_PATH": "/r", "KOPIA_PASSWORD": "hunter2"}), io.Discard)
	require.NoError(t, err)
	assert.NotContains(t, fmtAll(c), "hunter2")

	pw, err := kopiaFS(t, c).Kopia.PasswordRef().Read()
	require.NoError(t, err)
	assert.Equal(t, "hunter2", pw.Reveal())
}

func TestBackendsFile(t *testing.T) {
	write := func(t *testing.T, body string) string {
		t.Helper()

		p := filepath.Join(t.TempDir(), "backends.yaml")
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))

		return p
	}

	t.Run("ordered list", func(t *testing.T) {
		p := write(t, `
backends:
  - name: green
    type: restic-s3
    s3: {endpoint: "http://127.0.0.1:9000", bucket: volsync, prefix: green, accessKeyFile: /s/ak, secretKeyFile: /s/sk}
    restic: {passwordFile: /s/restic}
  - type: kopia-fs
    kopia: {repositoryPath: /repository, passwordFile: /s/kopia, sourceNameTemplate: "{pvc}-rs"}
`)
		c, err := parseConfig(nil, env(map[string]string{"BACKENDS_FILE": p}), io.Discard)
		require.NoError(t, err)
		require.Len(t, c.Backends, 2)
		assert.Equal(t, "green", c.Backends[0].Name)
		r, ok := c.Backends[0].Config.(*restic.S3Config)
		require.True(t, ok)
		assert.Equal(t, "/s/restic", r.Restic.PasswordFile)
		assert.Equal(t, "kopia-fs", c.Backends[1].Name, "the name defaults to the type")
		assert.Equal(t, "{pvc}-rs", kopiaFSAt(t, c, 1).Kopia.Identity().SourceName)
		assert.Equal(t, "/data", kopiaFSAt(t, c, 1).Kopia.Identity().Path, "the kind's defaults apply under the file's values")
	})

	cases := []struct{ name, body, want string }{
		{"unknown field", "backends:\n  - type: kopia-fs\n    kopia: {repositoryPath: /r, passwordFile: /p, pasword: x}\n", "field pasword not found"},
		{"empty", "backends: []\n", "no backends listed"},
		{"duplicate names", "backends:\n  - {type: restic-fs, restic: {path: /a}}\n  - {type: restic-fs, restic: {path: /b}}\n", `backend name "restic-fs" is used twice`},
		{"inline secrets are not accepted", "backends:\n  - type: kopia-fs\n    kopia: {repositoryPath: /r, password: hunter2}\n", "field password not found"},
		{"a kind only takes its own settings", "backends:\n  - type: kopia-s3\n    s3: {bucket: b}\n    kopia: {repositoryPath: /r, passwordFile: /p}\n", "field repositoryPath not found"},
		{"a filesystem kind has no s3 section", "backends:\n  - type: restic-fs\n    restic: {path: /r}\n    s3: {bucket: b}\n", "field s3 not found"},
		{"type is required", "backends:\n  - name: x\n", "type is required: one of kopia-fs"},
		{"unknown type", "backends:\n  - type: tape\n", `unknown type "tape"`},
		{"every entry's problems", "backends:\n  - type: tape\n  - type: nfs\n", `unknown type "nfs"`},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig(nil, env(map[string]string{"BACKENDS_FILE": write(t, tc.body)}), io.Discard)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}
