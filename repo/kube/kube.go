// Package kube is backup-oracle's adapter to the Kubernetes API, built on client-go: one client,
// configured from a kubeconfig file or the in-cluster service account, and the few calls the
// service makes. Each call states, next to it, the RBAC rule it needs (a Rule); the chart's Role
// is rendered from the same statement and a chart test compares the two (`backup-oracle rights`).
//
// Only cmd wires it. Its consumers declare the small interfaces they need (the gate self-test's
// gate.DryRunCreator, the cutover's cutover.ReplicationSources and the others), so their tests use function-field fakes, and this package is exercised
// against the real API server of the e2e stack.
package kube

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/backup-oracle/backup-oracle/repo"
)

// ErrNoConfig: neither a kubeconfig file nor the in-cluster service account is available.
var ErrNoConfig = errors.New("kube: no Kubernetes API configuration")

// Config says where the API server is and who the client is.
type Config struct {
	// Kubeconfig is a kubeconfig file (its current context is used). Empty: the in-cluster
	// service account (the pod's token and CA, KUBERNETES_SERVICE_HOST).
	Kubeconfig string
	// UserAgent names the client in the API server's logs and audit events.
	UserAgent string
}

// Client is one connection to the API server. It is safe for concurrent use. Requests are
// bounded by their context only (no client-wide timeout).
type Client struct {
	cs   kubernetes.Interface
	dyn  dynamic.Interface // the custom resources (VolSync's)
	host string
}

// New returns a client for cfg. It reads the kubeconfig file or the service account's files but
// sends no request: an unreachable API server shows at the first call.
func New(cfg Config) (*Client, error) {
	var (
		rc  *rest.Config
		err error
	)

	switch {
	case cfg.Kubeconfig != "":
		rc, err = clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("kube: read kubeconfig %q: %w", cfg.Kubeconfig, err)
		}
	default:
		rc, err = rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("%w: no kubeconfig given and not in a cluster (%w)", ErrNoConfig, err)
		}
	}

	if cfg.UserAgent != "" {
		rc.UserAgent = cfg.UserAgent
	}

	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kube: client for %s: %w", rc.Host, err)
	}

	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kube: dynamic client for %s: %w", rc.Host, err)
	}

	return &Client{cs: cs, dyn: dyn, host: rc.Host}, nil
}

// Host is the API server's address, for messages.
func (c *Client) Host() string { return c.host }

// Rule is one RBAC rule a call needs: verbs on resources of API groups, in Namespace (a Role) or
// cluster-wide (empty Namespace: a ClusterRole).
type Rule struct {
	Namespace string   `json:"namespace,omitempty"`
	APIGroups []string `json:"apiGroups"`
	Resources []string `json:"resources"`
	Verbs     []string `json:"verbs"`
	// Why is the reason the chart's README gives for it.
	Why string `json:"why"`
}

// DryRunCreatePVCRule is the right DryRunCreatePVC needs in namespace: create PVCs. A dry run is
// authorised as the real create would be; nothing else is needed (no read, no delete).
func DryRunCreatePVCRule(namespace string) Rule {
	return Rule{
		Namespace: namespace, APIGroups: []string{""}, Resources: []string{"persistentvolumeclaims"}, Verbs: []string{"create"},
		Why: "the gate self-test's server-side dry-run create (dryRun=All) of a canary PVC: admission runs, nothing is stored",
	}
}

// DryRunCreatePVC sends a server-side dry-run create (dryRun=All) of pvc, a 1Mi ReadWriteOnce
// claim with labels and annotations, and says what admission
// did with it: admitted, denied (by an admission webhook, a ValidatingAdmissionPolicy or another
// admission plugin; the message says which and why) or refused because an admission webhook
// could not be called or timed out. Nothing is stored, and webhooks declared with
// sideEffects None or NoneOnDryRun (Kyverno's) create nothing. An error means the API server
// could not be asked or refused the request itself (unreachable, unauthenticated, forbidden by
// RBAC, namespace missing, a webhook that does not support dry runs). Needs DryRunCreatePVCRule.
func (c *Client) DryRunCreatePVC(ctx context.Context, pvc repo.PVC, labels, annotations map[string]string) (repo.DryRun, error) {
	obj := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: pvc.Name, Namespace: pvc.Namespace, Labels: labels, Annotations: annotations},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Mi")}},
		},
	}

	_, err := c.cs.CoreV1().PersistentVolumeClaims(pvc.Namespace).Create(ctx, obj, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})

	d, err := classify(err)
	if err != nil {
		return d, fmt.Errorf("kube: dry-run create of PVC %s on %s: %w", pvc, c.host, err)
	}

	return d, nil
}

// classify reads the API server's answer to a create. The messages are the API server's
// (k8s.io/apiserver v0.35, pkg/admission/plugin/webhook/errors.ToStatusErr: `admission webhook
// "<name>" denied the request: <message>`; pkg/util/webhook.ErrCallingWebhook: `failed calling
// webhook "<name>": <reason>`, sent as an internal error; a timeout of the whole admission is a
// Timeout status; a ValidatingAdmissionPolicy's denial says `ValidatingAdmissionPolicy '<name>'
// with binding '<name>' denied request`, as 422 Invalid on kube-apiserver v1.35 (seen end to
// end). An RBAC refusal is a Forbidden status saying the user "cannot create"; any other
// Forbidden is an admission plugin's denial (a quota).
func classify(err error) (repo.DryRun, error) {
	if err == nil {
		return repo.DryRun{Verdict: repo.DryRunAdmitted}, nil
	}

	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return repo.DryRun{}, err
	}

	msg := status.Status().Message

	switch {
	case strings.Contains(msg, "admission webhook ") && strings.Contains(msg, " denied the request"),
		strings.Contains(msg, "ValidatingAdmissionPolicy '") && strings.Contains(msg, " denied request"):
		return repo.DryRun{Verdict: repo.DryRunDenied, Message: msg}, nil
	case strings.Contains(msg, "failed calling webhook "), apierrors.IsTimeout(err):
		return repo.DryRun{Verdict: repo.DryRunWebhookFailed, Message: msg}, nil
	case apierrors.IsForbidden(err) && !strings.Contains(msg, " cannot create "):
		return repo.DryRun{Verdict: repo.DryRunDenied, Message: msg}, nil
	default:
		return repo.DryRun{}, err
	}
}

// ErrNoToken: the kubeconfig's current user has no bearer token (a client certificate, an exec
// plugin or an auth provider instead).
var ErrNoToken = errors.New("kube: the kubeconfig's user has no bearer token")

// BearerToken is the bearer token of the kubeconfig's current user (its token, or the content of
// its tokenFile), for a command asking backup-oracle as that user. kubeconfig empty: the
// KUBECONFIG variable's files, else ~/.kube/config (kubectl's rules). The token's audience is
// the API server's: backup-oracle accepts it only when configured to (AUTH_AUDIENCES).
func BearerToken(kubeconfig string) (string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}

	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return "", fmt.Errorf("kube: read kubeconfig: %w", err)
	}

	switch {
	case rc.BearerToken != "":
		return rc.BearerToken, nil
	case rc.BearerTokenFile != "":
		b, err := os.ReadFile(rc.BearerTokenFile)
		if err != nil {
			return "", fmt.Errorf("kube: kubeconfig token file: %w", err)
		}

		return strings.TrimSpace(string(b)), nil
	default:
		return "", ErrNoToken
	}
}
