package main

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/backup-oracle/backup-oracle/repo"
	"github.com/backup-oracle/backup-oracle/repo/kube"
	"github.com/backup-oracle/backup-oracle/server"
)

// The authentication modes (AUTH_MODE).
const (
	authNone       = "none"
	authKubernetes = "kubernetes"
)

// Kyverno's default audience for the token it sends on service calls (its chart's
// apiCallToken.audience, charts/kyverno/values.yaml, v1.17.2 to v1.19.1), and the service's own.
const (
	kyvernoAudience = "kyverno-svc.kyverno.io"
	ownAudience     = "backup-oracle"
)

// StaticTokenUser and StaticTokenGroup are the identity of a caller presenting the static token
// (AUTH_TOKEN_FILE): RBAC grants it like any other (the chart binds the group to the Kyverno
// role: the CEL policies send the token).
const (
	StaticTokenUser  = "backup-oracle:static-token"
	StaticTokenGroup = "backup-oracle:policies"
)

// AuthConfig is who may ask (README, "Who may ask").
type AuthConfig struct {
	// Mode is none (everyone is served; a warning at start-up) or kubernetes.
	Mode      string
	Audiences []string
	// TokenFile holds a static bearer token (the CEL policies', which Kyverno cannot get a
	// projected token for); re-read when it changes.
	TokenFile string
	Anonymous []string
	CacheTTL  time.Duration
	CacheSize int
	// ProxyClientCA and ProxyNames: the trusted authenticating proxy (kube.ProxyConfig).
	ProxyClientCA string
	ProxyNames    []string
	// TrustedProxies are the CIDRs whose X-Forwarded-For gin believes (logs only).
	TrustedProxies []string
	// TLSCertFile and TLSKeyFile turn HTTPS on (reloaded when renewed).
	TLSCertFile, TLSKeyFile string
}

func defaultAuthConfig() AuthConfig {
	return AuthConfig{Mode: authNone, Audiences: []string{kyvernoAudience, ownAudience}, CacheTTL: time.Minute, CacheSize: 4096}
}

func (a *AuthConfig) settings() []setting {
	return []setting{
		{"tls-cert-file", []string{"TLS_CERT_FILE"}, "PEM certificate (chain) to serve HTTPS with; reloaded when it changes on disk; empty: plain HTTP (a warning at start-up)", (*repo.StringValue)(&a.TLSCertFile)},
		{"tls-key-file", []string{"TLS_KEY_FILE"}, "PEM private key of --tls-cert-file", (*repo.StringValue)(&a.TLSKeyFile)},
		{"auth-mode", []string{"AUTH_MODE"}, "who may ask: kubernetes (bearer tokens verified by TokenReview, each endpoint authorised by SubjectAccessReview) or none (everyone; a warning at start-up)", (*repo.StringValue)(&a.Mode)},
		{"auth-audiences", []string{"AUTH_AUDIENCES"}, "comma-separated token audiences accepted (Kyverno sends kyverno-svc.kyverno.io); add the API server's (e.g. https://kubernetes.default.svc) to accept kubeconfig tokens", (*listValue)(&a.Audiences)},
		{"auth-token-file", []string{"AUTH_TOKEN_FILE"}, "file holding a static bearer token (the CEL policies send it); its caller is user " + StaticTokenUser + ", group " + StaticTokenGroup + "; re-read when it changes", (*repo.StringValue)(&a.TokenFile)},
		{"auth-anonymous", []string{"AUTH_ANONYMOUS"}, "comma-separated endpoints served to requests without credentials, unrestricted (" + strings.Join(server.Endpoints(), ", ") + ")", (*listValue)(&a.Anonymous)},
		{"auth-cache-ttl", []string{"AUTH_CACHE_TTL"}, "how long a verified token or an allowed access is remembered (refusals: a tenth)", (*repo.DurationValue)(&a.CacheTTL)},
		{"auth-cache-size", []string{"AUTH_CACHE_SIZE"}, "bound on the remembered tokens", (*repo.IntValue)(&a.CacheSize)},
		{"auth-proxy-client-ca", []string{"AUTH_PROXY_CLIENT_CA"}, "PEM CA of a trusted authenticating proxy's client certificate: its X-Remote-User/X-Remote-Group headers then identify the caller (needs TLS)", (*repo.StringValue)(&a.ProxyClientCA)},
		{"auth-proxy-allowed-names", []string{"AUTH_PROXY_ALLOWED_NAMES"}, "comma-separated common names the proxy's certificate may have (empty: any the CA signed)", (*listValue)(&a.ProxyNames)},
		{"trusted-proxies", []string{"TRUSTED_PROXIES"}, "comma-separated addresses or CIDRs whose X-Forwarded-For is believed for the client address (none by default)", (*listValue)(&a.TrustedProxies)},
	}
}

