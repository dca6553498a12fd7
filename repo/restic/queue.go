package restic

import (
	"context"
	"sync"
)

// queue is a counting semaphore whose waiters are served urgent ones first, each group in
// arrival order. It bounds repository verifications (I/O) and key derivations (CPU, memory): on
// a cold start with a password every repository of the fleet waits its turn, and a lookup for a
// PVC whose repository is still waiting makes it urgent, so it is verified next instead of
// minutes later. Safe for concurrent use.
type queue struct {
	mu      sync.Mutex
	free    int
	seq     uint64
	waiting []*waiter
	urgent  map[string]bool // keys whose current and future waiters are urgent
}

type waiter struct {
	key    string
	seq    uint64
	urgent bool
	ready  chan struct{} // closed when the slot is granted
}

func newQueue(slots int) *queue { return &queue{free: slots, urgent: map[string]bool{}} }

// acquire waits for a slot for key (a repository directory) until ctx ends.
func (q *queue) acquire(ctx context.Context, key string) error {
	q.mu.Lock()
	if q.free > 0 && len(q.waiting) == 0 {
		q.free--
		q.mu.Unlock()

		return nil
	}

	q.seq++
	w := &waiter{key: key, seq: q.seq, urgent: q.urgent[key], ready: make(chan struct{})}
	q.waiting = append(q.waiting, w)
	q.mu.Unlock()

	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		q.mu.Lock()
		defer q.mu.Unlock()

		select {
		case <-w.ready: // granted meanwhile: hand the slot on
			q.grantLocked(1)
		default:
			q.removeLocked(w)
		}

		return ctx.Err()
	}
}

// release returns a slot.
func (q *queue) release() {
	q.mu.Lock()
	defer q.mu.Unlock()

	q.grantLocked(1)
}

// hurry makes key urgent: its waiters go before every non-urgent one, now and until settle.
func (q *queue) hurry(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()

	q.urgent[key] = true

	for _, w := range q.waiting {
		if w.key == key {
			w.urgent = true
		}
	}
}

// settle ends key's urgency (its verification ended).
func (q *queue) settle(key string) {
	q.mu.Lock()
	delete(q.urgent, key)
	q.mu.Unlock()
}

// grantLocked gives n free slots to the most urgent, then oldest, waiters.
func (q *queue) grantLocked(n int) {
	q.free += n

	for q.free > 0 && len(q.waiting) > 0 {
		best := 0

		for i, w := range q.waiting {
			b := q.waiting[best]
			if (w.urgent && !b.urgent) || (w.urgent == b.urgent && w.seq < b.seq) {
				best = i
			}
		}

		w := q.waiting[best]
		q.waiting = append(q.waiting[:best], q.waiting[best+1:]...)
		q.free--
		close(w.ready)
	}
}

func (q *queue) removeLocked(w *waiter) {
	for i, x := range q.waiting {
		if x == w {
			q.waiting = append(q.waiting[:i], q.waiting[i+1:]...)
			return
		}
	}
}
