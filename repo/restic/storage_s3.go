package restic

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/backup-oracle/backup-oracle/repo"
)

// maxBackoff caps the SDK's exponential backoff (with jitter) between two attempts.
const maxBackoff = 2 * time.Second

// s3Storage reads repositories from an S3 bucket. Safe for concurrent use. Each attempt of each
// request is bounded by S3Options.RequestTimeout (body included); the SDK's standard retryer
// retries connection errors, timeouts, 5xx and throttling with exponential backoff (at most 2s
// between attempts), never other 4xx answers. A request therefore gives up after at most
// MaxAttempts×RequestTimeout + (MaxAttempts-1)×2s, or earlier when ctx ends.
type s3Storage struct {
	client   *s3.Client
	bucket   string
	endpoint repo.S3Endpoint
}

// NewS3Storage returns a Storage on opts.Bucket. It does not contact the server. opts are
// expected to be valid (Options.Validate).
func NewS3Storage(ctx context.Context, opts S3Options) (Storage, error) {
	opts = Options{S3: opts}.withDefaults().S3

	endpoint, err := opts.ParseEndpoint()
	if err != nil {
		return nil, fmt.Errorf("restic: s3: %w", err)
	}

	httpClient := awshttp.NewBuildableClient().WithTimeout(opts.RequestTimeout)

	if opts.CAFile != "" {
		pem, err := repo.ReadCAFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("restic: s3: %w", err)
		}

		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}

		pool.AppendCertsFromPEM(pem)

		httpClient = httpClient.WithTransportOptions(func(tr *http.Transport) {
			if tr.TLSClientConfig == nil {
				tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
			}

			tr.TLSClientConfig.RootCAs = pool
		})
	}

	loadOpts := []func(*config.LoadOptions) error{
		config.WithRegion(opts.Region),
		config.WithHTTPClient(httpClient),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = opts.MaxAttempts
				o.MaxBackoff = maxBackoff
			})
		}),
	}

	if opts.AccessKey != "" {
		loadOpts = append(loadOpts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(opts.AccessKey.Reveal(), opts.SecretKey.Reveal(), "")))
	}

	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("restic: s3: load sdk config: %w", err)
	}

	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = !opts.VirtualHostStyle
		if u := endpoint.URL(); u != "" {
			o.BaseEndpoint = aws.String(u)
		}
		// Self-hosted servers do not all support the newer default checksums.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})

	return &s3Storage{client: client, bucket: opts.Bucket, endpoint: endpoint}, nil
}

// List implements Storage.
func (s *s3Storage) List(ctx context.Context, dir string) (Listing, error) {
	var l Listing

	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket:    aws.String(s.bucket),
		Prefix:    aws.String(dir),
		Delimiter: aws.String("/"),
	})

	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return Listing{}, repo.SchemeHint(s.endpoint, err)
		}

		for _, o := range page.Contents {
			l.Objects = append(l.Objects, Object{Key: aws.ToString(o.Key), Size: aws.ToInt64(o.Size), ModTime: aws.ToTime(o.LastModified)})
		}

		for _, cp := range page.CommonPrefixes {
			l.Dirs = append(l.Dirs, aws.ToString(cp.Prefix))
		}
	}

	return l, nil
}

// Get implements Storage.
func (s *s3Storage) Get(ctx context.Context, key string) ([]byte, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		var nsk *types.NoSuchKey

		var apiErr smithy.APIError
		if errors.As(err, &nsk) || (errors.As(err, &apiErr) && apiErr.ErrorCode() == "NotFound") {
			return nil, fmt.Errorf("%w: %w", ErrObjectNotFound, err)
		}

		return nil, repo.SchemeHint(s.endpoint, err)
	}
	defer out.Body.Close()

	if out.ContentLength != nil && *out.ContentLength > maxObjectSize {
		return nil, fmt.Errorf("object of %d bytes is larger than %d", *out.ContentLength, maxObjectSize)
	}

	return readLimited(out.Body)
}

// Location implements Storage.
func (s *s3Storage) Location(key string) string { return "s3:" + s.bucket + "/" + key }
