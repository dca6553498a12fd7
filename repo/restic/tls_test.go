package restic_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness"
	"github.com/backup-oracle/backup-oracle/repo"
	"github.com/backup-oracle/backup-oracle/repo/restic"
)

// TLS with a custom CA, endpoint forms and the SDK's default credential chain, against versitygw
// over HTTPS with a self-signed certificate.
func TestS3TLSAndCredentials(t *testing.T) {
	srv := harness.StartS3TLS(t)
	bucket := srv.CreateBucket("backups")

	cli := harness.NewResticCLI(t, srv)
	url := "s3:" + srv.URL + "/" + bucket + "/" + rel(backedUp)
	cli.Init(url, password, "2")
	cli.Backup(url, password)

	// The default chain reads the environment; keep the host's AWS files and metadata out.
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")

	base := restic.S3Options{S3Config: repo.S3Config{Bucket: bucket, AccessKey: repo.Secret(srv.AccessKey), SecretKey: repo.Secret(srv.SecretKey)}, MaxAttempts: 1}

	tests := []struct {
		name   string
		modify func(o *restic.S3Options)
		ok     bool
	}{
		{"host:port, secure, custom CA", func(o *restic.S3Options) { o.Endpoint, o.Secure, o.CAFile = srv.Endpoint, true, srv.CAFile }, true},
		{"https URL, custom CA", func(o *restic.S3Options) { o.Endpoint, o.CAFile = srv.URL, srv.CAFile }, true},
		{"default credential chain", func(o *restic.S3Options) {
			o.Endpoint, o.CAFile, o.AccessKey, o.SecretKey = srv.URL, srv.CAFile, "", ""
		}, true},
		{"CA not trusted", func(o *restic.S3Options) { o.Endpoint = srv.URL }, false},
		{"plain HTTP to a TLS server", func(o *restic.S3Options) { o.Endpoint = srv.Endpoint }, false},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := base
			tt.modify(&o)

			idx, err := newRepo(t, restic.Options{S3: o, Prefix: prefix}).Load(context.Background())
			if !tt.ok {
				require.ErrorIs(t, err, repo.ErrUnavailable)
				return
			}

			require.NoError(t, err)
			requireSnapshots(t, idx, backedUp, 1)
		})
	}
}