func (a AuthConfig) validate() []error {
	var errs []error

	switch a.Mode {
	case authNone:
		if a.TokenFile != "" || len(a.Anonymous) > 0 || a.ProxyClientCA != "" {
			errs = append(errs, errors.New("AUTH_TOKEN_FILE, AUTH_ANONYMOUS and AUTH_PROXY_CLIENT_CA need AUTH_MODE=kubernetes"))
		}
	case authKubernetes:
	default:
		errs = append(errs, fmt.Errorf("AUTH_MODE %q: want %s or %s", a.Mode, authKubernetes, authNone))
	}

	if (a.TLSCertFile == "") != (a.TLSKeyFile == "") {
		errs = append(errs, errors.New("TLS_CERT_FILE and TLS_KEY_FILE go together"))
	}

	if a.ProxyClientCA != "" && a.TLSCertFile == "" {
		errs = append(errs, errors.New("AUTH_PROXY_CLIENT_CA needs TLS (TLS_CERT_FILE): the proxy is recognised by its client certificate"))
	}

	if a.CacheTTL <= 0 || a.CacheSize < 1 {
		errs = append(errs, fmt.Errorf("AUTH_CACHE_TTL and AUTH_CACHE_SIZE must be positive, got %s and %d", a.CacheTTL, a.CacheSize))
	}

	if err := server.ValidateAnonymous(a.Anonymous); err != nil {
		errs = append(errs, fmt.Errorf("AUTH_ANONYMOUS: %w", err))
	}

	return errs
}

// warnings are the start-up warnings of a configuration that serves too much.
func (a AuthConfig) warnings() []string {
	var out []string

	if a.TLSCertFile == "" {
		out = append(out, "serving plain HTTP (TLS_CERT_FILE is not set): answers and bearer tokens cross the network in clear text; "+
			"anyone able to answer on the service's address decides whether PVCs restore")
	}

	if a.Mode == authNone {
		out = append(out, "AUTH_MODE=none: every caller may read the inventory of every namespace, the repositories' locations and the metrics")
	}

	if len(a.Anonymous) > 0 {
		out = append(out, "AUTH_ANONYMOUS: requests without credentials are served, unrestricted, on "+strings.Join(a.Anonymous, ", "))
	}

	return out
}

// rules are the Kubernetes API rights authentication needs.
func (a AuthConfig) rules() []kube.Rule {
	if a.Mode != authKubernetes {
		return nil
	}

	return []kube.Rule{kube.TokenReviewRule(), kube.SubjectAccessReviewRule()}
}

