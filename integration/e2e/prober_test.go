//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/backup-oracle/backup-oracle/integration/harness/kopiamover"
)

// prober creates PVCs through the API server, over and over while the upgrade runs, and
// records whether the policies did the right thing with each: a PVC with a backup is restored
// (dataSourceRef to its RD), one without is admitted unchanged, a near miss is denied. It runs in
// its own goroutine, so it returns errors instead of failing the test.
type prober struct {
	k      *kube
	ns     string
	reason bool // the denial carries the oracle's near-miss reason (kyvernoRelease)

	mu     sync.Mutex
	phase  string
	cycles map[string]int      // complete cycles per phase
	wrong  map[string][]string // what went wrong, per phase
	// drained counts, per phase, denials because the replica asked was draining and did not
	// know ?admission=true (a previous release's binary): safe (never admitted), not wrong.
	drained map[string]int
	created int
}

// errDrainingDenial: the PVC was denied because the CEL policies' /readyz reached a draining
// replica of a release before ?admission=true.
var errDrainingDenial = errors.New("denied by a draining replica") //nolint:gochecknoglobals // a sentinel error

// drainingDenial reports whether a refused admission is the policies' "not ready" denial of a
// replica in its shutdown delay.
func drainingDenial(code int, body map[string]any) bool {
	return (code == http.StatusBadRequest || code == http.StatusForbidden) &&
		strings.Contains(message(body), "is not ready (shutting down: SIGTERM received")
}

func newProber(k *kube, ns string, reason bool) *prober {
	return &prober{k: k, ns: ns, reason: reason, phase: "before", cycles: map[string]int{}, wrong: map[string][]string{}, drained: map[string]int{}}
}

// setPhase names the phase the next cycles count for.
func (p *prober) setPhase(phase string) {
	p.mu.Lock()
	defer p.mu.Unlock()

	p.phase = phase
}

// run probes until ctx ends; the returned channel closes when the last cycle has finished.
func (p *prober) run(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})

	go func() {
		defer close(done)

		for ctx.Err() == nil {
			p.cycle()
		}
	}()

	return done
}

// cycle probes the three cases once; a cycle that straddles two phases counts for the later.
func (p *prober) cycle() {
	var (
		wrong   []string
		drained int
	)

	for _, c := range []func() error{p.restore, p.fresh, p.nearMiss} {
		switch err := c(); {
		case errors.Is(err, errDrainingDenial):
			drained++
		case err != nil:
			wrong = append(wrong, err.Error())
		}
	}

	p.mu.Lock()
	defer p.mu.Unlock()

	p.cycles[p.phase]++
	p.wrong[p.phase] = append(p.wrong[p.phase], wrong...)
	p.drained[p.phase] += drained
}

// results returns the cycles and what went wrong, per phase.
func (p *prober) results() (map[string]int, map[string][]string) {
	p.mu.Lock()
	defer p.mu.Unlock()

	return p.cycles, p.wrong
}

// drainedDenials returns, per phase, the denials by a draining replica (errDrainingDenial).
func (p *prober) drainedDenials() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()

	return p.drained
}

// restore creates the PVC postgres, whose backup the repository holds, and deletes it again.
func (p *prober) restore() error {
	code, body, err := p.create("postgres", "hourly")
	if err != nil {
		return err
	}

	if drainingDenial(code, body) {
		return errDrainingDenial
	}

	if code != http.StatusCreated {
		return fmt.Errorf("restore: postgres: %d %s", code, message(body))
	}

	defer func() { _ = p.remove("postgres") }()

	if got := str(body, "spec", "dataSourceRef", "name"); got != "postgres-backup" {
		return fmt.Errorf("restore: postgres created with dataSourceRef %q, want its RD postgres-backup", got)
	}

	return nil
}

// fresh creates a new PVC without backup: admitted without a data source.
func (p *prober) fresh() error {
	p.mu.Lock()
	p.created++
	name := fmt.Sprintf("fresh-%d", p.created)
	p.mu.Unlock()

	code, body, err := p.create(name, "daily")
	if err != nil {
		return err
	}

	if drainingDenial(code, body) {
		return errDrainingDenial
	}

	if code != http.StatusCreated {
		return fmt.Errorf("fresh: %s: %d %s", name, code, message(body))
	}

	if nested(body, "spec", "dataSourceRef") != nil {
		return fmt.Errorf("fresh: %s created with a dataSourceRef", name)
	}

	return nil
}

// nearMiss creates the PVC redis, whose only snapshots are a near miss: denied.
func (p *prober) nearMiss() error {
	code, body, err := p.create(nearMissPVC, "daily")
	if err != nil {
		return err
	}

	if code == http.StatusCreated {
		_ = p.remove(nearMissPVC)

		return fmt.Errorf("near miss: %s was admitted", nearMissPVC)
	}

	if drainingDenial(code, body) {
		return errDrainingDenial
	}

	if code != http.StatusBadRequest && code != http.StatusForbidden {
		return fmt.Errorf("near miss: %s refused with %d (not the policy's denial): %s", nearMissPVC, code, message(body))
	}

	if want := "near miss: no snapshot under " + kopiamover.PolicySource(p.ns, nearMissPVC); p.reason && !strings.Contains(message(body), want) {
		return fmt.Errorf("near miss: the denial does not say %q: %s", want, message(body))
	}

	return nil
}

func message(body map[string]any) string {
	s, _ := body["message"].(string)

	return strings.Join(strings.Fields(s), " ")
}

// create POSTs a labelled 1Gi PVC and returns the status code and the decoded answer.
func (p *prober) create(name, label string) (int, map[string]any, error) {
	pvc := map[string]any{
		"apiVersion": "v1", "kind": "PersistentVolumeClaim",
		"metadata": map[string]any{"name": name, "namespace": p.ns, "labels": map[string]string{"backup": label}},
		"spec": map[string]any{
			"accessModes": []string{"ReadWriteOnce"},
			"resources":   map[string]any{"requests": map[string]any{"storage": "1Gi"}},
		},
	}

	return p.request(http.MethodPost, "/api/v1/namespaces/"+p.ns+"/persistentvolumeclaims", pvc, "application/json")
}

// remove deletes the PVC and, as kube-controller-manager's pvc-protection controller does for
// a claim no pod uses, its finalizer, then waits until it is gone.
func (p *prober) remove(name string) error {
	path := pvcPath(p.ns, name)

	if _, _, err := p.request(http.MethodDelete, path, nil, "application/json"); err != nil {
		return err
	}

	if _, _, err := p.request(http.MethodPatch, path, map[string]any{"metadata": map[string]any{"finalizers": nil}},
		"application/merge-patch+json"); err != nil {
		return err
	}

	if _, ok := eventually(30*time.Second, 50*time.Millisecond, func() bool {
		code, _, err := p.request(http.MethodGet, path, nil, "")
		return err == nil && code == http.StatusNotFound
	}); !ok {
		return fmt.Errorf("%s not gone 30 s after its deletion", path)
	}

	return nil
}

func (p *prober) request(method, path string, body any, contentType string) (int, map[string]any, error) {
	var rd io.Reader

	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}

		rd = bytes.NewReader(b)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, method, p.k.url+path, rd)
	if err != nil {
		return 0, nil, err
	}

	req.Header.Set("Authorization", "Bearer "+p.k.token)
	req.Header.Set("Accept", "application/json")

	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}

	resp, err := p.k.client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()

	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}

	var out map[string]any
	_ = json.Unmarshal(raw, &out)

	return resp.StatusCode, out, nil
}
