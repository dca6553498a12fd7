package restic

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/repo"
)

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		// problems are substrings, one per expected error.
		problems []string
	}{
		{"directory", Options{Dir: "/mnt/restic"}, nil},
		{"s3 host:port", Options{S3: S3Options{S3Config: repo.S3Config{Endpoint: "minio:9000", Bucket: "b", AccessKey: "a", SecretKey: "s"}}}, nil},
		{"s3 url and default chain", Options{S3: S3Options{S3Config: repo.S3Config{Endpoint: "https://s3.example", Bucket: "b"}}}, nil},
		{"shared with password", Options{Dir: "/x", Layout: LayoutShared, Password: "pw"}, nil},
		{"custom template", Options{Dir: "/x", RepositoryTemplate: "{prefix}/{namespace}-{pvc}/restic"}, nil},
		{"nothing", Options{}, []string{"either a directory or an S3 bucket"}},
		{"both", Options{Dir: "/x", S3: S3Options{S3Config: repo.S3Config{Bucket: "b"}}}, []string{"not both"}},
		{"every problem at once", Options{
			S3:                 S3Options{S3Config: repo.S3Config{Bucket: "b", Endpoint: "ftp://x", AccessKey: "a"}, MaxAttempts: -1},
			Layout:             LayoutShared,
			RepositoryTemplate: "{prefix}/{pvc}/{other}",
			ListConcurrency:    -1,
		}, []string{"scheme", "both the access key", "max attempts", "must not contain", "needs the password", "only the placeholders", "list concurrency"}},
		{"per-pvc template without pvc", Options{Dir: "/x", RepositoryTemplate: "{prefix}/{namespace}"}, []string{"must contain {namespace} and {pvc}"}},
		{"unknown layout", Options{Dir: "/x", Layout: "flat"}, []string{`layout "flat"`}},
		{"endpoint with path", Options{S3: S3Options{S3Config: repo.S3Config{Bucket: "b", Endpoint: "http://h:1/bucket"}}}, []string{"a path is not allowed"}},
		{"smallest allowed values", Options{Dir: "/x", ListConcurrency: 1, VerifyConcurrency: 1, KeyCacheSize: 1,
			VerifyWait: time.Nanosecond, VerifyTimeout: time.Nanosecond}, nil},
		{"negative durations", Options{Dir: "/x", VerifyWait: -time.Nanosecond}, []string{"must not be negative"}},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.Validate()
			if tt.problems == nil {
				require.NoError(t, err)
				return
			}

			require.ErrorIs(t, err, repo.ErrInvalidConfig)

			for _, p := range tt.problems {
				assert.Contains(t, err.Error(), p)
			}

			var joined interface{ Unwrap() []error }
			require.ErrorAs(t, err, &joined)
			assert.Len(t, joined.Unwrap(), len(tt.problems))
		})
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	const value = "hunter2"

	opts := Options{Dir: "/x", Password: value, S3: S3Options{S3Config: repo.S3Config{SecretKey: value}}}

	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("opts", "password", opts.Password, "opts", opts)

	js, err := json.Marshal(opts)
	require.NoError(t, err)

	for _, s := range []string{
		fmt.Sprint(opts), fmt.Sprintf("%v %+v %#v %s %q %x", opts, opts, opts, opts.Password, opts.Password, opts.Password),
		fmt.Errorf("wrapped: %v", opts.Password).Error(), string(js), logs.String(),
	} {
		assert.NotContains(t, s, value)
	}

	assert.Equal(t, value, opts.Password.Reveal())
}

func TestLayout(t *testing.T) {
	p := repo.PVC{Namespace: "web", Name: "my.app-data"}

	tests := []struct {
		opts Options
		dir  string
		segs []string
	}{
		{Options{Prefix: "volsync"}, "volsync/web/my.app-data/", []string{"volsync", "{namespace}", "{pvc}"}},
		{Options{}, "web/my.app-data/", []string{"{namespace}", "{pvc}"}},
		{Options{Prefix: "/a/b/"}, "a/b/web/my.app-data/", []string{"a", "b", "{namespace}", "{pvc}"}},
		{Options{Prefix: "x", RepositoryTemplate: "{prefix}/{namespace}-{pvc}/restic"}, "x/web-my.app-data/restic/", []string{"x", "{namespace}-{pvc}", "restic"}},
		{Options{Prefix: "shared", Layout: LayoutShared}, "shared/", []string{"shared"}},
	}

	for _, tt := range tests {
		l := newLayout(tt.opts.withDefaults())
		assert.Equal(t, tt.dir, l.dir(p))
		assert.Equal(t, tt.segs, l.segments)
	}

	l := newLayout(Options{RepositoryTemplate: "{namespace}-{pvc}"}.withDefaults())
	assert.True(t, l.matches(0, "web-my.app-data"))
	assert.False(t, l.matches(0, ".sgwtmp"))
	assert.False(t, l.matches(0, "nodash"))
}
