package repo_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/repo"
)

// fakeBackend records its loads and whether it was closed.
type fakeBackend struct {
	secret string
	loads  int
	closed bool
}

func (f *fakeBackend) Load(context.Context) (repo.Index, error) { f.loads++; return nil, nil }
func (f *fakeBackend) Close(context.Context) error              { f.closed = true; return nil }

func TestReloading(t *testing.T) {
	var (
		current = "one"
		readErr error
		openErr error
		opened  []*fakeBackend
	)

	b := repo.Reloading("fake", nil, func() (string, error) { return current, readErr }, func(s string) (repo.Backend, error) {
		if openErr != nil {
			return nil, openErr
		}

		f := &fakeBackend{secret: s}
		opened = append(opened, f)

		return f, nil
	})
	ctx := context.Background()

	_, err := b.Load(ctx)
	require.NoError(t, err)
	_, err = b.Load(ctx)
	require.NoError(t, err)
	require.Len(t, opened, 1, "unchanged secrets: the backend is opened once and kept (its connection and caches)")
	assert.Equal(t, 2, opened[0].loads)

	current = "two"
	_, err = b.Load(ctx)
	require.NoError(t, err)
	require.Len(t, opened, 2, "changed secrets: re-opened")
	assert.True(t, opened[0].closed, "the previous backend is closed")
	assert.Equal(t, "two", opened[1].secret)

	readErr = errors.New("read secret file: no such file")
	_, err = b.Load(ctx)
	require.ErrorIs(t, err, repo.ErrUnavailable, "a missing Secret is an unavailable backend, never an exit")
	assert.Contains(t, err.Error(), "fake: ")
	assert.Contains(t, err.Error(), "no such file")

	readErr, current, openErr = nil, "three", errors.New("bad storage")
	_, err = b.Load(ctx)
	require.ErrorIs(t, err, repo.ErrUnavailable)
	assert.True(t, opened[1].closed, "a failed re-open leaves no stale backend behind")

	openErr = nil
	_, err = b.Load(ctx)
	require.NoError(t, err, "recovers once the backend opens")
	require.Len(t, opened, 3)

	require.NoError(t, b.Close(ctx))
	assert.True(t, opened[2].closed)
	require.NoError(t, b.Close(ctx), "closing twice is harmless")
}
