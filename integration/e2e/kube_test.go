//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// kube talks to the API server over REST with the admin token: plain JSON, no client library.
type kube struct {
	url, token, kubeconfig, kubectl string
	client                          *http.Client
}

// apiResult is one API response: status code, decoded body, and how long the request took.
type apiResult struct {
	Code    int
	Body    map[string]any
	Raw     string
	Elapsed time.Duration
}

// Message is the Status message of an error response, each run of whitespace made one space:
// Kyverno versions wrap a policy's message differently.
func (r apiResult) Message() string {
	s, _ := r.Body["message"].(string)

	return strings.Join(strings.Fields(s), " ")
}

func newKube(url, token, kubeconfig, kubectl string) *kube {
	return &kube{url: url, token: token, kubeconfig: kubeconfig, kubectl: kubectl, client: &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			// The API server's self-signed serving certificate (--cert-dir); loopback only.
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // loopback test server
		},
	}}
}

// do sends body (JSON-encoded unless it is a string) to path. A transport error fails the test.
func (k *kube) do(t testing.TB, method, path string, body any, contentType string) apiResult {
	t.Helper()

	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		require.NoError(t, err)

		rd = bytes.NewReader(j)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, method, k.url+path, rd)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+k.token)
	req.Header.Set("Accept", "application/json")

	if contentType == "" {
		contentType = "application/json"
	}

	req.Header.Set("Content-Type", contentType)

	start := time.Now()
	resp, err := k.client.Do(req)
	require.NoError(t, err, "%s %s", method, path)

	defer resp.Body.Close()

	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)

	r := apiResult{Code: resp.StatusCode, Raw: string(raw), Elapsed: time.Since(start)}
	_ = json.Unmarshal(raw, &r.Body)

	return r
}

func (k *kube) get(t *testing.T, path string) apiResult {
	t.Helper()

	return k.do(t, http.MethodGet, path, nil, "")
}

// exists reports whether GET path answers 200 (404: false; anything else fails the test).
func (k *kube) exists(t *testing.T, path string) bool {
	t.Helper()

	r := k.get(t, path)
	require.Contains(t, []int{http.StatusOK, http.StatusNotFound}, r.Code, "GET %s: %s", path, r.Raw)

	return r.Code == http.StatusOK
}

// mustOK sends the request and requires a 2xx answer.
func (k *kube) mustOK(t testing.TB, method, path string, body any, contentType string) apiResult {
	t.Helper()

	r := k.do(t, method, path, body, contentType)
	require.True(t, r.Code >= 200 && r.Code < 300, "%s %s: %d %s", method, path, r.Code, r.Raw)

	return r
}

// kubectlRun runs kubectl against the stack with stdin; it returns combined output and error.
func (k *kube) kubectlRun(stdin string, args ...string) (string, error) {
	cmd := exec.Command(k.kubectl, append([]string{"--kubeconfig", k.kubeconfig}, args...)...) //nolint:gosec // pinned tool
	cmd.Env = append(os.Environ(), "KUBECTL_INTERACTIVE_DELETE=false")
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()

	return string(out), err
}

// apply applies YAML server-side (field manager e2e) and fails the test on error.
func (k *kube) apply(t testing.TB, yaml string, extra ...string) string {
	t.Helper()

	out, err := k.kubectlRun(yaml, append([]string{"apply", "--server-side", "--force-conflicts", "--field-manager", "e2e", "-f", "-"}, extra...)...)
	require.NoError(t, err, "kubectl apply:\n%s", out)

	return out
}

// nested returns obj[keys[0]][keys[1]]... or nil.
func nested(obj map[string]any, keys ...string) any {
	var cur any = obj
	for _, k := range keys {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}

		cur = m[k]
	}

	return cur
}

func str(obj map[string]any, keys ...string) string { s, _ := nested(obj, keys...).(string); return s }
