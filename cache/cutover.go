package cache

import (
	"slices"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/backup-oracle/backup-oracle/repo"
)

// maxCutoverWaits bounds the waiting PVCs remembered for /status and the metrics (the oldest
// asked stay: an LRU refreshed by every lookup keeps the PVCs Kyverno keeps asking about).
const maxCutoverWaits = 10_000

// cutoverWaits remembers the PVCs answered "waiting for the final backup" and since when. Safe
// for concurrent use.
type cutoverWaits struct {
	mu    sync.Mutex
	since *lru.Cache[repo.PVC, repo.CutoverWaiting]
}

func newCutoverWaits() *cutoverWaits {
	c, _ := lru.New[repo.PVC, repo.CutoverWaiting](maxCutoverWaits) // a positive size never fails

	return &cutoverWaits{since: c}
}

// note records that w's PVC waits (keeping when it first did).
func (c *cutoverWaits) note(w repo.CutoverWait, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()

	e := repo.CutoverWaiting{CutoverWait: w, Since: now}
	if prev, ok := c.since.Get(w.PVC); ok {
		e.Since = prev.Since
	}

	c.since.Add(w.PVC, e)
}

// clear forgets pvc: it no longer waits.
func (c *cutoverWaits) clear(pvc repo.PVC) {
	c.mu.Lock()
	defer c.mu.Unlock()

	c.since.Remove(pvc)
}

// list returns the waiting PVCs, longest wait first.
func (c *cutoverWaits) list() []repo.CutoverWaiting {
	c.mu.Lock()
	out := c.since.Values()
	c.mu.Unlock()

	slices.SortFunc(out, func(a, b repo.CutoverWaiting) int { return a.Since.Compare(b.Since) })

	return out
}

// cutoverCollector exports the waits at scrape time.
type cutoverCollector struct {
	waits            *cutoverWaits
	now              func() time.Time
	waiting, oldest  *prometheus.Desc
	declared, atDesc *prometheus.Desc
	cutover          repo.Cutover
}

func (c *cutoverCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.waiting
	ch <- c.oldest
	ch <- c.declared
	ch <- c.atDesc
}

func (c *cutoverCollector) Collect(ch chan<- prometheus.Metric) {
	declared := 0.0
	if !c.cutover.IsZero() {
		declared = 1
		ch <- prometheus.MustNewConstMetric(c.atDesc, prometheus.GaugeValue, float64(c.cutover.At.Unix()), c.cutover.From)
	}

	ch <- prometheus.MustNewConstMetric(c.declared, prometheus.GaugeValue, declared)

	list := c.waits.list()
	ch <- prometheus.MustNewConstMetric(c.waiting, prometheus.GaugeValue, float64(len(list)))

	oldest := 0.0
	if len(list) > 0 {
		oldest = c.now().Sub(list[0].Since).Seconds()
	}

	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, oldest)
}

// CutoverCollector returns the collector of the group's cutover metrics, to register on the
// program's private registry: backup_oracle_cutover_declared, backup_oracle_cutover_timestamp_seconds{from},
// backup_oracle_cutover_waiting_pvcs and backup_oracle_cutover_oldest_wait_seconds.
func (g *Group) CutoverCollector() prometheus.Collector {
	return &cutoverCollector{
		waits: g.waits, now: g.now, cutover: g.cutover,
		declared: prometheus.NewDesc("backup_oracle_cutover_declared",
			"1 when a blue/green cutover is declared (CUTOVER_AT, CUTOVER_FROM), else 0.", nil, nil),
		atDesc: prometheus.NewDesc("backup_oracle_cutover_timestamp_seconds",
			"Unix time of the declared cutover; from names the backend of the colour being left.", []string{"from"}, nil),
		waiting: prometheus.NewDesc("backup_oracle_cutover_waiting_pvcs",
			"PVCs answered unknown because the colour being left has not taken their final backup yet (those asked about; at most 10,000 remembered).", nil, nil),
		oldest: prometheus.NewDesc("backup_oracle_cutover_oldest_wait_seconds",
			"How long the PVC waiting longest for its final backup has waited, in seconds since it was first asked about; 0 when none waits.", nil, nil),
	}
}

// Cutover describes the declared cutover and the PVCs waiting for it.
func (g *Group) Cutover() repo.CutoverStatus {
	return repo.CutoverStatus{Cutover: g.cutover, Waiting: g.waits.list()}
}
