{{/*
Which Kyverno policy set the chart installs (chart README, "Which policy set"): the CEL set
(policies.kyverno.io/v1 ValidatingPolicy, MutatingPolicy, GeneratingPolicy, DeletingPolicy), the
ClusterPolicy set (kyverno.io/v1 ClusterPolicy, kyverno.io/v2 ClusterCleanupPolicy) or none.

What the chart sees: the API versions the cluster serves (helm install/upgrade, or helm template
--api-versions), which tell Kyverno before 1.17 (no policies.kyverno.io/v1) from 1.17 and later,
but not 1.17, 1.18 and 1.19 apart (they serve the same kinds and versions); and
policies.kyverno.version, which does. What it must avoid: the CEL set on Kyverno 1.18 with its
default --httpBlocklist (every CEL http call to a private address, such as this Service's
ClusterIP, is refused: every labelled PVC denied), and the ClusterPolicy set on Kyverno 1.20
(the ClusterPolicy engine is removed while its CRDs stay: the policies would do nothing).
*/}}

{{/* Kyverno's API groups as Helm lists them: group/version, and group/version/kind from a cluster. */}}
{{- define "bo.kyvernoVisible" -}}
{{- $caps := .Capabilities.APIVersions -}}
{{- range list "kyverno.io/v1" "kyverno.io/v2" "kyverno.io/v1/ClusterPolicy" "policies.kyverno.io/v1" "policies.kyverno.io/v1/ValidatingPolicy" "policies.kyverno.io/v1beta1" "policies.kyverno.io/v1alpha1" -}}
{{- if $caps.Has . }}true{{ end -}}
{{- end -}}
{{- end -}}

{{- define "bo.celServed" -}}
{{- if or (.Capabilities.APIVersions.Has "policies.kyverno.io/v1") (.Capabilities.APIVersions.Has "policies.kyverno.io/v1/ValidatingPolicy") }}true{{ end -}}
{{- end -}}

{{- define "bo.clusterPolicyServed" -}}
{{- if or (.Capabilities.APIVersions.Has "kyverno.io/v1") (.Capabilities.APIVersions.Has "kyverno.io/v1/ClusterPolicy") }}true{{ end -}}
{{- end -}}

