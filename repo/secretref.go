package repo

import (
	"fmt"
	"os"
	"strings"
)

// SecretRef is a secret given as a value (environment, flag) or as a file (a mounted Secret),
// read anew on every Read so a rotated Secret is picked up. Backends files accept files only.
type SecretRef struct {
	Value Secret
	File  string
}

// Set says whether a value or a file was given.
func (s SecretRef) Set() bool { return s.Value != "" || s.File != "" }

// Validate reports a secret given twice; what names it in the message (e.g. "KOPIA_PASSWORD").
func (s SecretRef) Validate(what string) error {
	if s.Value != "" && s.File != "" {
		return Problemf("set %s or %s_FILE, not both", what, what)
	}

	return nil
}

// Read returns the secret now: the file's content without trailing newlines, else the value.
// A file that is missing, unreadable or empty is an error (never an empty secret).
func (s SecretRef) Read() (Secret, error) {
	if s.File == "" {
		return s.Value, nil
	}

	b, err := os.ReadFile(s.File)
	if err != nil {
		return "", fmt.Errorf("read secret file: %w", err)
	}

	v := strings.TrimRight(string(b), "\r\n")
	if v == "" {
		return "", fmt.Errorf("secret file %s is empty", s.File)
	}

	return Secret(v), nil
}
