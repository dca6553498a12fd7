package repo_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/repo"
)

// s3EndpointCases are tricky endpoints and the verdict of the one parser every S3 kind uses
var s3EndpointCases = []struct {
	Name     string
	Endpoint string
	Secure   bool
	Host     string // "" with Err set: refused
	TLS      bool
	Err      string
}{
	{"empty is AWS over TLS", "", false, "", true, ""},
	{"host:port, plain", "minio:9000", false, "minio:9000", false, ""},
	{"host:port, S3_SECURE", "minio:9000", true, "minio:9000", true, ""},
	{"host without port", "s3.example.com", true, "s3.example.com", true, ""},
	{"https URL wins over S3_SECURE=false", "https://s3.example:9000", false, "s3.example:9000", true, ""},
	{"http URL wins over S3_SECURE=true", "http://minio:9000", true, "minio:9000", false, ""},
	{"trailing slash", "http://minio:9000/", true, "minio:9000", false, ""},
	{"upper-case scheme", "HTTPS://minio:9000", false, "minio:9000", true, ""},
	{"IPv6 with port", "http://[::1]:9000", false, "[::1]:9000", false, ""},
	{"IPv6 host:port", "[fd00::5]:9000", true, "[fd00::5]:9000", true, ""},
	{"IPv4", "127.0.0.1:9000", false, "127.0.0.1:9000", false, ""},
	{"surrounding spaces", " minio:9000 ", false, "minio:9000", false, ""},
	{"bucket in the path", "https://minio:9000/bucket", false, "", false, "a path is not allowed (/bucket)"},
	{"host:port with a path", "minio:9000/bucket/prefix", false, "", false, "a path is not allowed (/bucket/prefix)"},
	{"credentials in a URL", "https://user:pw@minio:9000", false, "", false, "credentials in the endpoint are not allowed"},
	{"credentials in host:port", "user:pw@minio:9000", false, "", false, "credentials in the endpoint are not allowed"},
	{"other scheme", "ftp://minio:21", false, "", false, `scheme "ftp"`},
	{"s3 scheme", "s3://bucket", false, "", false, `scheme "s3"`},
	{"a restic repository", "s3:https://s3.example:9000/volsync/team-a/db", false, "", false,
		"restic's repository syntax (s3:<endpoint>/<bucket>/<prefix>), not an endpoint: split it into S3_ENDPOINT=https://s3.example:9000 S3_BUCKET=volsync S3_PREFIX=team-a/db"},
	{"a restic repository without a URL", "s3:volsync/x", false, "", false, "put the endpoint in S3_ENDPOINT (https://host:port), the bucket in S3_BUCKET"},
	{"query", "https://minio:9000?x=1", false, "", false, "query"},
	{"port out of range", "minio:70000", false, "", false, `port "70000"`},
	{"the lowest port", "minio:1", false, "minio:1", false, ""},
	{"the highest port", "minio:65535", false, "minio:65535", false, ""},
	{"port 0", "minio:0", false, "", false, `port "0"`},
	{"one past the highest port", "minio:65536", false, "", false, `port "65536"`},
	{"a restic repository of another scheme", "s3:ftp://s3.example/volsync", false, "", false, "put the endpoint in S3_ENDPOINT (https://host:port), the bucket in S3_BUCKET"},
	{"a restic repository with a URL without host", "s3:https:///volsync/x", false, "", false, "put the endpoint in S3_ENDPOINT (https://host:port), the bucket in S3_BUCKET"},
	{"non-numeric port", "http://minio:http", false, "", false, "not a host:port or URL"},
	{"bare IPv6 without brackets", "::1", false, "", false, "not a host:port or URL"},
	{"no host", "https://:9000", false, "", false, "no host"},
	{"bad host", "https://mi nio:9000", false, "", false, "not a host:port or URL"},
	{"dashes inside a host name", "http://my-minio.lan-1:9000", false, "my-minio.lan-1:9000", false, ""},
	{"a 63-character label, the longest", "http://" + strings.Repeat("a", 63) + ".lan:9000", false, strings.Repeat("a", 63) + ".lan:9000", false, ""},
	{"a 64-character label", "http://" + strings.Repeat("a", 64) + ".lan:9000", false, "", false, "not a valid host name"},
	{"underscore host is accepted (docker compose names)", "minio_1:9000", false, "minio_1:9000", false, ""},
}

func TestParseEndpoint(t *testing.T) {
	for _, tc := range s3EndpointCases {
		t.Run(tc.Name, func(t *testing.T) {
			c := repo.S3Config{Endpoint: tc.Endpoint, Secure: tc.Secure}

			ep, err := c.ParseEndpoint()
			if tc.Err != "" {
				require.ErrorIs(t, err, repo.ErrInvalidConfig)
				assert.Contains(t, err.Error(), tc.Err)
				assert.NotContains(t, err.Error(), "pw", "credentials never reach errors")

				return
			}

			require.NoError(t, err)
			assert.Equal(t, tc.Host, ep.Host)
			assert.Equal(t, tc.TLS, ep.Secure)
		})
	}
}

