package main

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/server"
)

type nextAuthenticator func(r *http.Request) (server.Caller, bool, error)

func (f nextAuthenticator) Authenticate(r *http.Request) (server.Caller, bool, error) { return f(r) }

func TestStaticTokenIsReloadedOnRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(path, []byte("first-token\n"), 0o600))

	nextCalls := 0
	a := staticTokenFirst{token: newTokenFile(path, slog.New(slog.DiscardHandler)), next: nextAuthenticator(func(*http.Request) (server.Caller, bool, error) {
		nextCalls++
		return server.Caller{}, false, errors.New("invalid bearer token")
	})}

	ask := func(token string) (server.Caller, bool, error) {
		r := httptest.NewRequest(http.MethodGet, "/exists/a/b", nil)
		r.Header.Set("Authorization", "Bearer "+token)
		c, ok, err := a.Authenticate(r)

		if ok {
			assert.Empty(t, r.Header.Get("Authorization"), "the token is not kept on the request")
		}

		return c, ok, err
	}

	c, ok, err := ask("first-token")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, StaticTokenUser, c.Name)
	assert.Contains(t, c.Groups, StaticTokenGroup)

	_, ok, err = ask("another-token")
	assert.False(t, ok)
	require.Error(t, err, "not the static token: the next authenticator decides")
	assert.Equal(t, 1, nextCalls)

	// Rotation: the Secret's new value, with another size and modification time.
	require.NoError(t, os.WriteFile(path, []byte("second-token-rotated"), 0o600))
	require.NoError(t, os.Chtimes(path, time.Now().Add(time.Minute), time.Now().Add(time.Minute)))

	a.token.mu.Lock()
	a.token.checked = time.Time{} // the once-a-second look is due
	a.token.mu.Unlock()

	_, ok, _ = ask("second-token-rotated")
	assert.True(t, ok, "the rotated token is accepted")

	_, ok, _ = ask("first-token")
	assert.False(t, ok, "the old one no longer")

	// An emptied file matches nothing (never the empty token).
	require.NoError(t, os.WriteFile(path, nil, 0o600))
	require.NoError(t, os.Chtimes(path, time.Now().Add(2*time.Minute), time.Now().Add(2*time.Minute)))

	a.token.checked = time.Time{}
	_, ok, _ = ask("")
	assert.False(t, ok)
}

func TestAuthConfig(t *testing.T) {
	cases := []struct {
		name string
		env  []string
		want string // a part of the error; empty: valid
	}{
		{"defaults: open, plain HTTP", nil, ""},
		{"kubernetes with TLS", []string{"AUTH_MODE=kubernetes", "TLS_CERT_FILE=/c", "TLS_KEY_FILE=/k"}, ""},
		{"an unknown mode", []string{"AUTH_MODE=basic"}, `AUTH_MODE "basic": want kubernetes or none`},
		{"a certificate without key", []string{"TLS_CERT_FILE=/c"}, "TLS_CERT_FILE and TLS_KEY_FILE go together"},
		{"a static token without authentication", []string{"AUTH_TOKEN_FILE=/t"}, "need AUTH_MODE=kubernetes"},
		{"a proxy without TLS", []string{"AUTH_MODE=kubernetes", "AUTH_PROXY_CLIENT_CA=/ca"}, "AUTH_PROXY_CLIENT_CA needs TLS"},
		{"an unknown anonymous endpoint", []string{"AUTH_MODE=kubernetes", "AUTH_ANONYMOUS=metrics,everything"}, `"everything"`},
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseConfig(nil, append([]string{"KOPIA_REPOSITORY_PATH=/repo", "KOPIA_PASSWORD=x"}, c.env...), nil)
			if c.want == "" {
				assert.NoError(t, err)
				return
			}

			assert.ErrorContains(t, err, c.want)
		})
	}

	cfg := defaultAuthConfig()
	assert.Equal(t, []string{"kyverno-svc.kyverno.io", "backup-oracle"}, cfg.Audiences, "Kyverno's chart default audience (apiCallToken.audience) and the service's own")
	assert.Len(t, cfg.warnings(), 2, "plain HTTP and no authentication are both warned about")
}
