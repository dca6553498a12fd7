package kopia

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/blob/s3"
	"github.com/kopia/kopia/repo/format"

	"github.com/backup-oracle/backup-oracle/repo"
)

// defaultS3CheckTimeout bounds the probe before each load when S3Config.RequestTimeout is zero.
const defaultS3CheckTimeout = 10 * time.Second

// awsEndpoint is Kopia's default S3 endpoint, used when none is configured.
const awsEndpoint = "s3.amazonaws.com"

// S3 is a repository in an S3 bucket, read through kopia's own S3 storage. Its S3Config holds
// the credentials themselves (AccessKey, SecretKey), already read: the kind's Open re-reads the
// Secret files before every load and builds a new S3 when they change. The storage ReadFormat
// reads through is opened once and kept (opening one costs requests). Safe for concurrent use.
type S3 struct {
	repo.S3Config

	mu    sync.Mutex
	probe blob.Storage
}

// NewS3 returns the storage for cfg (credentials already read).
func NewS3(cfg repo.S3Config) *S3 { return &S3{S3Config: cfg} }

// String names the storage; it carries no secrets.
func (s *S3) String() string {
	ep, _ := s.ParseEndpoint()
	host := ep.Host
	if host == "" {
		host = awsEndpoint
	}

	return "s3:" + host + "/" + s.Bucket + "/" + s.Prefix
}

func (s *S3) options() (*s3.Options, error) {
	ep, err := s.ParseEndpoint()
	if err != nil {
		return nil, err
	}

	o := &s3.Options{BucketName: s.Bucket, Prefix: s.Prefix, Endpoint: ep.Host, Region: s.Region, DoNotUseTLS: !ep.Secure}
	if o.Endpoint == "" {
		o.Endpoint = awsEndpoint
	}

	if s.CAFile != "" {
		if o.RootCA, err = repo.ReadCAFile(s.CAFile); err != nil {
			return nil, err
		}
	}

	o.AccessKeyID, o.SecretAccessKey = s.AccessKey.Reveal(), s.SecretKey.Reveal()

	return o, nil
}

// Open returns kopia's S3 storage.
func (s *S3) Open(ctx context.Context) (blob.Storage, error) {
	o, err := s.options()
	if err != nil {
		return nil, err
	}

	st, err := s3.New(ctx, o, false)
	if err != nil {
		if ep, perr := s.ParseEndpoint(); perr == nil {
			err = repo.SchemeHint(ep, err)
		}

		return nil, fmt.Errorf("open s3 storage %s: %w", s, err)
	}

	return st, nil
}

// ReadFormat reads the repository's format blob, bounded by RequestTimeout (10 s by default),
// so an unreachable endpoint, a missing bucket or refused credentials fail the load at once.
// The prefix is used verbatim, as Kopia does: a prefix meant as a folder needs its trailing
// slash.
func (s *S3) ReadFormat(ctx context.Context) ([]byte, error) {
	timeout := s.RequestTimeout
	if timeout <= 0 {
		timeout = defaultS3CheckTimeout
	}

	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	st, err := s.probeStorage(ctx)
	if err != nil {
		return nil, err
	}

	var buf outputBuffer

	if err := st.GetBlob(ctx, format.KopiaRepositoryBlobID, 0, -1, &buf); err != nil {
		if errors.Is(err, blob.ErrBlobNotFound) {
			hint := ""
			if s.Prefix != "" && !strings.HasSuffix(s.Prefix, "/") {
				hint = fmt.Sprintf("; the prefix %q is used verbatim, as Kopia does: for a repository in a folder, end it with a slash (%q)", s.Prefix, s.Prefix+"/")
			}

			return nil, fmt.Errorf("no kopia repository at %s (missing %s)%s", s, format.KopiaRepositoryBlobID, hint)
		}

		s.dropProbe(ctx)

		if ep, perr := s.ParseEndpoint(); perr == nil {
			err = repo.SchemeHint(ep, err)
		}

		return nil, fmt.Errorf("read repository format blob: %w", err)
	}

	return buf.Bytes(), nil
}

// outputBuffer is a blob.OutputBuffer in memory.
type outputBuffer struct{ bytes.Buffer }

func (b *outputBuffer) Length() int { return b.Len() }

func (s *S3) probeStorage(ctx context.Context) (blob.Storage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	if s.probe == nil {
		st, err := s.Open(ctx)
		if err != nil {
			return nil, err
		}

		s.probe = st
	}

	return s.probe, nil
}

// dropProbe forgets the probe storage after a failure, so the next read starts afresh.
func (s *S3) dropProbe(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()

	if s.probe != nil {
		_ = s.probe.Close(ctx)
		s.probe = nil
	}
}

// Close releases the probe storage.
func (s *S3) Close(ctx context.Context) error {
	s.dropProbe(ctx)
	return nil
}
