package repo

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// S3Config is where an S3 backend's objects live and how to reach them. It is shared by every S3
// kind (kopia-s3, restic-s3), so an endpoint, a CA file or a pair of keys means the same thing
// for each: one parser, one validation, one CA loader.
type S3Config struct {
	// Endpoint is "host[:port]" (the predecessor's form, TLS per Secure) or a URL
	// "http(s)://host[:port]" whose scheme wins over Secure. Empty means AWS.
	Endpoint string `yaml:"endpoint"`
	Bucket   string `yaml:"bucket"`
	// Prefix is the key prefix the repositories live under.
	Prefix string `yaml:"prefix"`
	Region string `yaml:"region"`
	// Secure selects TLS for a "host:port" Endpoint.
	Secure bool `yaml:"secure"`
	// CAFile holds PEM certificates to trust for the endpoint (self-signed servers).
	CAFile string `yaml:"caFile"`
	// VirtualHostStyle addresses buckets as bucket.host instead of host/bucket.
	VirtualHostStyle bool `yaml:"virtualHostStyle"`
	// RequestTimeout bounds one S3 request attempt while refreshing; zero is the kind's default.
	RequestTimeout time.Duration `yaml:"requestTimeout"`
	AccessKey      Secret        `yaml:"-"`
	AccessKeyFile  string        `yaml:"accessKeyFile"`
	SecretKey      Secret        `yaml:"-"`
	SecretKeyFile  string        `yaml:"secretKeyFile"`
}

// AccessKeyRef is the access key as given.
func (c *S3Config) AccessKeyRef() SecretRef { return SecretRef{c.AccessKey, c.AccessKeyFile} }

// SecretKeyRef is the secret key as given.
func (c *S3Config) SecretKeyRef() SecretRef { return SecretRef{c.SecretKey, c.SecretKeyFile} }

// Fields are the S3 settings, shared by name with every S3 kind.
func (c *S3Config) Fields() []Field {
	return []Field{
		{"s3-endpoint", []string{"S3_ENDPOINT"}, "s3.endpoint", "S3 endpoint, host:port or http(s)://host:port (no path: use the prefix); empty: AWS", (*StringValue)(&c.Endpoint)},
		{"s3-bucket", []string{"S3_BUCKET"}, "s3.bucket", "S3 bucket", (*StringValue)(&c.Bucket)},
		{"s3-prefix", []string{"S3_PREFIX"}, "s3.prefix", "key prefix of the repositories ({prefix} of the restic template; the Kopia repository's prefix, used verbatim)", (*StringValue)(&c.Prefix)},
		{"s3-region", []string{"S3_REGION"}, "s3.region", "S3 region (default us-east-1)", (*StringValue)(&c.Region)},
		{"s3-secure", []string{"S3_SECURE"}, "s3.secure", "use TLS for a host:port endpoint (a URL's scheme wins)", (*BoolValue)(&c.Secure)},
		{"s3-ca-file", []string{"S3_CA_FILE"}, "s3.caFile", "PEM certificates to trust for the S3 endpoint", (*StringValue)(&c.CAFile)},
		{"s3-virtual-host-style", []string{"S3_VIRTUAL_HOST_STYLE"}, "s3.virtualHostStyle", "address buckets as bucket.host (default: path style)", (*BoolValue)(&c.VirtualHostStyle)},
		{"s3-request-timeout", []string{"S3_REQUEST_TIMEOUT"}, "s3.requestTimeout", "bound on one S3 request attempt while refreshing; default 10s", (*DurationValue)(&c.RequestTimeout)},
		{"s3-access-key", []string{"S3_ACCESS_KEY"}, "", "S3 access key (neither key: the SDK's default chain)", (*SecretValue)(&c.AccessKey)},
		{"s3-access-key-file", []string{"S3_ACCESS_KEY_FILE"}, "s3.accessKeyFile", "file holding the S3 access key, re-read before every refresh", (*StringValue)(&c.AccessKeyFile)},
		{"s3-secret-key", []string{"S3_SECRET_KEY"}, "", "S3 secret key (prefer the file)", (*SecretValue)(&c.SecretKey)},
		{"s3-secret-key-file", []string{"S3_SECRET_KEY_FILE"}, "s3.secretKeyFile", "file holding the S3 secret key, re-read before every refresh", (*StringValue)(&c.SecretKeyFile)},
	}
}