{{/*
The set and why, as JSON {"set", "why"}; fails with a sentence where neither the value nor the
cluster allows a set that acts. Every template that depends on the set includes it.
*/}}
{{- define "bo.policySetChoice" -}}
{{- $p := .Values.policies -}}
{{- $v := $p.kyverno.version | default "" | toString -}}
{{- $visible := include "bo.kyvernoVisible" . -}}
{{- $cel := include "bo.celServed" . -}}
{{- $blocked := and $v (semverCompare ">=1.18.0-0, <1.19.0-0" $v) (not $p.kyverno.httpBlocklistOverridden) -}}
{{- $tokenless := and $v (semverCompare ">=1.17.0-0, <1.18.0-0" $v) .Values.auth.enabled -}}
{{- $tokenlessWhy := printf "Kyverno %s's MutatingPolicy cannot read the token the CEL set sends with auth.enabled (resource.Get fails there), so every PVC with a backup would be denied, never restored (README, \"Who may ask\")" $v -}}
{{- $noCEL := "" -}}
{{- if and $v (semverCompare "<1.17.0-0" $v) -}}
{{- $noCEL = printf "Kyverno %s has no policies.kyverno.io/v1 (it arrives with 1.17)" $v -}}
{{- else if and $visible (not $cel) -}}
{{- $noCEL = "the cluster serves Kyverno without policies.kyverno.io/v1 (it arrives with Kyverno 1.17)" -}}
{{- end -}}
{{- $blockedWhy := printf "Kyverno %s's default --httpBlocklist refuses CEL http calls to private addresses, such as this Service's ClusterIP, so every labelled PVC would be denied" $v -}}
{{- $unknown := and $visible $cel (not $v) -}}
{{- $ask := "this cluster serves the CEL policies (policies.kyverno.io/v1: Kyverno 1.17 or later), but the chart cannot see which Kyverno runs them, and Kyverno 1.18 refuses their calls to this Service unless --httpBlocklist is overridden on every controller. Set policies.kyverno.version (e.g. 1.19.1; on 1.18 also policies.kyverno.httpBlocklistOverridden=true once it is overridden), or policies.engine=clusterpolicy to keep the ClusterPolicy set" -}}
{{- $set := "" -}}
{{- $why := "" -}}
{{- if eq $p.engine "none" -}}
{{- $set = "none" -}}{{- $why = "policies.engine=none" -}}
{{- else if eq $p.engine "clusterpolicy" -}}
{{- $set = "clusterpolicy" -}}{{- $why = "policies.engine=clusterpolicy" -}}
{{- if and $visible (not (include "bo.clusterPolicyServed" .)) -}}
{{- fail "policies.engine=clusterpolicy: the cluster does not serve kyverno.io/v1 ClusterPolicy; use policies.engine=auto or cel" -}}
{{- end -}}
{{- else if eq $p.engine "cel" -}}
{{- $set = "cel" -}}{{- $why = "policies.engine=cel" -}}
{{- if $noCEL -}}{{- fail (printf "policies.engine=cel: %s; use policies.engine=auto or clusterpolicy" $noCEL) -}}{{- end -}}
{{- if $blocked -}}{{- fail (printf "policies.engine=cel: %s. Override --httpBlocklist on every Kyverno controller (policies README, \"Kyverno versions\") and set policies.kyverno.httpBlocklistOverridden=true, or use policies.engine=clusterpolicy" $blockedWhy) -}}{{- end -}}
{{- if $unknown -}}{{- fail (printf "policies.engine=cel: %s" $ask) -}}{{- end -}}
{{- if $tokenless -}}{{- fail (printf "policies.engine=cel: %s; use policies.engine=auto or clusterpolicy, or Kyverno 1.18+" $tokenlessWhy) -}}{{- end -}}
{{- else if $noCEL -}}
{{- $set = "clusterpolicy" -}}{{- $why = printf "policies.engine=auto: %s" $noCEL -}}
{{- else if $tokenless -}}
{{- $set = "clusterpolicy" -}}{{- $why = printf "policies.engine=auto: %s" $tokenlessWhy -}}
{{- else if $blocked -}}
{{- $set = "clusterpolicy" -}}{{- $why = printf "policies.engine=auto: %s; override it on every controller and set policies.kyverno.httpBlocklistOverridden=true for the CEL set" $blockedWhy -}}
{{- else if $unknown -}}
{{- fail (printf "policies.engine=auto: %s" $ask) -}}
{{- else if $v -}}
{{- $set = "cel" -}}{{- $why = printf "policies.engine=auto: Kyverno %s serves the CEL policies" $v -}}
{{- if semverCompare ">=1.18.0-0, <1.19.0-0" $v }}{{ $why = printf "%s (--httpBlocklist overridden)" $why }}{{ end -}}
{{- else -}}
{{- $set = "cel" -}}{{- $why = "policies.engine=auto, rendered without a cluster (no Kyverno API among the API versions): Kyverno 1.17 and later serve the CEL set; 1.18 needs --httpBlocklist overridden on every controller" -}}
{{- end -}}
{{- $inert := printf "Kyverno %s removes the engine that runs ClusterPolicies (their CRDs stay, so they would be stored and do nothing)" $v -}}
{{- if and (eq $set "clusterpolicy") $v (semverCompare ">=1.20.0-0" $v) (eq $p.engine "clusterpolicy") -}}
{{- fail (printf "policies.engine=clusterpolicy: %s; use policies.engine=auto or cel" $inert) -}}
{{- else if and (eq $set "clusterpolicy") $v (semverCompare ">=1.20.0-0" $v) -}}
{{- fail (printf "policies.engine=auto: %s, and %s: neither set would act. Install Kyverno's policies.kyverno.io CRDs" $noCEL $inert) -}}
{{- end -}}
{{- dict "set" $set "why" $why | toJson -}}
{{- end -}}

{{/* cel, clusterpolicy or none. */}}
{{- define "bo.policySet" -}}
{{- (include "bo.policySetChoice" . | fromJson).set -}}
{{- end -}}

{{/* A comment heading each rendered policy file: which set, and why. */}}
{{- define "bo.policySetComment" -}}
{{- $c := include "bo.policySetChoice" . | fromJson -}}
# backup-oracle policy set: {{ $c.set }}; {{ $c.why }}.
{{- end -}}