// buildAuth wires the delegated authentication and authorisation (repo/kube) and the static
// token; run keeps the watched files current.
func buildAuth(cfg AuthConfig, kubeconfig string, logger *slog.Logger) (server.Auth, func(context.Context), error) {
	if cfg.Mode != authKubernetes {
		return server.Auth{}, func(context.Context) {}, nil
	}

	c, err := kube.New(kube.Config{Kubeconfig: kubeconfig, UserAgent: "backup-oracle/" + version})
	if err != nil {
		return server.Auth{}, nil, fmt.Errorf("authentication: %w", err)
	}

	kc := kube.AuthConfig{Audiences: cfg.Audiences, CacheTTL: cfg.CacheTTL, CacheSize: cfg.CacheSize}
	if cfg.ProxyClientCA != "" {
		kc.Proxy = &kube.ProxyConfig{ClientCA: cfg.ProxyClientCA, AllowedNames: cfg.ProxyNames}
	}

	authn, err := c.Authenticator(kc)
	if err != nil {
		return server.Auth{}, nil, err
	}

	authz, err := c.Authorizer(kc)
	if err != nil {
		return server.Auth{}, nil, err
	}

	var a server.Authenticator = kubeAuthenticator{authn}
	if cfg.TokenFile != "" {
		a = staticTokenFirst{token: newTokenFile(cfg.TokenFile, logger), next: a}
	}

	logger.Info("authentication: bearer tokens by TokenReview, endpoints by SubjectAccessReview", "api", c.Host(),
		"audiences", cfg.Audiences, "static-token", cfg.TokenFile != "", "proxy", cfg.ProxyClientCA != "", "anonymous", cfg.Anonymous)

	return server.Auth{Authenticator: a, Authorizer: kubeAuthorizer{authz}, Anonymous: cfg.Anonymous}, authn.Run, nil
}

// kubeAuthenticator and kubeAuthorizer adapt repo/kube to the server's interfaces.
type kubeAuthenticator struct{ a *kube.Authenticator }

func (k kubeAuthenticator) Authenticate(r *http.Request) (server.Caller, bool, error) {
	id, ok, err := k.a.Authenticate(r)
	return server.Caller(id), ok, err
}

type kubeAuthorizer struct{ z *kube.Authorizer }

func (k kubeAuthorizer) Authorize(ctx context.Context, c server.Caller, a server.Access) (bool, string, error) {
	access := kube.Access{Verb: a.Verb, Resource: a.Resource, Namespace: a.Namespace, Path: a.Path}
	if a.Path == "" {
		access.APIGroup = server.APIGroup
	}

	return k.z.Authorize(ctx, kube.Identity(c), access)
}

// staticTokenFirst recognises the static token, and hands every other request to next.
type staticTokenFirst struct {
	token *tokenFile
	next  server.Authenticator
}

func (s staticTokenFirst) Authenticate(r *http.Request) (server.Caller, bool, error) {
	h := r.Header.Get("Authorization")
	if token, ok := strings.CutPrefix(h, "Bearer "); ok && s.token.matches(token) {
		r.Header.Del("Authorization")
		return server.Caller{Name: StaticTokenUser, Groups: []string{StaticTokenGroup, "system:authenticated"}}, true, nil
	}

	return s.next.Authenticate(r)
}

// tokenFile is a static token in a file (a mounted Secret), re-read when the file changes: its
// modification time and size are looked at, at most once a second, when a token is presented.
// An unreadable or empty file matches no token (and is logged once per change).
type tokenFile struct {
	path   string
	logger *slog.Logger

	mu      sync.Mutex
	checked time.Time
	mod     time.Time
	size    int64
	token   []byte
}

func newTokenFile(path string, logger *slog.Logger) *tokenFile {
	return &tokenFile{path: path, logger: logger}
}

func (f *tokenFile) matches(token string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()

	if now := time.Now(); now.Sub(f.checked) >= time.Second {
		f.checked = now
		f.reload()
	}

	return len(f.token) > 0 && subtle.ConstantTimeCompare(f.token, []byte(token)) == 1
}

func (f *tokenFile) reload() {
	st, err := os.Stat(f.path)
	if err != nil {
		if f.token != nil || f.mod.IsZero() {
			f.logger.Warn("static token unreadable: it is refused until the file is back", "file", f.path, "err", err)
		}

		f.token, f.mod = nil, time.Unix(1, 0)

		return
	}

	if st.ModTime().Equal(f.mod) && st.Size() == f.size {
		return
	}

	b, err := os.ReadFile(f.path)
	f.mod, f.size = st.ModTime(), st.Size()

	switch t := strings.TrimSpace(string(b)); {
	case err != nil, t == "":
		f.token = nil
		f.logger.Warn("static token unreadable or empty: it is refused until the file is fixed", "file", f.path, "err", err)
	default:
		if f.token != nil {
			f.logger.Info("static token changed: the new one is accepted, the old one no longer", "file", f.path)
		}

		f.token = []byte(t)
	}
}
