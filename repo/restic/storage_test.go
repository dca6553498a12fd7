package restic

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReadLimited: an object of up to maxObjectSize bytes is read whole; a larger one is an
// error, never a silently truncated object.
func TestReadLimited(t *testing.T) {
	exact := bytes.Repeat([]byte{'x'}, maxObjectSize)

	b, err := readLimited(bytes.NewReader(exact))
	require.NoError(t, err)
	assert.Len(t, b, maxObjectSize, "an object of exactly the limit is read whole")

	_, err = readLimited(bytes.NewReader(append(exact, 'y')))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "object larger than")
}

// TestDirListingOfMissingPrefix: in a directory, a missing prefix lists as empty, as an S3
// prefix without objects does (the cache then refuses an index with no source); a missing root
// is an error.
func TestDirListingOfMissingPrefix(t *testing.T) {
	root := t.TempDir()
	d := NewDirStorage(root)

	l, err := d.List(context.Background(), "volsync/")
	require.NoError(t, err)
	assert.Empty(t, l.Objects)

	require.NoError(t, os.Remove(root))

	_, err = d.List(context.Background(), "volsync/")
	require.ErrorIs(t, err, os.ErrNotExist, "a missing root is no empty listing")

	_, err = d.List(context.Background(), "")
	require.ErrorIs(t, err, os.ErrNotExist)
}
