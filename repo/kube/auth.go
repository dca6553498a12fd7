package kube

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authentication/request/headerrequest"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
)

// Identity is an authenticated caller, as the API server states it.
type Identity struct {
	Name   string
	UID    string
	Groups []string
	Extra  map[string][]string
}

// AuthConfig configures the delegated authentication and authorisation.
type AuthConfig struct {
	// Audiences are the token audiences accepted (a TokenReview's spec.audiences). Empty: the
	// API server's own, i.e. any token the API server itself accepts.
	Audiences []string
	// CacheTTL is how long a verified token or an allowed access is remembered; a refused token
	// or a denied access is remembered for a tenth of it (at least a second). Errors are not.
	CacheTTL time.Duration
	// CacheSize bounds the remembered tokens (the SubjectAccessReview cache holds 8,192
	// answers, k8s.io/apiserver's own bound).
	CacheSize int
	// Proxy, when set, trusts an authenticating proxy's identity headers (X-Remote-User,
	// X-Remote-Group, X-Remote-Extra-*) on connections presenting a client certificate signed
	// by its CA and, when AllowedNames is set, naming one of them. Headers from anyone else are
	// ignored.
	Proxy *ProxyConfig
}

// ProxyConfig is the trusted authenticating proxy.
type ProxyConfig struct {
	// ClientCA is a PEM file of the CA that signs the proxy's client certificate; it is reloaded
	// when it changes.
	ClientCA string
	// AllowedNames are the common names the proxy's certificate may have; empty: any signed by
	// ClientCA.
	AllowedNames []string
}

// The identity headers an authenticating proxy sets (Kubernetes' requestheader defaults).
const (
	ProxyUserHeader        = "X-Remote-User"
	ProxyGroupHeader       = "X-Remote-Group"
	ProxyExtraHeaderPrefix = "X-Remote-Extra-"
)

// TokenReviewRule and SubjectAccessReviewRule are the rights delegated authentication and
// authorisation need (Kubernetes' system:auth-delegator ClusterRole grants both).
func TokenReviewRule() Rule {
	return Rule{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"},
		Why: "verify callers' bearer tokens (TokenReview, with the accepted audiences)"}
}

func SubjectAccessReviewRule() Rule {
	return Rule{APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"subjectaccessreviews"}, Verbs: []string{"create"},
		Why: "ask whether a caller may use an endpoint (SubjectAccessReview on the virtual API group backup-oracle.io)"}
}

// Authenticator verifies callers through the API server: bearer tokens with a TokenReview
// (k8s.io/apiserver's delegating authenticator), a trusted proxy's headers by its client
// certificate. Verified tokens are cached by their SHA-256 in a bounded LRU. It is safe for
// concurrent use.
type Authenticator struct {
	delegate authenticator.Request
	// audiences go into each request's context: the token authenticator puts them in the
	// TokenReview's spec.audiences only from there (k8s.io/apiserver's webhook token
	// authenticator, AuthenticateToken; the API server itself sets them in its
	// WithAuthentication filter). Without them the review checks the API server's audience.
	audiences authenticator.Audiences
	tokens    *expirable.LRU[[sha256.Size]byte, tokenResult]
	refused   *expirable.LRU[[sha256.Size]byte, tokenResult]
	runners   []func(context.Context)
}

type tokenResult struct {
	id  Identity
	err error
}

// The retries of one review (k8s.io/apiserver's defaults for delegated authentication).
func backoff() *wait.Backoff {
	return &wait.Backoff{Duration: 500 * time.Millisecond, Factor: 1.5, Jitter: 0.2, Steps: 5}
}

// Authenticator returns the delegated authenticator. Run must be called (it watches the proxy's
// CA file) when cfg.Proxy is set. Needs TokenReviewRule.
func (c *Client) Authenticator(cfg AuthConfig) (*Authenticator, error) {
	dc := authenticatorfactory.DelegatingAuthenticatorConfig{
		TokenAccessReviewClient: c.cs.AuthenticationV1(), TokenAccessReviewTimeout: 10 * time.Second,
		WebhookRetryBackoff: backoff(), APIAudiences: cfg.Audiences,
		CacheTTL: 0, // this type caches, bounded
	}

	a := &Authenticator{}

	if p := cfg.Proxy; p != nil {
		ca, err := dynamiccertificates.NewDynamicCAContentFromFile("auth-proxy-client-ca", p.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("kube: auth proxy client CA %q: %w", p.ClientCA, err)
		}

		dc.RequestHeaderConfig = &authenticatorfactory.RequestHeaderConfig{
			CAContentProvider: ca, AllowedClientNames: headerrequest.StaticStringSlice(p.AllowedNames),
			UsernameHeaders: headerrequest.StaticStringSlice{ProxyUserHeader}, GroupHeaders: headerrequest.StaticStringSlice{ProxyGroupHeader},
			ExtraHeaderPrefixes: headerrequest.StaticStringSlice{ProxyExtraHeaderPrefix}, UIDHeaders: headerrequest.StaticStringSlice{},
		}
		a.runners = append(a.runners, func(ctx context.Context) { ca.Run(ctx, 1) })
	}

	delegate, _, err := dc.New()
	if err != nil {
		return nil, fmt.Errorf("kube: delegated authentication: %w", err)
	}

	size := max(cfg.CacheSize, 1)
	ttl := max(cfg.CacheTTL, time.Second)
	a.delegate = delegate
	a.audiences = cfg.Audiences
	a.tokens = expirable.NewLRU[[sha256.Size]byte, tokenResult](size, nil, ttl)
	a.refused = expirable.NewLRU[[sha256.Size]byte, tokenResult](size, nil, max(ttl/10, time.Second))

	return a, nil
}

