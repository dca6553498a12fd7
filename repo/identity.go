package repo

import (
	"errors"
	"fmt"
	"strings"
)

// Defaults of VolSync's Kopia mover and of the policies this project ships.
const (
	DefaultSourceNameTemplate = "{pvc}-backup"
	DefaultKopiaPath          = "/data"
	// MaxKopiaUsernameLen is where the Kopia mover cuts a derived username.
	MaxKopiaUsernameLen = 50
	// kopiaDefaultIdentity is the mover's fallback when sanitising leaves nothing.
	kopiaDefaultIdentity = "volsync-default"
)

// KopiaSource is a Kopia snapshot source, username@hostname:path.
type KopiaSource struct {
	UserName string
	Host     string
	Path     string
}

// String formats the source the way kopia prints it.
func (s KopiaSource) String() string { return s.UserName + "@" + s.Host + ":" + s.Path }

// KopiaIdentity derives the Kopia source a PVC's backups are stored under, exactly as VolSync's
// Kopia mover derives it from the ReplicationSource the policies generate for that PVC.
// Templates may use the placeholders {namespace} and {pvc}. The zero value is not usable:
// start from DefaultKopiaIdentity.
type KopiaIdentity struct {
	// SourceName is the ReplicationSource's name (the mover's default username before sanitising).
	SourceName string
	// UserName, when set, is the RS's spec.kopia.username: used verbatim, not sanitised.
	UserName string
	// HostName, when set, is the RS's spec.kopia.hostname: used verbatim, not sanitised.
	HostName string
	// Path is the snapshot path (spec.kopia.sourcePathOverride), "/data" by default.
	Path string
}

// DefaultKopiaIdentity is the identity of the shipped policies: RS "<pvc>-backup" in the PVC's
// namespace, no explicit username or hostname, path /data.
func DefaultKopiaIdentity() KopiaIdentity {
	return KopiaIdentity{SourceName: DefaultSourceNameTemplate, Path: DefaultKopiaPath}
}

// Validate reports every problem with the templates at once, each wrapping ErrInvalidConfig.
func (k KopiaIdentity) Validate() error {
	var errs []error

	if k.SourceName == "" && (k.UserName == "" || k.HostName == "") {
		errs = append(errs, fmt.Errorf("%w: kopia identity: a source name template is needed unless both username and hostname templates are set", ErrInvalidConfig))
	}

	for _, t := range []struct{ what, tmpl string }{
		{"source name", k.SourceName}, {"username", k.UserName}, {"hostname", k.HostName},
	} {
		if err := checkTemplate(t.tmpl); err != nil {
			errs = append(errs, fmt.Errorf("%w: kopia identity: %s template %q: %w", ErrInvalidConfig, t.what, t.tmpl, err))
		}
	}

	if !strings.HasPrefix(k.Path, "/") {
		errs = append(errs, fmt.Errorf("%w: kopia identity: path %q must be absolute", ErrInvalidConfig, k.Path))
	}

	return errors.Join(errs...)
}

// Source returns the Kopia source for pvc. It is a pure function of its inputs and safe for
// concurrent use.
func (k KopiaIdentity) Source(pvc PVC) KopiaSource {
	rsName := expand(k.SourceName, pvc)

	user := expand(k.UserName, pvc)
	if user == "" {
		user = KopiaUsername(rsName)
	}

	host := expand(k.HostName, pvc)
	if host == "" {
		host = KopiaHostname(pvc.Namespace, rsName)
	}

	return KopiaSource{UserName: user, Host: host, Path: k.Path}
}

// KopiaUsername derives the username VolSync's Kopia mover uses for a ReplicationSource named
// rsName: keep [A-Za-z0-9_-], trim '-' and '_' at both ends, fall back to "volsync-default" when
// nothing is left, then cut to 50 characters.
func KopiaUsername(rsName string) string {
	s := strings.Map(func(r rune) rune {
		if isAlnum(r) || r == '_' || r == '-' {
			return r
		}

		return -1
	}, rsName)

	s = strings.Trim(s, "-_")
	if s == "" {
		s = kopiaDefaultIdentity
	}

	if len(s) > MaxKopiaUsernameLen {
		s = s[:MaxKopiaUsernameLen]
	}

	return s
}

// KopiaHostname derives the hostname VolSync's Kopia mover uses for a ReplicationSource in
// namespace: keep [A-Za-z0-9.-], turn '_' into '-', trim '-' and '.' at both ends; when nothing is
// left, the same applied to the object's name, then "volsync-default".
func KopiaHostname(namespace, objectName string) string {
	for _, candidate := range []string{namespace, objectName} {
		if s := sanitizeHostname(candidate); s != "" {
			return s
		}
	}

	return kopiaDefaultIdentity
}

func sanitizeHostname(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case isAlnum(r) || r == '.' || r == '-':
			return r
		case r == '_':
			return '-'
		}

		return -1
	}, s)

	return strings.Trim(s, "-.")
}

func isAlnum(r rune) bool {
	return (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
}

func expand(tmpl string, pvc PVC) string {
	if tmpl == "" {
		return ""
	}

	return strings.ReplaceAll(strings.ReplaceAll(tmpl, "{namespace}", pvc.Namespace), "{pvc}", pvc.Name)
}

func checkTemplate(tmpl string) error {
	rest := strings.ReplaceAll(strings.ReplaceAll(tmpl, "{namespace}", ""), "{pvc}", "")
	if strings.ContainsAny(rest, "{}") {
		return errors.New("only the placeholders {namespace} and {pvc} are allowed")
	}

	return nil
}

// ExpandTemplate replaces {namespace} and {pvc} in tmpl with pvc's names: how the policies name a
// PVC's ReplicationSource and ReplicationDestination from the source-name template.
func ExpandTemplate(tmpl string, pvc PVC) string { return expand(tmpl, pvc) }
