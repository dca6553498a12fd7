package repo_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/repo"
)

func TestRegistryLookup(t *testing.T) {
	r := repo.Registry{{Name: "a"}, {Name: "b", Aliases: []string{"bee", "B"}}, {Name: "c"}}

	assert.Equal(t, []string{"a", "b", "bee", "B", "c"}, r.Names())

	for name, want := range map[string]string{"a": "a", "b": "b", "bee": "b", "B": "b", "c": "c"} {
		k, err := r.Lookup(name)
		require.NoError(t, err)
		assert.Equal(t, want, k.Name)
	}

	_, err := r.Lookup("tape")
	require.ErrorIs(t, err, repo.ErrInvalidConfig)
	assert.Contains(t, err.Error(), `unknown type "tape": valid types are a, b, bee, B, c`)
}

func TestProblemf(t *testing.T) {
	err := repo.Problemf("X %d is wrong: %w", 3, os.ErrNotExist)
	assert.Equal(t, "X 3 is wrong: file does not exist", err.Error())
	assert.ErrorIs(t, err, repo.ErrInvalidConfig)
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestSecretRef(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pw")

	cases := []struct {
		name    string
		ref     repo.SecretRef
		content *string
		want    string
		err     string
	}{
		{"value", repo.SecretRef{Value: "v"}, nil, "v", ""},
		{"file wins, newlines trimmed", repo.SecretRef{File: file}, ptr("pw\r\n\n"), "pw", ""},
		{"missing file", repo.SecretRef{File: filepath.Join(dir, "absent")}, nil, "", "read secret file"},
		{"empty file is no secret", repo.SecretRef{File: file}, ptr("\n"), "", "is empty"},
		{"nothing", repo.SecretRef{}, nil, "", ""},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.content != nil {
				require.NoError(t, os.WriteFile(file, []byte(*tc.content), 0o600))
			}

			got, err := tc.ref.Read()
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}

			require.NoError(t, err)
			assert.Equal(t, tc.want, got.Reveal())
		})
	}

	assert.ErrorContains(t, repo.SecretRef{Value: "a", File: "/b"}.Validate("KOPIA_PASSWORD"), "set KOPIA_PASSWORD or KOPIA_PASSWORD_FILE, not both")
	assert.NoError(t, repo.SecretRef{File: "/b"}.Validate("KOPIA_PASSWORD"))
	assert.False(t, repo.SecretRef{}.Set())
}

func ptr(s string) *string { return &s }

func TestFieldValues(t *testing.T) {
	var (
		s repo.StringValue
		b repo.BoolValue
		i repo.IntValue
		d repo.DurationValue
		x repo.SecretValue
	)

	require.NoError(t, s.Set("x"))
	require.NoError(t, b.Set("true"))
	require.NoError(t, i.Set("42"))
	require.NoError(t, d.Set("90"))
	require.NoError(t, x.Set("hunter2"))

	assert.Equal(t, "x", s.String())
	assert.True(t, bool(b))
	assert.True(t, b.IsBoolFlag())
	assert.Equal(t, 42, int(i))
	assert.Equal(t, 90*time.Second, time.Duration(d), "a bare number is seconds, as the predecessor took it")
	assert.Equal(t, "[redacted]", x.String())

	require.NoError(t, d.Set("2m"))
	assert.Equal(t, 2*time.Minute, time.Duration(d))

	assert.ErrorContains(t, b.Set("maybe"), `"maybe" is not a boolean`)
	assert.ErrorContains(t, i.Set("many"), `"many" is not a whole number`)
	assert.ErrorContains(t, d.Set("soon"), `"soon" is not a duration`)
}