// Run keeps the proxy's CA current until ctx is done; without a proxy it returns at once.
func (a *Authenticator) Run(ctx context.Context) {
	for _, r := range a.runners {
		go r(ctx)
	}
}

// Authenticate returns the caller of r: ok false without credentials, an error naming the
// problem for credentials refused (the API server's reason: expired, another audience, ...) or
// that cannot be checked. A request with a client certificate is never answered from the cache
// (a proxy's headers decide). The Authorization header is never logged; on success the
// delegated authenticator removes it from r.
func (a *Authenticator) Authenticate(r *http.Request) (Identity, bool, error) {
	token, bearer := bearerToken(r)
	cacheable := bearer && (r.TLS == nil || len(r.TLS.PeerCertificates) == 0)

	var key [sha256.Size]byte
	if cacheable {
		key = sha256.Sum256([]byte(token))
		if res, ok := a.tokens.Get(key); ok {
			r.Header.Del("Authorization")
			return res.id, true, nil
		}

		if res, ok := a.refused.Get(key); ok {
			return Identity{}, false, res.err
		}
	}

	if len(a.audiences) > 0 {
		r = r.WithContext(authenticator.WithAudiences(r.Context(), a.audiences))
	}

	resp, ok, err := a.delegate.AuthenticateRequest(r)

	switch {
	case err != nil:
		if cacheable && !transient(err) {
			a.refused.Add(key, tokenResult{err: err})
		}

		return Identity{}, false, err
	case !ok && bearer:
		err = errors.New("invalid bearer token")
		if cacheable {
			a.refused.Add(key, tokenResult{err: err})
		}

		return Identity{}, false, err
	case !ok:
		return Identity{}, false, nil
	}

	id := identity(resp.User)
	if cacheable {
		a.tokens.Add(key, tokenResult{id: id})
	}

	return id, true, nil
}

// transient reports whether a refusal is the API server's unavailability rather than the
// token's fault (not cached).
func transient(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "connection refused") || strings.Contains(msg, "timeout") || strings.Contains(msg, "context deadline") ||
		strings.Contains(msg, "webhook call failed")
}

func bearerToken(r *http.Request) (string, bool) {
	h := strings.TrimSpace(r.Header.Get("Authorization"))

	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return "", false
	}

	token = strings.TrimSpace(token)

	return token, token != ""
}

func identity(u user.Info) Identity {
	return Identity{Name: u.GetName(), UID: u.GetUID(), Groups: u.GetGroups(), Extra: u.GetExtra()}
}

// Authorizer asks the API server whether a caller holds a permission (SubjectAccessReview,
// k8s.io/apiserver's delegating authorizer, whose cache is a bounded LRU). It is safe for
// concurrent use.
type Authorizer struct {
	delegate authorizer.Authorizer
}

// Access is one question: Verb on Resource of APIGroup in Namespace (empty: cluster-wide), or
// Verb on the non-resource URL Path.
type Access struct {
	Verb, APIGroup, Resource, Namespace, Path string
}

// Authorizer returns the delegated authorizer. Needs SubjectAccessReviewRule.
func (c *Client) Authorizer(cfg AuthConfig) (*Authorizer, error) {
	ttl := max(cfg.CacheTTL, time.Second)

	z, err := authorizerfactory.DelegatingAuthorizerConfig{
		SubjectAccessReviewClient: c.cs.AuthorizationV1(), AllowCacheTTL: ttl, DenyCacheTTL: max(ttl/10, time.Second),
		WebhookRetryBackoff: backoff(),
	}.New()
	if err != nil {
		return nil, fmt.Errorf("kube: delegated authorisation: %w", err)
	}

	return &Authorizer{delegate: z}, nil
}

// Authorize answers whether id may do a. The reason is the API server's (RBAC: empty on a
// plain denial); an error means it could not be asked.
func (z *Authorizer) Authorize(ctx context.Context, id Identity, a Access) (bool, string, error) {
	attrs := authorizer.AttributesRecord{
		User: &user.DefaultInfo{Name: id.Name, UID: id.UID, Groups: id.Groups, Extra: id.Extra},
		Verb: a.Verb, Namespace: a.Namespace, APIGroup: a.APIGroup, Resource: a.Resource,
		ResourceRequest: a.Path == "", Path: a.Path,
	}

	d, reason, err := z.delegate.Authorize(ctx, attrs)
	if err != nil {
		return false, reason, fmt.Errorf("kube: subjectaccessreview: %w", err)
	}

	return d == authorizer.DecisionAllow, reason, nil
}
