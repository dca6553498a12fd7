package repo_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/repo"
)

func TestPVCValidate(t *testing.T) {
	cases := []struct {
		name string
		pvc  repo.PVC
		want string // substring of the error; empty means valid
	}{
		{"plain", repo.PVC{Namespace: "web", Name: "data"}, ""},
		{"dotted pvc", repo.PVC{Namespace: "web", Name: "my.app.data"}, ""},
		{"253 characters", repo.PVC{Namespace: "web", Name: strings.Repeat("a", 253)}, ""},
		{"254 characters", repo.PVC{Namespace: "web", Name: strings.Repeat("a", 254)}, "254 characters long, at most 253"},
		{"empty namespace", repo.PVC{Name: "x"}, "namespace is empty"},
		{"empty pvc", repo.PVC{Namespace: "web"}, "pvc name is empty"},
		{"dotted namespace", repo.PVC{Namespace: "a.b", Name: "x"}, "DNS-1123 label"},
		{"long namespace", repo.PVC{Namespace: strings.Repeat("n", 64), Name: "x"}, "at most 63"},
		{"upper case", repo.PVC{Namespace: "web", Name: "Data"}, "DNS-1123 subdomain"},
		{"underscore", repo.PVC{Namespace: "web", Name: "a_b"}, "DNS-1123 subdomain"},
		{"leading dash", repo.PVC{Namespace: "web", Name: "-a"}, "DNS-1123 subdomain"},
		{"empty part", repo.PVC{Namespace: "web", Name: "a..b"}, "DNS-1123 subdomain"},
		{"slash", repo.PVC{Namespace: "web", Name: "a/b"}, "DNS-1123 subdomain"},
		// The edges of the allowed ranges, and the characters just outside them.
		{"edges of a-z and 0-9", repo.PVC{Namespace: "az09", Name: "z9.a0-9z"}, ""},
		{"before a", repo.PVC{Namespace: "web", Name: "`"}, "DNS-1123 subdomain"},
		{"after z", repo.PVC{Namespace: "web", Name: "a{"}, "DNS-1123 subdomain"},
		{"before 0", repo.PVC{Namespace: "web/", Name: "x"}, "DNS-1123 label"},
		{"after 9", repo.PVC{Namespace: "9:", Name: "x"}, "DNS-1123 label"},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.pvc.Validate()
			if tc.want == "" {
				assert.NoError(t, err)
				return
			}

			require.ErrorIs(t, err, repo.ErrInvalidName)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestSecretNeverPrints(t *testing.T) {
	s := repo.Secret("hunter2")
	for _, out := range []string{s.String(), s.GoString(), s.LogValue().String(), fmt.Sprintf("%v", s), fmt.Sprintf("%q", s), fmt.Sprintf("%x", s), fmt.Sprintf("%+v", s)} {
		assert.Equal(t, "[redacted]", out)
	}

	b, err := s.MarshalText()
	require.NoError(t, err)
	assert.Equal(t, "[redacted]", string(b))
	assert.Equal(t, "hunter2", s.Reveal())
}

// FuzzDNS1123 holds the hand-written validators to the Kubernetes regular expressions.
func FuzzDNS1123(f *testing.F) {
	label := regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	subdomain := regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

	for _, s := range []string{"", "a", "-", "a-b", "a.b", ".a", "a.", "a..b", "A", "a_b", "0.1.2", "a-.b", "é"} {
		f.Add(s)
	}

	f.Fuzz(func(t *testing.T, s string) {
		assert.Equal(t, label.MatchString(s), repo.IsDNS1123Label(s), "label %q", s)
		assert.Equal(t, subdomain.MatchString(s), repo.IsDNS1123Subdomain(s), "subdomain %q", s)
	})
}
