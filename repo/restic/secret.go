package restic

import (
	"fmt"
	"log/slog"
)

// Secret holds a password or key. Every way of printing it (fmt verbs, slog, JSON) shows
// "[REDACTED]" so it cannot leak into errors, logs or responses; Reveal returns the value.
type Secret string

const redacted = "[REDACTED]"

// Reveal returns the secret's value, for the one place that needs it.
func (s Secret) Reveal() string { return string(s) }

// String implements fmt.Stringer.
func (s Secret) String() string { return redacted }

// GoString implements fmt.GoStringer (%#v).
func (s Secret) GoString() string { return redacted }

// Format implements fmt.Formatter, so %q, %x and friends redact too.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText implements encoding.TextMarshaler (JSON, YAML).
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
