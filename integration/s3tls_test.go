package integration

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness"
	"github.com/backup-oracle/backup-oracle/repo"
)

// TestS3KindsOverTLS: every S3 kind, built through the registry with the same S3 settings,
// reads a repository written by its real CLI on an HTTPS server with a self-signed certificate
// when given the CA file, and refuses the server without it.
func TestS3KindsOverTLS(t *testing.T) {
	s3 := harness.StartS3TLS(t)
	data := dataDir(t)
	pvc := repo.PVC{Namespace: "web", Name: "app"}

	kopiaCLI := harness.NewKopiaS3Repository(t, s3, s3.CreateBucket("kopia"), kopiaPassword)
	kopiaCLI.Snapshot(data, repo.DefaultKopiaIdentity().Source(pvc).String())

	restic := s3.CreateBucket("restic")
	resticCLI := harness.NewResticCLI(t, s3)
	url := "s3:" + s3.URL + "/" + restic + "/web/app"
	resticCLI.Init(url, resticPassword, "2")
	resticCLI.Backup(url, resticPassword)

	cases := []struct {
		kind     string
		settings map[string]string
	}{
		{"kopia-s3", map[string]string{"s3-bucket": "kopia", "kopia-password-file": secretFile(t, kopiaPassword)}},
		{"restic-s3", map[string]string{"s3-bucket": restic, "restic-password-file": secretFile(t, resticPassword)}},
	}

	for _, tc := range cases {
		for _, endpoint := range []struct{ name, value, secure string }{
			{"https URL", s3.URL, "false"},
			{"host:port with S3_SECURE", s3.Endpoint, "true"},
		} {
			t.Run(tc.kind+" "+endpoint.name, func(t *testing.T) {
				settings := map[string]string{
					"s3-endpoint": endpoint.value, "s3-secure": endpoint.secure, "s3-ca-file": s3.CAFile,
					"s3-access-key-file": secretFile(t, s3.AccessKey), "s3-secret-key-file": secretFile(t, s3.SecretKey),
				}
				for k, v := range tc.settings {
					settings[k] = v
				}

				idx := load(t, openKind(t, tc.kind, settings))
				assert.Len(t, find(t, idx, pvc).Snapshots, 1)
			})
		}

		t.Run(tc.kind+" without the CA", func(t *testing.T) {
			settings := map[string]string{
				"s3-endpoint": s3.URL, "s3-access-key-file": secretFile(t, s3.AccessKey), "s3-secret-key-file": secretFile(t, s3.SecretKey),
			}
			for k, v := range tc.settings {
				settings[k] = v
			}

			_, err := openKind(t, tc.kind, settings).Load(context.Background())
			require.ErrorIs(t, err, repo.ErrUnavailable, "an untrusted certificate is an unavailable backend")
		})

		t.Run(tc.kind+" with http:// against the HTTPS server", func(t *testing.T) {
			settings := map[string]string{
				"s3-endpoint": "http://" + s3.Endpoint, "s3-access-key-file": secretFile(t, s3.AccessKey), "s3-secret-key-file": secretFile(t, s3.SecretKey),
				"s3-request-timeout": "2s",
			}
			for k, v := range tc.settings {
				settings[k] = v
			}

			_, err := openKind(t, tc.kind, settings).Load(context.Background())
			require.ErrorIs(t, err, repo.ErrUnavailable)
			assert.Contains(t, err.Error(), "if the server speaks HTTPS on that port, set S3_ENDPOINT=https://"+s3.Endpoint, "the message says what to do")
		})
	}
}
