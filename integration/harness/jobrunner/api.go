package jobrunner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// ErrNotFound is returned by API.Get when the object does not exist (HTTP 404).
var ErrNotFound = errors.New("not found")

// API is what the runner needs from the Kubernetes API server: read an object, merge-patch one.
// Paths are REST paths such as /apis/batch/v1/namespaces/<ns>/jobs/<name>.
type API interface {
	// Get decodes the object at path into out; a missing object is ErrNotFound.
	Get(ctx context.Context, path string, out any) error
	// Patch sends patch (JSON-encoded) to path as a merge patch.
	Patch(ctx context.Context, path string, patch any) error
}

// REST is an API over plain HTTPS with a bearer token (no client library). Safe for concurrent
// use; every call is bounded by ctx and Client's timeout.
type REST struct {
	URL, Token string
	Client     *http.Client
}

var _ API = REST{}

// Get implements API.
func (r REST) Get(ctx context.Context, path string, out any) error {
	body, err := r.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}

	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("jobrunner: decode %s: %w", path, err)
	}

	return nil
}

// Patch implements API.
func (r REST) Patch(ctx context.Context, path string, patch any) error {
	b, err := json.Marshal(patch)
	if err != nil {
		return fmt.Errorf("jobrunner: encode patch of %s: %w", path, err)
	}

	_, err = r.do(ctx, http.MethodPatch, path, b)

	return err
}

func (r REST) do(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, r.URL+path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("jobrunner: %s %s: %w", method, path, err)
	}

	req.Header.Set("Authorization", "Bearer "+r.Token)
	req.Header.Set("Accept", "application/json")

	if body != nil {
		req.Header.Set("Content-Type", "application/merge-patch+json")
	}

	resp, err := r.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jobrunner: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()

	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("jobrunner: %s %s: read answer: %w", method, path, err)
	}

	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("jobrunner: %s %s: %w", method, path, ErrNotFound)
	case resp.StatusCode >= 300:
		return nil, fmt.Errorf("jobrunner: %s %s: HTTP %d: %s", method, path, resp.StatusCode, b)
	}

	return b, nil
}
