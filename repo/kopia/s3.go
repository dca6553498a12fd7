package kopia

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/blob/s3"
	"github.com/kopia/kopia/repo/format"
)

// s3CheckTimeout bounds the probe before each load.
const s3CheckTimeout = 10 * time.Second

// S3 is a repository in an S3 bucket, read through kopia's own S3 storage.
type S3 struct {
	Endpoint string // host:port, no scheme
	Bucket   string
	Prefix   string
	Region   string
	// Insecure talks plain HTTP.
	Insecure bool
	// CAFile, when set, holds PEM certificates trusted for the endpoint.
	CAFile string
	// Credentials returns the access key pair; it is called on every connect so rotated
	// Secret files are picked up. Empty keys use kopia's default (environment, IAM) chain.
	Credentials func() (accessKey, secretKey string, err error)
}

// String names the storage; it carries no secrets.
func (s S3) String() string { return "s3:" + s.Endpoint + "/" + s.Bucket + "/" + s.Prefix }

func (s S3) options() (*s3.Options, error) {
	o := &s3.Options{BucketName: s.Bucket, Prefix: s.Prefix, Endpoint: s.Endpoint, Region: s.Region, DoNotUseTLS: s.Insecure}

	if s.CAFile != "" {
		ca, err := os.ReadFile(s.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}

		o.RootCA = ca
	}

	if s.Credentials != nil {
		ak, sk, err := s.Credentials()
		if err != nil {
			return nil, err
		}

		o.AccessKeyID, o.SecretAccessKey = ak, sk
	}

	return o, nil
}

// Open returns kopia's S3 storage.
func (s S3) Open(ctx context.Context) (blob.Storage, error) {
	o, err := s.options()
	if err != nil {
		return nil, err
	}

	st, err := s3.New(ctx, o, false)
	if err != nil {
		return nil, fmt.Errorf("open s3 storage %s: %w", s, err)
	}

	return st, nil
}

// Check reads the metadata of the repository's format blob, bounded by a short timeout, so an
// unreachable endpoint, a missing bucket or refused credentials fail the load at once.
func (s S3) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s3CheckTimeout)
	defer cancel()

	st, err := s.Open(ctx)
	if err != nil {
		return err
	}
	defer st.Close(ctx) //nolint:errcheck // read-only probe

	if _, err := st.GetMetadata(ctx, format.KopiaRepositoryBlobID); err != nil {
		if errors.Is(err, blob.ErrBlobNotFound) {
			return fmt.Errorf("no kopia repository at %s (missing %s)", s, format.KopiaRepositoryBlobID)
		}

		return fmt.Errorf("read repository format blob: %w", err)
	}

	return nil
}
