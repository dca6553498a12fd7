package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/backup-oracle/backup-oracle/repo"
)

// Who may ask (README, "Who may ask"). Callers are authenticated by an Authenticator (a bearer
// token checked with a TokenReview, a static token, or an auth proxy's identity headers) and
// each request is authorised by an Authorizer (a SubjectAccessReview) against a virtual API
// group that exists only in RBAC rules: nothing serves it, ClusterRoles and Roles grant it.

// APIGroup is the virtual API group of the rules that grant access to the service.
const APIGroup = "backup-oracle.io"

// The virtual resources and verbs the RBAC rules grant.
const (
	// ResourceBackups is namespaced: "get" asks about one PVC of the namespace (/exists,
	// /explain, /snapshots, the console's search), "list" reads the namespace's part of the
	// inventory (/backups, the console's table). Granted in every namespace (a ClusterRoleBinding),
	// list shows the whole inventory.
	ResourceBackups = "backups"
	// ResourceRepositories is cluster-wide: "get" shows where and what the repositories are
	// (/status, /identity, the console's backend and gate panels).
	ResourceRepositories = "repositories"
	VerbGet              = "get"
	VerbList             = "list"
)

// Caller is an authenticated identity, as Kubernetes states it (user.Info).
type Caller struct {
	Name   string
	UID    string
	Groups []string
	Extra  map[string][]string
}

// Anonymous is the caller of a request without credentials on an endpoint that admits them.
var Anonymous = Caller{Name: "system:anonymous", Groups: []string{"system:unauthenticated"}} //nolint:gochecknoglobals // a constant

// Authenticator tells who sent a request. It must be safe for concurrent use and bound its own
// work (caches, timeouts).
type Authenticator interface {
	// Authenticate returns the caller. ok is false, with no error, when the request carries no
	// credentials at all; an error means credentials were given and refused (invalid, expired,
	// another audience, an untrusted proxy): its message names the problem and never holds the
	// credential. It must not log or keep the Authorization header.
	Authenticate(r *http.Request) (c Caller, ok bool, err error)
}

// Access is one authorisation question: Verb on Resource of APIGroup in Namespace (empty:
// cluster-wide, i.e. in every namespace), or, when Path is set, Verb on that non-resource URL
// (Kubernetes' nonResourceURLs, e.g. get /metrics).
type Access struct {
	Verb      string
	Resource  string
	Namespace string
	Path      string
}

// String names the permission, as 403 answers state it.
func (a Access) String() string {
	switch {
	case a.Path != "":
		return fmt.Sprintf("%s on the non-resource URL %s", a.Verb, a.Path)
	case a.Namespace == "":
		return fmt.Sprintf("%s %s.%s cluster-wide", a.Verb, a.Resource, APIGroup)
	default:
		return fmt.Sprintf("%s %s.%s in namespace %q", a.Verb, a.Resource, APIGroup, a.Namespace)
	}
}

// Authorizer answers whether a caller holds a permission (a SubjectAccessReview). It must be safe
// for concurrent use and cache its answers (bounded). An error means it could not tell.
type Authorizer interface {
	Authorize(ctx context.Context, c Caller, a Access) (allowed bool, reason string, err error)
}

// Auth configures who may ask. The zero value serves everyone (the demo, and installations that
// choose it): cmd warns at start-up.
type Auth struct {
	// Authenticator and Authorizer are both set, or both nil.
	Authenticator Authenticator
	Authorizer    Authorizer
	// Anonymous lists the endpoints (Endpoints) a request without credentials may use, without
	// authorisation: it is served as system:anonymous and sees everything that endpoint shows.
	Anonymous []string
}

func (a Auth) enabled() bool { return a.Authenticator != nil }

// Endpoints are the names Auth.Anonymous takes.
func Endpoints() []string {
	return []string{"exists", "explain", "snapshots", "identity", "backups", "status", "metrics", "openapi", "console"}
}

// ValidateAnonymous checks a list of endpoint names.
func ValidateAnonymous(names []string) error {
	var errs []error

	for _, n := range names {
		if !slices.Contains(Endpoints(), n) {
			errs = append(errs, fmt.Errorf("%w: anonymous endpoint %q: want some of %s", repo.ErrInvalidParameter, n, strings.Join(Endpoints(), ", ")))
		}
	}

	return errors.Join(errs...)
}

// The gin context keys of the request's caller and whether its access is unrestricted.
const (
	callerKey       = "backup-oracle.caller"
	unrestrictedKey = "backup-oracle.unrestricted"
)

// need states what an endpoint asks of a request; nil: authentication only (the endpoint
// authorises what it shows itself).
type need func(c *gin.Context) *Access

func pvcNeed(c *gin.Context) *Access {
	return &Access{Verb: VerbGet, Resource: ResourceBackups, Namespace: c.Param("namespace")}
}

func repositoriesNeed(*gin.Context) *Access {
	return &Access{Verb: VerbGet, Resource: ResourceRepositories}
}

func pathNeed(path string) need {
	return func(*gin.Context) *Access { return &Access{Verb: VerbGet, Path: path} }
}