// Validate returns every problem at once (Problems, joined).
func (c *S3Config) Validate() error { return errors.Join(c.Problems()...) }

// Problems lists every problem, each wrapping ErrInvalidConfig. Messages never show
// credentials, even those wrongly put in the endpoint.
func (c *S3Config) Problems() []error {
	var errs []error

	add := func(format string, a ...any) { errs = append(errs, Problemf(format, a...)) }

	if c.Bucket == "" {
		add("S3_BUCKET (s3.bucket) is required")
	}

	if _, err := c.ParseEndpoint(); err != nil {
		errs = append(errs, err)
	}

	for _, s := range []struct {
		what string
		ref  SecretRef
	}{{"S3_ACCESS_KEY", c.AccessKeyRef()}, {"S3_SECRET_KEY", c.SecretKeyRef()}} {
		if err := s.ref.Validate(s.what); err != nil {
			errs = append(errs, err)
		}
	}

	if c.AccessKeyRef().Set() != c.SecretKeyRef().Set() {
		add("set both S3 keys (both the access key and the secret key) or neither, to use the default credential chain")
	}

	if c.RequestTimeout < 0 {
		add("S3_REQUEST_TIMEOUT %s must not be negative", c.RequestTimeout)
	}

	return errs
}

// Credentials reads the key pair now; both empty means the SDK's default chain.
func (c *S3Config) Credentials() (accessKey, secretKey Secret, err error) {
	if !c.AccessKeyRef().Set() {
		return "", "", nil
	}

	if accessKey, err = c.AccessKeyRef().Read(); err != nil {
		return "", "", fmt.Errorf("s3 access key: %w", err)
	}

	if secretKey, err = c.SecretKeyRef().Read(); err != nil {
		return "", "", fmt.Errorf("s3 secret key: %w", err)
	}

	return accessKey, secretKey, nil
}

// S3Endpoint is a parsed, validated S3 endpoint.
type S3Endpoint struct {
	// Host is "host[:port]" (IPv6 in brackets); empty means AWS's default endpoint.
	Host string
	// Secure is true for TLS.
	Secure bool
}

// URL is "http(s)://host[:port]", or empty for AWS's default.
func (e S3Endpoint) URL() string {
	if e.Host == "" {
		return ""
	}

	if e.Secure {
		return "https://" + e.Host
	}

	return "http://" + e.Host
}

// ParseEndpoint parses Endpoint: "host", "host:port", "[v6]:port" (TLS per Secure) or
// "http(s)://host[:port]" with an optional trailing "/" (the scheme, in any case, wins over
// Secure). Credentials, a path, a query and ports outside 1-65535 are refused with a message
// that names the problem; a path usually means the bucket or prefix was put in the endpoint.
// Empty means AWS, over TLS.
func (c *S3Config) ParseEndpoint() (S3Endpoint, error) {
	raw := strings.TrimSpace(c.Endpoint)
	if raw == "" {
		return S3Endpoint{Secure: true}, nil
	}

	fail := func(format string, a ...any) (S3Endpoint, error) {
		shown := c.Endpoint
		if strings.Contains(shown, "@") {
			shown = "[redacted]"
		}

		return S3Endpoint{}, Problemf("S3_ENDPOINT %q: "+format, append([]any{shown}, a...)...)
	}

	if rest, ok := strings.CutPrefix(raw, "s3:"); ok && !strings.HasPrefix(rest, "//") { // restic's s3:<url>, not s3://
		return fail("%s", splitResticRepository(rest))
	}

	if !strings.Contains(raw, "://") {
		scheme := "http"
		if c.Secure {
			scheme = "https"
		}

		raw = scheme + "://" + raw
	}

	u, err := url.Parse(raw)
	if err != nil {
		return fail("not a host:port or URL (an IPv6 address needs brackets: [::1]:9000)")
	}

	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fail("scheme %q is neither http nor https", u.Scheme)
	case u.User != nil:
		return fail("credentials in the endpoint are not allowed; use the access and secret key settings")
	case u.Path != "" && u.Path != "/":
		return fail("a path is not allowed (%s): put the bucket in S3_BUCKET and the rest in S3_PREFIX", u.Path)
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return fail("a query or fragment is not allowed")
	case u.Hostname() == "":
		return fail("no host")
	}

	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fail("port %q is not a port number (1-65535)", p)
		}
	}

	host := u.Hostname()
	if ip := net.ParseIP(host); ip == nil && !validHostname(host) {
		return fail("host %q is not a valid host name", host)
	}

	return S3Endpoint{Host: u.Host, Secure: u.Scheme == "https"}, nil
}

