package ledger_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/repo"
	"github.com/backup-oracle/backup-oracle/repo/ledger"
)

var _ repo.Ledger = (*ledger.File)(nil)

func TestParse(t *testing.T) {
	cases := []struct {
		name string
		body string
		want []repo.PVC
		errs []string
	}{
		{"list", "pvcs:\n  - shop/postgres\n  - shop/my.app.data\n", []repo.PVC{{Namespace: "shop", Name: "postgres"}, {Namespace: "shop", Name: "my.app.data"}}, nil},
		{"flow list and comments", "# ours\npvcs: [web/app]\n", []repo.PVC{{Namespace: "web", Name: "app"}}, nil},
		{"empty list", "pvcs: []\n", nil, nil},
		{"empty file", "", nil, []string{"empty file"}},
		{"no pvcs key", "other: 1\n", nil, []string{"field other not found"}},
		{"null pvcs", "pvcs:\n", nil, []string{`no "pvcs" key`}},
		{"misspelt key", "pvc: [web/app]\n", nil, []string{"field pvc not found"}},
		{"not a list", "pvcs: web/app\n", nil, []string{"cannot unmarshal"}},
		{"every bad entry", "pvcs: [web/app, noslash, Web/app, web/Bad_Name]\n", nil,
			[]string{`entry 2 "noslash": want <namespace>/<pvc>`, `entry 3 "Web/app"`, `entry 4 "web/Bad_Name"`}},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ledger.Parse([]byte(tc.body))
			if tc.errs != nil {
				require.Error(t, err)

				for _, e := range tc.errs {
					assert.Contains(t, err.Error(), e)
				}

				return
			}

			require.NoError(t, err)
			assert.Len(t, got, len(tc.want))

			for _, p := range tc.want {
				assert.True(t, got[p], p.String())
			}
		})
	}
}

func TestFileReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "expected.yaml")
	app := repo.PVC{Namespace: "web", Name: "app"}

	f := ledger.Open(path)
	_, err := f.Expected(app)
	require.Error(t, err, "a missing file is an error, never an empty ledger")
	assert.Contains(t, err.Error(), "expected-backups ledger "+path)

	require.NoError(t, os.WriteFile(path, []byte("pvcs: [web/app]\n"), 0o600))
	require.NoError(t, f.Reload())

	ok, err := f.Expected(app)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, 1, f.Len())

	ok, err = f.Expected(repo.PVC{Namespace: "web", Name: "other"})
	require.NoError(t, err)
	assert.False(t, ok)

	require.NoError(t, os.WriteFile(path, []byte("pvcs: [web/app\n"), 0o600))
	require.Error(t, f.Reload(), "a malformed edit is an error")

	_, err = f.Expected(app)
	assert.Error(t, err, "and stays one: the previous content is not kept silently")
}

func TestNamesMatchWithoutDots(t *testing.T) {
	path := filepath.Join(t.TempDir(), "expected.yaml")
	require.NoError(t, os.WriteFile(path, []byte("pvcs: [shop/myappdata, web/a.b]\n"), 0o600))

	f := ledger.Open(path)

	for _, tc := range []struct {
		pvc  repo.PVC
		want bool
	}{
		{repo.PVC{Namespace: "shop", Name: "my.app.data"}, true},
		{repo.PVC{Namespace: "shop", Name: "myappdata"}, true},
		{repo.PVC{Namespace: "web", Name: "ab"}, true},
		{repo.PVC{Namespace: "web", Name: "a.b"}, true},
		{repo.PVC{Namespace: "web", Name: "abc"}, false},
		{repo.PVC{Namespace: "other", Name: "ab"}, false},
	} {
		got, err := f.Expected(tc.pvc)
		require.NoError(t, err)
		assert.Equal(t, tc.want, got, tc.pvc.String())
	}
}
