// Package repo holds backup-oracle's domain: the PVC a request names, the snapshots a backup
// backend reports, the identity a backup is stored under, the decision derived from them and the
// error classes shared by every backend. It imports the standard library only.
package repo

import (
	"fmt"
)

// Name limits from Kubernetes: a namespace is a DNS-1123 label, a PVC name a DNS-1123 subdomain.
const (
	MaxNamespaceLen = 63
	MaxPVCNameLen   = 253
)

// PVC names a PersistentVolumeClaim. The zero value is invalid.
type PVC struct {
	Namespace string
	Name      string
}

// String returns "namespace/name".
func (p PVC) String() string { return p.Namespace + "/" + p.Name }

// Validate reports, wrapped in ErrInvalidName, the first Kubernetes naming rule p breaks.
// A nil error means both names are exactly what the API server would accept.
func (p PVC) Validate() error {
	if err := validateName("namespace", p.Namespace, MaxNamespaceLen, IsDNS1123Label,
		"a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit"); err != nil {
		return err
	}

	return validateName("pvc name", p.Name, MaxPVCNameLen, IsDNS1123Subdomain,
		"a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', each dot-separated part starting and ending with a letter or digit")
}

func validateName(what, s string, maxLen int, valid func(string) bool, rule string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: %s is empty", ErrInvalidName, what)
	case len(s) > maxLen:
		return fmt.Errorf("%w: %s is %d characters long, at most %d are allowed", ErrInvalidName, what, len(s), maxLen)
	case !valid(s):
		return fmt.Errorf("%w: %s %q must be %s", ErrInvalidName, what, s, rule)
	}

	return nil
}

// IsDNS1123Label reports whether s matches [a-z0-9]([-a-z0-9]*[a-z0-9])? (length not checked).
// It is on the admission path, hence hand-written; a fuzz test holds it to the regexp.
func IsDNS1123Label(s string) bool {
	if s == "" || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}

	for i := range len(s) {
		if c := s[i]; !isLowerAlnum(c) && c != '-' {
			return false
		}
	}

	return true
}

// IsDNS1123Subdomain reports whether s is one or more DNS-1123 labels joined by dots (length
// not checked).
func IsDNS1123Subdomain(s string) bool {
	start := 0

	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if !IsDNS1123Label(s[start:i]) {
				return false
			}

			start = i + 1
		}
	}

	return true
}

func isLowerAlnum(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') }