// splitResticRepository explains how to split a restic repository URL
// ("s3:https://host/bucket/prefix", restic's s3 backend syntax: the endpoint, then the bucket and
// the object prefix as path elements) into the S3 settings.
func splitResticRepository(rest string) string {
	u, err := url.Parse(rest)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "this is restic's repository syntax (s3:<endpoint>/<bucket>/<prefix>), not an endpoint: " +
			"put the endpoint in S3_ENDPOINT (https://host:port), the bucket in S3_BUCKET and the rest in S3_PREFIX"
	}

	bucket, prefix, _ := strings.Cut(strings.Trim(u.Path, "/"), "/")

	return fmt.Sprintf("this is restic's repository syntax (s3:<endpoint>/<bucket>/<prefix>), not an endpoint: split it into "+
		"S3_ENDPOINT=%s://%s S3_BUCKET=%s S3_PREFIX=%s (for per-PVC repositories the prefix is the part before <namespace>/<pvc>)",
		u.Scheme, u.Host, bucket, prefix)
}

func validHostname(h string) bool {
	for _, part := range strings.Split(h, ".") {
		if part == "" || len(part) > 63 || part[0] == '-' || part[len(part)-1] == '-' {
			return false
		}

		for i := range len(part) {
			if c := part[i]; !isAlnum(rune(c)) && c != '-' && c != '_' {
				return false
			}
		}
	}

	return true
}

// SchemeHint adds to err, an error talking to the S3 endpoint ep, the likely cause when it is
// the signature of the wrong scheme: plain HTTP sent to a TLS port (Go's client reads the
// server's TLS alert as "malformed HTTP response", or the server closes or resets the
// connection) or TLS
// sent to a plain HTTP port ("server gave HTTP response to HTTPS client", "first record does not
// look like a TLS handshake"). Other errors, and nil, are returned unchanged.
func SchemeHint(ep S3Endpoint, err error) error {
	if err == nil || ep.Host == "" {
		return err
	}

	msg := err.Error()
	other := "https"

	switch {
	case !ep.Secure && (strings.Contains(msg, "connection reset by peer") || strings.Contains(msg, "malformed HTTP response") ||
		strings.Contains(msg, "Connection closed by foreign host")): // the last: minio-go's, in Kopia's S3 storage
	case ep.Secure && (strings.Contains(msg, "server gave HTTP response to HTTPS client") || strings.Contains(msg, "does not look like a TLS handshake")):
		other = "http"
	default:
		return err
	}

	return fmt.Errorf("%w (the endpoint is %s; if the server speaks %s on that port, set S3_ENDPOINT=%s://%s)",
		err, ep.URL(), strings.ToUpper(other), other, ep.Host)
}

// ReadCAFile reads PEM certificates to trust and checks that at least one parses. It is the one
// CA loader of every S3 kind.
func ReadCAFile(path string) ([]byte, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}

	if !x509.NewCertPool().AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s: no PEM certificate found", path)
	}

	return pem, nil
}
