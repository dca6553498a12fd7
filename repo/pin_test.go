package repo_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/repo"
)

// TestPin: each step is one Check of one Pin, in order; "" is a location holding no repository.
func TestPin(t *testing.T) {
	a, b := strings.Repeat("a", 64), strings.Repeat("b", 64)

	type step struct {
		id   string
		want string // "" for no error, else a part of the message
	}

	cases := []struct {
		name   string
		pinned string
		steps  []step
	}{
		{"pinned: the pinned id", a, []step{{a, ""}, {a, ""}}},
		{"pinned in upper case", strings.ToUpper(a), []step{{a, ""}}},
		{"pinned: another id", a, []step{{b, "the repository at s3:bucket/shared has id " + b + ", but RESTIC_REPOSITORY_ID pins " + a}}},
		{"pinned: no repository", a, []step{{"", "there is no repository at s3:bucket/shared, but RESTIC_REPOSITORY_ID pins " + a}}},
		{"unpinned: the first id is remembered", "", []step{{a, ""}, {a, ""}, {b, "has id " + b + ", but this process first read " + a + " there"}, {a, ""}}},
		{"unpinned: a change says how to pin", "", []step{{a, ""}, {b, "pin it (RESTIC_REPOSITORY_ID=" + b + ") or restart"}}},
		{"unpinned: wiped after a sighting", "", []step{{a, ""}, {"", "there is no repository at s3:bucket/shared, but this process first read " + a}}},
		{"unpinned: nothing there yet, then a repository", "", []step{{"", ""}, {a, ""}, {b, "first read " + a}}},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := repo.NewPin("restic repository", "RESTIC_REPOSITORY_ID", tc.pinned)

			for i, s := range tc.steps {
				err := p.Check(s.id, slog.New(slog.DiscardHandler), "s3:bucket/shared")
				if s.want == "" {
					require.NoError(t, err, "step %d", i)
					continue
				}

				require.ErrorIs(t, err, repo.ErrRepositoryMismatch, "step %d", i)
				assert.Contains(t, err.Error(), s.want, "step %d", i)
			}
		})
	}
}

// TestPinLogsHowToPin: the first id seen is logged with the setting that pins it, once.
func TestPinLogsHowToPin(t *testing.T) {
	var buf bytes.Buffer

	logger := slog.New(slog.NewTextHandler(&buf, nil))
	id := strings.Repeat("c", 64)
	p := repo.NewPin("restic repository", "RESTIC_REPOSITORY_ID", "")

	require.NoError(t, p.Check(id, logger, "s3:bucket/shared"))
	require.NoError(t, p.Check(id, logger, "s3:bucket/shared"))

	assert.Equal(t, 1, strings.Count(buf.String(), "RESTIC_REPOSITORY_ID="+id), buf.String())
	assert.Contains(t, buf.String(), "restic repository id; pin it")
}
