// Package backuporacle holds what the backup-oracle binary embeds from the repository's root:
// the OpenAPI description it serves at /openapi.yaml, so the spec served is the spec reviewed.
package backuporacle

import _ "embed" // for the go:embed directive below

// OpenAPI is openapi.yaml, embedded at build time. Callers must not modify it.
//
//go:embed openapi.yaml
var OpenAPI []byte //nolint:gochecknoglobals // go:embed needs a package variable
