package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/backup-oracle/backup-oracle/repo"
	"github.com/backup-oracle/backup-oracle/repo/kopia/kopiademo"
)

// demoRepository is the Kopia repository `--demo` creates in the state directory, laid out as
// VolSync's Kopia mover would have written it for the policies' default names.
type demoRepository struct {
	path     string
	password repo.Secret
}

const (
	demoLongPVC = "analytics-warehouse-clickhouse-data-volume-claim-replica-0001"
	// demoReplica is a StatefulSet replica PVC (…-0, …-1) whose "<pvc>-backup" is cut at 50
	// characters by the mover: replica 0 was backed up under the cut, shared username before
	// the policies gave long names collision-free ones.
	demoReplica = "prometheus-kube-prometheus-stack-prometheus-db-prometheus-kube-prometheus-stack-prometheus-"
)

// demoPVCs have backups; their sources are derived with the default identity.
func demoPVCs() []repo.PVC {
	return []repo.PVC{
		{Namespace: "shop", Name: "postgres"},
		{Namespace: "shop", Name: "my.app.data"},
		{Namespace: "analytics", Name: demoLongPVC},
	}
}

func createDemo(ctx context.Context, stateDir string) (*demoRepository, error) {
	d := &demoRepository{path: filepath.Join(stateDir, "demo-repository"), password: "backup-oracle-demo"}

	data := filepath.Join(stateDir, "demo-data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, fmt.Errorf("demo: create %s: %w", data, err)
	}

	if err := os.WriteFile(filepath.Join(data, "README"), []byte("backup-oracle demo volume\n"), 0o600); err != nil {
		return nil, fmt.Errorf("demo: write data: %w", err)
	}

	id := repo.DefaultKopiaIdentity()

	var backups []kopiademo.Backup
	for _, p := range demoPVCs() {
		backups = append(backups, kopiademo.Backup{Source: id.Source(p), Dir: data})
	}

	// A second snapshot of the first PVC: /exists reports the count and the latest.
	backups = append(backups, backups[0])

	// Decoys: the same PVC name in another namespace (not a near miss: staging/redis's own
	// backup), another path in the right namespace (a near miss of shop/redis), and a replica
	// backed up under the cut, possibly shared username (a near miss of both replicas).
	cut, _ := id.CutSource(repo.PVC{Namespace: "monitoring", Name: demoReplica + "0"})
	backups = append(backups,
		kopiademo.Backup{Source: repo.KopiaSource{UserName: "redis-backup", Host: "staging", Path: "/data"}, Dir: data},
		kopiademo.Backup{Source: repo.KopiaSource{UserName: "redis-backup", Host: "shop", Path: "/var/lib/redis"}, Dir: data},
		kopiademo.Backup{Source: cut, Dir: data},
	)

	if err := kopiademo.Write(ctx, d.path, d.password.Reveal(), stateDir, backups); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}

	return d, nil
}

// demoKind is the kind of the demo repository.
const demoKind = "kopia-fs"

// backend is the demo repository as a backend of the registry, configured as the environment
// would configure it.
func (d *demoRepository) backend(kinds repo.Registry) (backendSpec, error) {
	k, err := kinds.Lookup(demoKind)
	if err != nil {
		return backendSpec{}, err
	}

	cfg := k.New()
	if err := setFields(cfg, map[string]string{"kopia-repository-path": d.path, "kopia-password": d.password.Reveal()}); err != nil {
		return backendSpec{}, fmt.Errorf("demo: %w", err)
	}

	if err := cfg.Validate(); err != nil {
		return backendSpec{}, fmt.Errorf("demo: %w", err)
	}

	return backendSpec{Name: k.Name, Kind: k, Config: cfg}, nil
}

// readiness is what announce waits for.
type readiness interface{ Ready() error }

// announce prints curl lines once the index is loaded.
func (d *demoRepository) announce(ctx context.Context, r readiness, url string, w io.Writer) {
	for r.Ready() != nil {
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}

	lines := []string{
		"",
		"Demo repository ready at " + d.path + ". Try:",
		"  curl -s " + url + "/exists/shop/postgres            # restore: a snapshot exists",
		"  curl -s " + url + "/exists/shop/my.app.data         # restore: dotted name, source myappdata-backup@shop:/data",
		"  curl -s " + url + "/exists/analytics/" + demoLongPVC + "   # restore: long name, collision-free username (41 characters, -, 8 hex digits)",
		"  curl -s " + url + "/exists/shop/cache               # fresh: no backup, nothing near it",
		"  curl -s " + url + "/exists/shop/redis               # unknown (503): no backup under redis-backup@shop:/data, but a near miss under /var/lib/redis",
		"  curl -s '" + url + "/exists/shop/redis?accept=near-miss'   # fresh: what the policies ask once the PVC is annotated backup-oracle.io/accept-near-miss",
		"  curl -s " + url + "/exists/staging/redis            # restore: the same name in another namespace is that PVC's own backup, never a near miss",
		"  curl -s " + url + "/exists/monitoring/" + demoReplica + "1   # unknown: replica 0's cut username is shared",
		"  curl -s " + url + "/exists/shop/Bad_Name            # 400: not a valid PVC name",
		"  curl -s " + url + "/explain/shop/redis              # every snapshot, the nearby sources and the near misses",
		"  curl -s " + url + "/readyz; curl -s " + url + "/status; curl -s " + url + "/metrics | grep backup_oracle_",
		"",
	}
	fmt.Fprintln(w, strings.Join(lines, "\n"))
}
