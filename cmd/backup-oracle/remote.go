package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/backup-oracle/backup-oracle/repo/kube"
)

// remoteFlags say how an operator command reaches a secured server (--server https://...).
type remoteFlags struct {
	token, caFile, serverName string
}

func (r *remoteFlags) register(fs *flag.FlagSet, getenv func(string) string) {
	fs.StringVar(&r.token, "token", getenv("BACKUP_ORACLE_TOKEN"), "bearer token sent to --server (default: the kubeconfig user's token, if it has one) [$BACKUP_ORACLE_TOKEN]")
	fs.StringVar(&r.caFile, "ca-file", getenv("BACKUP_ORACLE_CA_FILE"), "PEM CA that signed --server's certificate (the chart's ConfigMap <release>-ca) [$BACKUP_ORACLE_CA_FILE]")
	fs.StringVar(&r.serverName, "tls-server-name", "", "name to verify --server's certificate against, when the URL's host is another (the chart's certificate names localhost too, for kubectl port-forward)")
}

// remoteClient asks a running server: over HTTPS with --ca-file (else the system's roots), with
// the caller's token. The token is sent to that server only, never logged or echoed.
type remoteClient struct {
	http  *http.Client
	token string
	// tokenFrom says where the token came from, for the hint on a 401.
	tokenFrom string
}

func newRemoteClient(f remoteFlags, kubeconfig string) (*remoteClient, error) {
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.serverName}

	if f.caFile != "" {
		pem, err := os.ReadFile(f.caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca-file: %w", err)
		}

		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca-file %s: no PEM certificate in it", f.caFile)
		}

		tlsConfig.RootCAs = pool
	}

	transport := http.DefaultTransport.(*http.Transport).Clone() //nolint:forcetypeassert // the standard library's
	transport.TLSClientConfig = tlsConfig

	c := &remoteClient{http: &http.Client{Transport: transport, Timeout: 5 * time.Minute}, token: f.token, tokenFrom: "--token"}

	if c.token == "" {
		token, err := kube.BearerToken(kubeconfig)

		switch {
		case err == nil:
			c.token, c.tokenFrom = token, "the kubeconfig"
		case errors.Is(err, kube.ErrNoToken):
			c.tokenFrom = "nowhere (the kubeconfig's user has none)"
		default:
			c.tokenFrom = "nowhere (" + err.Error() + ")"
		}
	}

	return c, nil
}

func (c *remoteClient) ask(ctx context.Context, base, path string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+path, nil) //nolint:gosec // the operator's --server
	if err != nil {
		return 0, nil, fmt.Errorf("--server %q: %w", base, err)
	}

	// The kubeconfig's token is good at the API server too: it crosses the network encrypted
	// only. A token given explicitly is sent as asked.
	if c.token != "" && (req.URL.Scheme == "https" || c.tokenFrom == "--token") {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}

	resp, err := c.http.Do(req) //nolint:gosec // the operator's --server
	if err != nil {
		var unknownCA x509.UnknownAuthorityError
		if errors.As(err, &unknownCA) {
			err = fmt.Errorf("%w (pass the CA that signed the server's certificate with --ca-file)", err)
		}

		return 0, nil, fmt.Errorf("ask %s: %w", base, err)
	}
	defer resp.Body.Close()

	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("read answer of %s: %w", base, err)
	}

	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return 0, nil, fmt.Errorf("%s refused the credentials (token from %s): %s; a token it accepts: kubectl create token <service account> --audience backup-oracle",
			base, c.tokenFrom, errorOf(b))
	case http.StatusForbidden:
		return 0, nil, fmt.Errorf("%s: %s", base, errorOf(b))
	}

	return resp.StatusCode, b, nil
}

// errorOf is the error field of an answer, or the answer itself.
func errorOf(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}

	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}

	return strings.TrimSpace(string(body))
}
