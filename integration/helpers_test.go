package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/backup-oracle/backup-oracle/integration/harness"
)

// decision returns the decision field of /exists (or "" when absent).
func decision(t testing.TB, o *harness.Oracle, path string) string {
	t.Helper()

	d, _ := o.Get(t, path).Body["decision"].(string)

	return d
}

// eventually polls path until its decision is want.
func eventually(t *testing.T, o *harness.Oracle, path, want string, within time.Duration) {
	t.Helper()

	deadline := time.Now().Add(within)
	for {
		r := o.Get(t, path)
		if r.Body["decision"] == want {
			return
		}

		if time.Now().After(deadline) {
			t.Fatalf("%s: want %s within %s, last answer %d %v\n%s", path, want, within, r.Code, r.Body, o.Stderr())
		}

		time.Sleep(50 * time.Millisecond)
	}
}

// eventuallyReason polls /readyz until it is 503 with a reason containing want.
func eventuallyReason(t *testing.T, o *harness.Oracle, want string, within time.Duration) {
	t.Helper()

	deadline := time.Now().Add(within)
	for {
		r := o.Get(t, "/readyz")
		if r.Code == http.StatusOK {
			t.Fatalf("/readyz: ready, want not ready because of %q", want)
		}

		if strings.Contains(fmt.Sprint(r.Body["reason"]), want) {
			return
		}

		if time.Now().After(deadline) {
			t.Fatalf("/readyz: want reason %q within %s, last %v\n%s", want, within, r.Body, o.Stderr())
		}

		time.Sleep(50 * time.Millisecond)
	}
}

// get fetches url and returns its status code and body.
func get(t testing.TB, url string) (int, string) {
	t.Helper()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}

	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()

	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}

	return resp.StatusCode, string(b)
}