func TestEndpointURL(t *testing.T) {
	for in, want := range map[repo.S3Endpoint]string{
		{Host: "minio:9000"}:               "http://minio:9000",
		{Host: "minio:9000", Secure: true}: "https://minio:9000",
		{Host: "[::1]:9000"}:               "http://[::1]:9000",
		{Secure: true}:                     "",
	} {
		assert.Equal(t, want, in.URL())
	}
}

func TestS3ConfigProblems(t *testing.T) {
	cases := []struct {
		name string
		c    repo.S3Config
		want []string
	}{
		{"complete", repo.S3Config{Bucket: "b", AccessKey: "a", SecretKey: "s"}, nil},
		{"default chain", repo.S3Config{Bucket: "b"}, nil},
		{"files", repo.S3Config{Bucket: "b", AccessKeyFile: "/a", SecretKeyFile: "/s"}, nil},
		{"every problem", repo.S3Config{Endpoint: "https://u:p@h/x", AccessKey: "a", AccessKeyFile: "/a", RequestTimeout: -1},
			[]string{"S3_BUCKET (s3.bucket) is required", "credentials in the endpoint", "set S3_ACCESS_KEY or S3_ACCESS_KEY_FILE, not both", "set both S3 keys", "S3_REQUEST_TIMEOUT"}},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			problems := tc.c.Problems()
			require.Len(t, problems, len(tc.want))

			for i, p := range problems {
				assert.ErrorIs(t, p, repo.ErrInvalidConfig)
				assert.Contains(t, p.Error(), tc.want[i])
				assert.NotContains(t, p.Error(), "invalid configuration", "a problem reads as the to-do item only")
			}
		})
	}
}

func TestReadCAFile(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("hello"), 0o600))

	_, err := repo.ReadCAFile(notPEM)
	assert.ErrorContains(t, err, "no PEM certificate found")

	_, err = repo.ReadCAFile(filepath.Join(dir, "absent.pem"))
	assert.ErrorContains(t, err, "read CA file")
}

func TestS3Credentials(t *testing.T) {
	dir := t.TempDir()
	ak, sk := filepath.Join(dir, "ak"), filepath.Join(dir, "sk")
	require.NoError(t, os.WriteFile(ak, []byte("AKIA\n"), 0o600))
	require.NoError(t, os.WriteFile(sk, []byte("secret\r\n"), 0o600))

	c := repo.S3Config{AccessKeyFile: ak, SecretKeyFile: sk}
	a, s, err := c.Credentials()
	require.NoError(t, err)
	assert.Equal(t, "AKIA", a.Reveal(), "trailing newlines of a mounted Secret are dropped")
	assert.Equal(t, "secret", s.Reveal())

	require.NoError(t, os.Remove(sk))
	_, _, err = c.Credentials()
	require.ErrorContains(t, err, "s3 secret key")

	none := repo.S3Config{}
	a, s, err = none.Credentials()
	require.NoError(t, err)
	assert.Empty(t, a.Reveal()+s.Reveal(), "no keys: the SDK's default chain")
}

func TestSchemeHint(t *testing.T) {
	plain, tls := repo.S3Endpoint{Host: "minio:9000"}, repo.S3Endpoint{Host: "minio:9000", Secure: true}
	cases := []struct {
		ep   repo.S3Endpoint
		err  string
		hint string // "" for none
	}{
		{plain, `Get "http://minio:9000/b": read tcp: connection reset by peer`, "set S3_ENDPOINT=https://minio:9000"},
		{plain, `net/http: HTTP/1.x transport connection broken: malformed HTTP response "\x15\x03\x01"`, "if the server speaks HTTPS"},
		{plain, `Connection closed by foreign host http://minio:9000/b. Retry again.`, "set S3_ENDPOINT=https://minio:9000"},
		{tls, `http: server gave HTTP response to HTTPS client`, "set S3_ENDPOINT=http://minio:9000"},
		{tls, `tls: first record does not look like a TLS handshake`, "if the server speaks HTTP on that port"},
		{tls, `connection reset by peer`, ""}, // TLS already: the scheme is not the likely cause
		{plain, `AccessDenied: access denied`, ""},
		{repo.S3Endpoint{Secure: true}, `connection reset by peer`, ""}, // AWS
	}

	for _, tc := range cases {
		err := repo.SchemeHint(tc.ep, errors.New(tc.err))
		if tc.hint == "" {
			assert.Equal(t, tc.err, err.Error())
			continue
		}

		assert.Contains(t, err.Error(), tc.hint, tc.err)
		assert.True(t, strings.HasPrefix(err.Error(), tc.err), "the original error comes first")
	}

	assert.NoError(t, repo.SchemeHint(plain, nil))
}
