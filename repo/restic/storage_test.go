package restic

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness"
	"github.com/backup-oracle/backup-oracle/repo"
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

// TestS3GetNotFound: Storage.Get wraps ErrObjectNotFound for a missing object only; a refused
// request (403) is another error, never "not found".
func TestS3GetNotFound(t *testing.T) {
	srv := harness.StartS3(t)
	bucket := srv.CreateBucket("backups")
	proxy := harness.StartFaultProxy(t, srv.URL)

	st, err := NewS3Storage(context.Background(), S3Options{S3Config: repo.S3Config{Endpoint: proxy.URL, Bucket: bucket,
		AccessKey: repo.Secret(srv.AccessKey), SecretKey: repo.Secret(srv.SecretKey), RequestTimeout: 2 * time.Second}, MaxAttempts: 1})
	require.NoError(t, err)

	_, err = st.Get(context.Background(), "volsync/web/app/snapshots/missing")
	require.ErrorIs(t, err, ErrObjectNotFound)

	proxy.Fail(-1, http.StatusForbidden)

	_, err = st.Get(context.Background(), "volsync/web/app/snapshots/missing")
	require.Error(t, err)
	assert.NotErrorIs(t, err, ErrObjectNotFound, "a refused request is not a missing object")
}
