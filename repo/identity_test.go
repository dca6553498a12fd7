package repo_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/repo"
)

func TestKopiaIdentitySource(t *testing.T) {
	long := strings.Repeat("a", 45) + "-database-volume" // 61 characters
	cases := []struct {
		name string
		id   repo.KopiaIdentity
		pvc  repo.PVC
		want string
	}{
		{"plain", repo.DefaultKopiaIdentity(), repo.PVC{Namespace: "web", Name: "app"}, "app-backup@web:/data"},
		{"dots are dropped", repo.DefaultKopiaIdentity(), repo.PVC{Namespace: "web", Name: "my.app.data"}, "myappdata-backup@web:/data"},
		{"long name is cut to 50", repo.DefaultKopiaIdentity(), repo.PVC{Namespace: "db", Name: long},
			long[:50] + "@db:/data"},
		{"cut may end in a dash", repo.DefaultKopiaIdentity(), repo.PVC{Namespace: "db", Name: strings.Repeat("b", 49) + "-x"},
			strings.Repeat("b", 49) + "-@db:/data"},
		{"leading dot-separated parts", repo.DefaultKopiaIdentity(), repo.PVC{Namespace: "n", Name: "0.1.2"}, "012-backup@n:/data"},
		{"explicit username and hostname are verbatim", repo.KopiaIdentity{UserName: "{namespace}.{pvc}", HostName: "cluster-a", Path: "/data"},
			repo.PVC{Namespace: "web", Name: "a.b"}, "web.a.b@cluster-a:/data"},
		{"source name template", repo.KopiaIdentity{SourceName: "{namespace}-{pvc}", Path: "/mnt"},
			repo.PVC{Namespace: "web", Name: "a.b"}, "web-ab@web:/mnt"},
		{"empty after sanitising", repo.KopiaIdentity{SourceName: "{pvc}", Path: "/data"},
			repo.PVC{Namespace: "web", Name: "..."}, "volsync-default@web:/data"},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, tc.id.Validate())
			assert.Equal(t, tc.want, tc.id.Source(tc.pvc).String())
		})
	}
}

func TestKopiaUsername(t *testing.T) {
	cases := map[string]string{
		"app-backup":            "app-backup",
		"-_app_-":               "app",
		"a.b.c":                 "abc",
		"":                      "volsync-default",
		"...":                   "volsync-default",
		"--__--":                "volsync-default",
		"ÄpP!":                  "pP",
		strings.Repeat("x", 60): strings.Repeat("x", 50),
	}
	for in, want := range cases {
		assert.Equal(t, want, repo.KopiaUsername(in), "input %q", in)
	}
}

func TestKopiaHostname(t *testing.T) {
	cases := []struct{ ns, obj, want string }{
		{"web", "x", "web"},
		{"my_ns", "x", "my-ns"},
		{"-.web.-", "x", "web"},
		{"", "obj.name", "obj.name"},
		{"!!", "__", "volsync-default"},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, repo.KopiaHostname(tc.ns, tc.obj), "%q %q", tc.ns, tc.obj)
	}
}

func TestKopiaIdentityValidate(t *testing.T) {
	cases := []struct {
		name string
		id   repo.KopiaIdentity
		errs []string
	}{
		{"default", repo.DefaultKopiaIdentity(), nil},
		{"unknown placeholder", repo.KopiaIdentity{SourceName: "{name}-backup", Path: "/data"}, []string{"{name}"}},
		{"relative path and no source", repo.KopiaIdentity{UserName: "u", Path: "data"}, []string{"source name template is needed", "must be absolute"}},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.id.Validate()
			if tc.errs == nil {
				assert.NoError(t, err)
				return
			}

			require.ErrorIs(t, err, repo.ErrInvalidConfig)

			for _, e := range tc.errs {
				assert.Contains(t, err.Error(), e)
			}
		})
	}
}

// FuzzKopiaIdentity checks the invariants VolSync's mover guarantees for any valid PVC.
func FuzzKopiaIdentity(f *testing.F) {
	for _, s := range []string{"app", "my.app.data", strings.Repeat("a", 253), "0", "a-.-b"} {
		f.Add("ns", s)
	}

	f.Fuzz(func(t *testing.T, ns, name string) {
		pvc := repo.PVC{Namespace: ns, Name: name}
		if pvc.Validate() != nil {
			return
		}

		src := repo.DefaultKopiaIdentity().Source(pvc)
		assert.NotEmpty(t, src.UserName)
		assert.LessOrEqual(t, len(src.UserName), repo.MaxKopiaUsernameLen)
		assert.True(t, utf8.ValidString(src.UserName))
		assert.NotContains(t, src.UserName, ".")
		assert.Equal(t, ns, src.Host, "a valid namespace is its own hostname")
		assert.Equal(t, "/data", src.Path)
		assert.Equal(t, src, repo.DefaultKopiaIdentity().Source(pvc), "deterministic")
	})
}