// guard authenticates the request and, when the endpoint needs a permission, authorises it:
// 401 without valid credentials (unless the endpoint admits anonymous callers), 403 naming the
// permission missing, 503 when it cannot be checked. /exists and /explain answer with an
// unknown decision, which Kyverno's policies deny on.
func (h *handler) guard(endpoint string, n need) gin.HandlerFunc {
	if !h.auth.enabled() {
		return func(c *gin.Context) { c.Set(unrestrictedKey, true) }
	}

	anonymous := slices.Contains(h.auth.Anonymous, endpoint)

	return func(c *gin.Context) {
		caller, ok, err := h.auth.Authenticator.Authenticate(c.Request)

		switch {
		case err != nil:
			h.deny(c, http.StatusUnauthorized, "unauthorized: "+err.Error())
			return
		case !ok && anonymous:
			c.Set(callerKey, Anonymous)
			c.Set(unrestrictedKey, true)

			return
		case !ok:
			h.deny(c, http.StatusUnauthorized, "unauthorized: no credentials: send Authorization: Bearer <token> (a service-account token "+
				"for one of the service's audiences, e.g. kubectl create token <service account> --audience backup-oracle), or come through the trusted auth proxy")

			return
		}

		c.Set(callerKey, caller)

		if n == nil {
			return
		}

		if a := n(c); a != nil && !h.allowed(c, caller, *a) {
			return
		}

		if h.logger.Enabled(c.Request.Context(), slog.LevelDebug) {
			h.logger.Debug("authorised", "user", caller.Name, "endpoint", endpoint)
		}
	}
}

// allowed asks the authorizer, answering 403 or 503 itself when the answer is not yes.
func (h *handler) allowed(c *gin.Context, caller Caller, a Access) bool {
	ok, reason, err := h.auth.Authorizer.Authorize(c.Request.Context(), caller, a)

	switch {
	case err != nil:
		h.logger.Warn("authorisation could not be checked", "user", caller.Name, "access", a.String(), "err", err)
		h.deny(c, http.StatusServiceUnavailable, fmt.Sprintf("cannot check whether %q may %s: %v", caller.Name, a, err))

		return false
	case !ok:
		h.deny(c, http.StatusForbidden, forbidden(caller, a, reason))
		return false
	}

	return true
}

func forbidden(caller Caller, a Access, reason string) string {
	msg := fmt.Sprintf("forbidden: %q may not %s", caller.Name, a)
	if reason != "" {
		msg += " (" + reason + ")"
	}

	return msg + "; the chart's ClusterRoles backup-oracle-viewer (backups) and backup-oracle-operator (everything) grant it"
}

// deny ends the request with code and the message: an unknown decision on /exists and /explain,
// an error body elsewhere.
func (h *handler) deny(c *gin.Context, code int, msg string) {
	h.logger.Debug("refused", "code", code, "endpoint", c.FullPath(), "reason", msg) // msg names the caller, never the token

	if code == http.StatusUnauthorized {
		c.Header("WWW-Authenticate", `Bearer realm="backup-oracle"`)
	}

	if p := c.FullPath(); strings.HasPrefix(p, "/exists/") || strings.HasPrefix(p, "/explain/") {
		c.AbortWithStatusJSON(code, existsResponse{Decision: repo.Unknown, Namespace: c.Param("namespace"), PVC: c.Param("pvc"), Error: msg})
		return
	}

	c.AbortWithStatusJSON(code, errorBody{Error: msg})
}

// callerOf is the request's caller (Anonymous when authentication is off).
func callerOf(c *gin.Context) Caller {
	if v, ok := c.Get(callerKey); ok {
		if caller, ok := v.(Caller); ok {
			return caller
		}
	}

	return Anonymous
}

// unrestricted reports whether the request sees everything without asking the authorizer
// (authentication off, or an anonymous endpoint).
func unrestricted(c *gin.Context) bool {
	return c.GetBool(unrestrictedKey)
}

// may answers an authorisation question for what an endpoint shows in part: true when the
// request is unrestricted, false (with the error) when it cannot be told.
func (h *handler) may(c *gin.Context, a Access) (bool, error) {
	if unrestricted(c) {
		return true, nil
	}

	ok, _, err := h.auth.Authorizer.Authorize(c.Request.Context(), callerOf(c), a)

	return ok, err
}

// visibleNamespaces is the subset of namespaces the caller may list backups of; all of them
// (nil filter) when it may list them cluster-wide. An error means it could not be told.
func (h *handler) visibleNamespaces(c *gin.Context, namespaces []string) (all bool, visible map[string]bool, err error) {
	if ok, err := h.may(c, Access{Verb: VerbList, Resource: ResourceBackups}); err != nil || ok {
		return ok, nil, err
	}

	visible = map[string]bool{}

	for _, ns := range namespaces {
		if visible[ns] {
			continue
		}

		ok, err := h.may(c, Access{Verb: VerbList, Resource: ResourceBackups, Namespace: ns})
		if err != nil {
			return false, nil, err
		}

		if ok {
			visible[ns] = true
		}
	}

	return false, visible, nil
}
