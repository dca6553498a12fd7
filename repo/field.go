package repo

import (
	"flag"
	"fmt"
	"strconv"
	"time"
)

// Field is one setting of a backend kind: its command-line flag, its environment variables and
// its key in a backends file, bound to a configuration by Value. Kinds that share a setting
// (kopia-fs and kopia-s3 both read KOPIA_PASSWORD_FILE) declare it with the same Flag, Env and
// YAML, so one flag sets it on every kind.
type Field struct {
	// Flag is the flag's name without dashes, e.g. "kopia-repository-path".
	Flag string
	// Env lists the environment variables read for it, first set wins (aliases after the name).
	Env []string
	// YAML is the key path in a backends file entry, e.g. "kopia.repositoryPath"; empty when the
	// setting is not accepted there (inline secrets: the file takes secrets as files only).
	YAML  string
	Usage string
	Value flag.Value
}

// Flag values that bind a Field to a configuration's field.
type (
	// StringValue binds a string.
	StringValue string
	// BoolValue binds a bool ("true", "false", "1", "0", ...).
	BoolValue bool
	// IntValue binds an int.
	IntValue int
	// DurationValue binds a time.Duration: a Go duration ("90s", "2m") or, as the predecessor
	// service took them, a bare number of seconds.
	DurationValue time.Duration
	// SecretValue binds a Secret; it prints redacted.
	SecretValue Secret
)

// Set implements flag.Value.
func (v *StringValue) Set(s string) error { *v = StringValue(s); return nil }
func (v *StringValue) String() string     { return string(*v) }

// Set implements flag.Value.
func (v *BoolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("%q is not a boolean", s)
	}

	*v = BoolValue(b)

	return nil
}
func (v *BoolValue) String() string { return strconv.FormatBool(bool(*v)) }

// IsBoolFlag lets `--flag` mean `--flag=true`.
func (v *BoolValue) IsBoolFlag() bool { return true }

// Set implements flag.Value.
func (v *IntValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("%q is not a whole number", s)
	}

	*v = IntValue(n)

	return nil
}
func (v *IntValue) String() string { return strconv.Itoa(int(*v)) }

// Set implements flag.Value.
func (v *DurationValue) Set(s string) error {
	if n, err := strconv.Atoi(s); err == nil {
		*v = DurationValue(time.Duration(n) * time.Second)
		return nil
	}

	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration (e.g. 30s, 2m, or a number of seconds)", s)
	}

	*v = DurationValue(d)

	return nil
}
func (v *DurationValue) String() string { return time.Duration(*v).String() }

// Set implements flag.Value.
func (v *SecretValue) Set(s string) error { *v = SecretValue(s); return nil }
func (v *SecretValue) String() string     { return Secret(*v).String() }
