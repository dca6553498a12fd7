//go:build e2e

package e2e

import (
	"encoding/base64"
	"maps"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// externalSecretCRD declares external-secrets.io/v1 ExternalSecret for the restic policies,
// which generate one per PVC (policies.secret.mode externalSecret). It is the test's own
// stand-in, not the External Secrets Operator's CRD: the spec is kept as sent.
const externalSecretCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: externalsecrets.external-secrets.io}
spec:
  group: external-secrets.io
  names: {kind: ExternalSecret, listKind: ExternalSecretList, plural: externalsecrets, singular: externalsecret}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
`

// secretStore stands in for the External Secrets Operator and its store: remote keys and
// their data. fulfil does what the operator does for the ExternalSecrets the policies write
// (spec.dataFrom[].extract, then spec.target.template.data with mergePolicy Merge over it):
// the Secret spec.target.name, created or replaced. Template values are used as they are (the
// policies' hold no template expressions).
type secretStore map[string]map[string]string

// fulfil waits for the ExternalSecret ns/name and writes its target Secret; override, when not
// nil, replaces keys of the result (a test's deliberate disagreement). It returns the data.
func (s secretStore) fulfil(t *testing.T, k *kube, ns, name string, override map[string]string) map[string]string {
	t.Helper()

	path := "/apis/external-secrets.io/v1/namespaces/" + ns + "/externalsecrets/" + name

	var es map[string]any

	_, ok := eventually(30*time.Second, 100*time.Millisecond, func() bool {
		r := k.get(t, path)
		es = r.Body

		return r.Code == http.StatusOK
	})
	require.True(t, ok, "no ExternalSecret %s/%s", ns, name)

	data := map[string]string{}

	from, _ := nested(es, "spec", "dataFrom").([]any)
	for _, f := range from {
		m, _ := f.(map[string]any)
		key := str(m, "extract", "key")
		remote, found := s[key]
		require.True(t, found, "ExternalSecret %s/%s extracts %q, which the store lacks", ns, name, key)
		maps.Copy(data, remote)
	}

	require.Equal(t, "Merge", str(es, "spec", "target", "template", "mergePolicy"), "the template merges into the extracted data")

	tmpl, _ := nested(es, "spec", "target", "template", "data").(map[string]any)
	for k, v := range tmpl {
		data[k], _ = v.(string)
	}

	maps.Copy(data, override)

	target := str(es, "spec", "target", "name")
	encoded := map[string]string{}

	for k, v := range data {
		encoded[k] = base64.StdEncoding.EncodeToString([]byte(v))
	}

	secret := map[string]any{"apiVersion": "v1", "kind": "Secret",
		"metadata": map[string]any{"name": target, "namespace": ns}, "data": encoded}

	secretPath := "/api/v1/namespaces/" + ns + "/secrets/" + target
	if k.exists(t, secretPath) {
		k.mustOK(t, http.MethodPut, secretPath, secret, "")
	} else {
		k.mustOK(t, http.MethodPost, "/api/v1/namespaces/"+ns+"/secrets", secret, "")
	}

	return data
}
