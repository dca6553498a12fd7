package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMutantsApply: every mutant's text occurs exactly once in its file, so `make mutate` (not
// part of make test) cannot stop on a mutant the code has moved away from; and each changes it.
func TestMutantsApply(t *testing.T) {
	root := filepath.Join("..", "..") // the module root, where make mutate runs the command

	for _, m := range mutants() {
		src, err := os.ReadFile(filepath.Join(root, m.file))
		require.NoError(t, err, m.bug)

		assert.Equal(t, 1, strings.Count(string(src), m.from), "%s: %q (%s): update the mutant", m.file, m.from, m.bug)
		assert.NotEqual(t, m.from, m.to, m.bug)
		assert.DirExists(t, filepath.Join(root, m.pkg), m.bug)
	}
}
