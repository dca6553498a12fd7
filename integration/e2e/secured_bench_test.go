//go:build e2e

package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness"
	"github.com/backup-oracle/backup-oracle/integration/harness/kopiamover"
)

// securedTargetRatio: the /exists hit path against a bare net/http handler (issue 12's target),
// both over TLS, the oracle authenticating and authorising every request (issue 20).
const securedTargetRatio = 0.9

// BenchmarkSecuredHitPath measures the real program's /exists hit path over TLS with
// authentication and authorisation by the real API server (TokenReview and SubjectAccessReview,
// remembered after the first request: the cached path), beside a bare net/http handler served
// over TLS with the same certificate, driven by the same client in the same run (twelve
// alternating one-second rounds of 16 keep-alive clients; the ratio is the median of the paired
// rounds). The oracle runs with the chart's GOMEMLIMIT. Run it with
//
//	go test -tags e2e -run '^$' -bench SecuredHitPath -benchtime 1x ./integration/e2e/
//
// (and the e2e environment, see the Makefile's E2E_ENV).
func BenchmarkSecuredHitPath(b *testing.B) {
	helm := harness.Tool(b, "helm")
	harness.Tool(b, "kopia")

	s := startStack(b)
	dir := b.TempDir()
	repository := newKopiaRepository(b, dir, []string{kopiamover.PolicySource(securedA, "data")})

	oracleBin, err := harness.BuildOracle(dir)
	require.NoError(b, err)
	baselineBin, err := harness.Build(dir, "./integration/baseline")
	require.NoError(b, err)

	ss := &securedStack{s: s, helm: helm, ca: harness.NewTestCA(b, s.dir), port: freePort(b)}
	ss.certs = [2]string{filepath.Join(s.dir, "tls.crt"), filepath.Join(s.dir, "tls.key")}
	ss.ca.Issue(b, ss.certs[0], ss.certs[1], 1)

	s.kube.apply(b, render(b, helm, "default", ss.chartArgs("cel", "--show-only", "templates/auth.yaml")...))
	ss.create(b, "/api/v1/namespaces", release)
	ss.create(b, "/api/v1/namespaces/"+release+"/serviceaccounts", release)
	kubeconfig := ss.kubeconfig(b, release, release)
	caller := ss.serviceAccountToken(b, "default", "bench-operator", "ClusterRoleBinding", release+"-operator")

	oracle := harness.StartOracle(b, harness.OracleOptions{
		Bin: oracleBin, CAFile: ss.ca.File, Token: caller,
		Args: []string{"--listen-address", hostPort(ss.port)},
		Env: []string{
			"BACKEND_TYPE=kopia-fs", "KOPIA_REPOSITORY_PATH=" + repository, "KOPIA_PASSWORD_FILE=" + writePassword(b, s.dir),
			"TLS_CERT_FILE=" + ss.certs[0], "TLS_KEY_FILE=" + ss.certs[1], "AUTH_MODE=kubernetes",
			"KUBECONFIG=" + kubeconfig, "GATE_CHECK_INTERVAL=0", "LOG_LEVEL=warn", "GOMEMLIMIT=96MiB",
		},
	})
	s.all = append(s.all, oracle.PID())
	oracle.WaitReady(b, time.Minute)

	baseline := harness.StartOracle(b, harness.OracleOptions{Bin: baselineBin, CAFile: ss.ca.File,
		Env: []string{"TLS_CERT_FILE=" + ss.certs[0], "TLS_KEY_FILE=" + ss.certs[1]}})
	s.all = append(s.all, baseline.PID())

	client := securedClient(b, ss.ca.File, caller, benchConc)
	hit := oracle.URL + "/exists/" + securedA + "/data"

	resp, err := client.Get(hit) //nolint:noctx // bounded by the client's timeout
	require.NoError(b, err)
	resp.Body.Close()
	require.Equal(b, http.StatusOK, resp.StatusCode, "the caller is authenticated and authorised")

	harness.Throughput(client, hit, benchConc, 500*time.Millisecond) // warm up connections and caches
	oracleRPS, baseRPS, ratio, failures := harness.CompareRatio(client, hit, baseline.URL+"/", benchConc, benchRounds, time.Second)
	require.Zero(b, failures, "every request answered 200")

	fmt.Printf("\n/exists hit path over TLS, authenticated and authorised (cached): %.0f req/s, bare net/http handler over TLS in the same run %.0f req/s: ratio %.2f (median of %d paired rounds; target at least %.1f) %s\n",
		oracleRPS, baseRPS, ratio, benchRounds, securedTargetRatio, map[bool]string{true: "met", false: "MISSED"}[ratio >= securedTargetRatio])
	b.ReportMetric(oracleRPS, "exists-req/s")
	b.ReportMetric(baseRPS, "baseline-req/s")
	b.ReportMetric(ratio, "ratio")
}

const (
	benchConc   = 16
	benchRounds = 12
)

// securedClient is a keep-alive client for conc workers trusting caFile and sending token.
func securedClient(b *testing.B, caFile, token string, conc int) *http.Client {
	pem, err := os.ReadFile(caFile)
	require.NoError(b, err)

	pool := x509.NewCertPool()
	require.True(b, pool.AppendCertsFromPEM(pem))

	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, MaxIdleConns: conc * 2, MaxIdleConnsPerHost: conc * 2}

	return &http.Client{Timeout: 10 * time.Second, Transport: bearer{token: token, next: tr}}
}

// bearer adds the caller's token to every request.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (t bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+t.token)

	return t.next.RoundTrip(r)
}
