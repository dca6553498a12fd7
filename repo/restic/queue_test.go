package restic

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestQueueServesUrgentFirst: waiters are served in arrival order, except that a key made urgent
// goes before every other, whether it was waiting already or arrives later.
func TestQueueServesUrgentFirst(t *testing.T) {
	q := newQueue(1)
	require.NoError(t, q.acquire(context.Background(), "running"))

	var (
		mu    sync.Mutex
		order []string
		wg    sync.WaitGroup
	)

	wait := func(key string) {
		wg.Go(func() {
			require.NoError(t, q.acquire(context.Background(), key))
			mu.Lock()
			order = append(order, key)
			mu.Unlock()
			q.release()
		})
	}

	for i := range 5 {
		wait(fmt.Sprintf("w%d", i))
		waitQueued(t, q, i+1)
	}

	q.hurry("w3")
	q.hurry("late") // not waiting yet: urgent when it arrives

	wait("late")
	waitQueued(t, q, 6)

	q.release() // "running" ends
	wg.Wait()

	assert.Equal(t, []string{"w3", "late", "w0", "w1", "w2", "w4"}, order)

	q.settle("late")
	assert.Empty(t, q.urgent["late"])
}

func TestQueueCancelledWaiterLeaves(t *testing.T) {
	q := newQueue(1)
	require.NoError(t, q.acquire(context.Background(), "a"))

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()

	require.ErrorIs(t, q.acquire(ctx, "b"), context.DeadlineExceeded)
	assert.Empty(t, q.waiting)

	q.release()
	require.NoError(t, q.acquire(context.Background(), "c"), "the slot is free again")
}

func waitQueued(t *testing.T, q *queue, n int) {
	t.Helper()

	require.Eventually(t, func() bool {
		q.mu.Lock()
		defer q.mu.Unlock()

		return len(q.waiting) == n
	}, 5*time.Second, time.Millisecond)
}
