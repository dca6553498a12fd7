{{- define "bo.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "bo.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "bo.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bo.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "bo.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "bo.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "bo.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "bo.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The oracle's base URL as Kyverno calls it. */}}
{{- define "bo.oracleURL" -}}
{{- default (printf "%s://%s.%s.svc:%d" (ternary "https" "http" .Values.tls.enabled) (include "bo.fullname" .) .Release.Namespace (int .Values.service.port)) .Values.policies.oracleURL | trimSuffix "/" -}}
{{- end -}}

{{/* Name templates expanded with Kyverno (JMESPath) variables. */}}
{{- define "bo.kyvernoName" -}}
{{- . | replace "{pvc}" "{{request.object.metadata.name}}" | replace "{namespace}" "{{request.object.metadata.namespace}}" -}}
{{- end -}}

{{/* Name templates as CEL string expressions over `object`. */}}
{{- define "bo.celName" -}}
{{- $parts := list -}}
{{- $s := . | replace "{pvc}" "\x00P\x00" | replace "{namespace}" "\x00N\x00" -}}
{{- range $i, $p := splitList "\x00" $s -}}
{{- if eq $p "P" -}}{{- $parts = append $parts "object.metadata.name" -}}
{{- else if eq $p "N" -}}{{- $parts = append $parts "object.metadata.namespace" -}}
{{- else if $p -}}{{- $parts = append $parts (printf "'%s'" $p) -}}
{{- end -}}
{{- end -}}
{{- join " + " $parts -}}
{{- end -}}

{{/*
The longest PVC name whose generated names (ReplicationSource/Destination and Secret) stay within
the 253 characters of a Kubernetes object name. {namespace} counts as 63 characters.
*/}}
{{- define "bo.maxPVCNameLength" -}}
{{- $longest := 0 -}}
{{- range (list .Values.config.kopia.sourceNameTemplate .Values.policies.secretNameTemplate) -}}
{{- $extra := len (. | replace "{pvc}" "" | replace "{namespace}" (repeat 63 "n")) -}}
{{- if gt $extra $longest -}}{{- $longest = $extra -}}{{- end -}}
{{- end -}}
{{- sub 253 $longest -}}
{{- end -}}

{{/* The label values the policies handle, as a YAML flow list. */}}
{{- define "bo.labelValues" -}}
{{- keys .Values.policies.schedules | sortAlpha | toJson -}}
{{- end -}}

{{/* Match labelled PVCs on CREATE; exclude the system namespaces. */}}
{{- define "bo.kyvernoMatch" -}}
match:
  any:
    - resources:
        kinds: [PersistentVolumeClaim]
        operations: [{{ .operations | default "CREATE" }}]
        selector:
          matchExpressions:
            - key: {{ .Values.policies.labelKey | quote }}
              operator: In
              values: {{ include "bo.labelValues" . }}
exclude:
  any:
    - resources:
        namespaces: {{ .Values.policies.excludedNamespaces | toJson }}
{{- end -}}

{{/* The oracle's "unknown" payload: what Kyverno uses when the call fails or is not 2xx. */}}
{{- define "bo.unknownPayload" -}}
{"exists": false, "decision": "unknown", "authoritative": false, "error": "backup-oracle unreachable, timed out or answered non-2xx"}
{{- end -}}

{{/*
The PVC annotation with which an operator acknowledges a near miss (README, "What the oracle
refuses to guess"): its value is the reason, required; the oracle is then asked with
?accept=near-miss and answers fresh (with the near misses as warnings) instead of unknown.
*/}}
{{- define "bo.acceptNearMissAnnotation" -}}backup-oracle.io/accept-near-miss{{- end -}}

{{- define "bo.existsContext" -}}
# /exists/<namespace>/<pvc>?unknownStatus=200 (Kyverno's apiCall replaces a non-2xx answer with
# the default, losing the oracle's reason; the unknown body denies all the same), with
# &accept=near-miss when the PVC carries a reason, and &source= when it names its source.
- name: oracle
  apiCall:
    method: GET
    service:
      url: >-
        {{ include "bo.oracleURL" . }}/exists/{{ "{{request.object.metadata.namespace}}" }}/{{ "{{request.object.metadata.name}}" }}?unknownStatus=200{{ "{{" }} (request.object.metadata.annotations."{{ include "bo.acceptNearMissAnnotation" . }}" && '&accept=near-miss') || '' }}{{ include "bo.restoreSourceQuery" . }}
      {{- if .Values.tls.enabled }}
      # The oracle's CA. No Authorization header: Kyverno (1.17.2+) then sends its controller's
      # projected token of audience kyverno-svc.kyverno.io (its chart's apiCallToken).
      caBundle: |-
        {{- include "bo.caBundle" . | trim | nindent 8 }}
      {{- end }}
    default: {{ include "bo.unknownPayload" . }}
{{- end -}}

{{/* The mover spec shared by the ReplicationSource and the ReplicationDestination. */}}
{{- define "bo.moverCommon" -}}
repository: {{ .secretName | quote }}
copyMethod: {{ .Values.policies.copyMethod }}
{{- with .Values.policies.volumeSnapshotClassName }}
volumeSnapshotClassName: {{ . | quote }}
{{- end }}
{{- with .Values.policies.storageClassName }}
storageClassName: {{ . | quote }}
{{- end }}
moverSecurityContext:
  {{- toYaml .Values.policies.moverSecurityContext | nindent 2 }}
{{- $nfs := .nfs | default (include "bo.moverNFS" . | fromJson) }}
{{- if $nfs.server }}
moverVolumes:
  - mountPath: {{ $nfs.mountPath | quote }}
    volumeSource:
      nfs:
        server: {{ $nfs.server | quote }}
        path: {{ $nfs.path | quote }}
{{- end }}
{{- end -}}

{{/* The ReplicationSource's and the ReplicationDestination's name templates. */}}
{{- define "bo.rsTemplate" -}}{{ .Values.config.kopia.sourceNameTemplate }}{{- end -}}
{{- define "bo.rdTemplate" -}}{{ .Values.config.kopia.destinationNameTemplate | default .Values.config.kopia.sourceNameTemplate }}{{- end -}}

{{/*
The Kopia identity the generated ReplicationSource and ReplicationDestination state explicitly, so
that the mover writes and restores exactly the source the oracle looks up (repo.KopiaIdentity,
from the same values):
- username: config.kopia.usernameTemplate expanded, used verbatim by both; else the RS name as
  the mover sanitises it (a PVC name's dots dropped) and, when that is longer than the mover's 50
  characters (the mover would cut it, and two long names sharing their first 50 characters would
  share one identity), its first 41 characters, "-" and the first 8 hex digits of
  sha256("<namespace>/<pvc>") (repo.KopiaCollisionFreeUsername);
- hostname: config.kopia.hostnameTemplate expanded; else the namespace (a DNS label, which the
  mover keeps as it is);
- path: config.kopia.path; the RS sets sourcePathOverride when it is not /data.
The RD states username and hostname when the path is /data. Another path it can only restore
through sourceIdentity, and only with neither username nor hostname (the Kopia fork, builder.go:
FromDestination restores /data when the RD states a hostname, and validateDestinationIdentity
refuses a username without a hostname; integration/harness/kopiamover, rules D1 to D3). So such
an RD states sourceIdentity {sourceName: the username, sourcePathOverride}: the fork derives the
username from sourceName as from an RS name, which leaves the policies' username (already
sanitised, at most 50 characters) as it is, and the hostname from the RD's namespace. A hostname
or username template with another path cannot be restored that way: the chart refuses both.
bo.kopiaIdentityContext: Kyverno context entries kopiaUsername and kopiaHostname (JMESPath);
the argument is the chart's root context.
*/}}
{{- define "bo.kopiaIdentityContext" -}}
{{- $k := .Values.config.kopia -}}
{{- if $k.usernameTemplate }}
- name: kopiaUsername
  variable:
    value: "{{ include "bo.kyvernoName" $k.usernameTemplate }}"
{{- else }}
- name: kopiaRSName
  variable:
    value: "{{ include "bo.kyvernoName" (include "bo.rsTemplate" .) }}"
- name: kopiaSanitized
  variable:
    jmesPath: replace_all(kopiaRSName, '.', '')
- name: kopiaUsername
  variable:
    jmesPath: >-
      (length(kopiaSanitized) > `50` && join('-', [truncate(kopiaSanitized, `41`),
      truncate(sha256(join('/', [request.object.metadata.namespace, request.object.metadata.name])), `8`)])) || kopiaSanitized
{{- end }}
- name: kopiaHostname
  variable:
    value: "{{ include "bo.kyvernoName" ($k.hostnameTemplate | default "{namespace}") }}"
{{- end -}}

{{/* The identity fields of a generated RS (.rd false) or RD (.rd true), Kyverno generate data. */}}
{{- define "bo.kopiaIdentityFields" -}}
{{- $k := .Values.config.kopia -}}
{{- if and .rd (ne $k.path "/data") -}}
sourceIdentity:
  sourceName: "{{ "{{kopiaUsername}}" }}"
  sourcePathOverride: {{ $k.path | quote }}
{{- else -}}
username: "{{ "{{kopiaUsername}}" }}"
hostname: "{{ "{{kopiaHostname}}" }}"
{{- if ne $k.path "/data" }}
sourcePathOverride: {{ $k.path | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/* bo.kopiaIdentityCEL: the same as CEL variables kopiaUsername and kopiaHostname. */}}
{{- define "bo.kopiaIdentityCEL" -}}
{{- $k := .Values.config.kopia -}}
{{- if $k.usernameTemplate }}
- name: kopiaUsername
  expression: {{ include "bo.celName" $k.usernameTemplate }}
{{- else }}
- name: kopiaSanitized
  expression: ({{ include "bo.celName" (include "bo.rsTemplate" .) }}).replace('.', '')
- name: kopiaUsername
  expression: >-
    size(variables.kopiaSanitized) > 50 ? variables.kopiaSanitized.substring(0, 41) + '-' +
    sha256(object.metadata.namespace + '/' + object.metadata.name).substring(0, 8) : variables.kopiaSanitized
{{- end }}
- name: kopiaHostname
  expression: {{ include "bo.celName" ($k.hostnameTemplate | default "{namespace}") }}
{{- end -}}

{{/* bo.kopiaIdentityFields as entries of a CEL map (a leading ", "), for .rd true or false. */}}
{{- define "bo.kopiaIdentityCELFields" -}}
{{- $k := .Values.config.kopia -}}
{{- if and .rd (ne $k.path "/data") -}}
, 'sourceIdentity': dyn({'sourceName': dyn(variables.kopiaUsername), 'sourcePathOverride': dyn({{ $k.path | toJson }})})
{{- else -}}
, 'username': dyn(variables.kopiaUsername), 'hostname': dyn(variables.kopiaHostname)
{{- if ne $k.path "/data" }}, 'sourcePathOverride': dyn({{ $k.path | toJson }}){{ end }}
{{- end }}
{{- end -}}

{{/*
Values the chart refuses with a sentence (a schema error names a path, not the problem).
Included by every template that depends on them.
*/}}
{{- define "bo.validate" -}}
{{- $p := .Values.policies -}}
{{- if .Values.backends }}{{ include "bo.validateBackends" . }}{{ end -}}
{{- $k := .Values.config.kopia -}}
{{- if and (ne $p.engine "none") (eq $p.mover "kopia") $k.hostnameTemplate (ne $k.path "/data") -}}
{{- fail "config.kopia.hostnameTemplate with a path other than /data cannot be restored: VolSync's Kopia ReplicationDestination restores /data when it states a hostname, and without one its hostname is its namespace. Drop hostnameTemplate or use path /data." -}}
{{- end -}}
{{- if and (ne $p.engine "none") (eq $p.mover "kopia") $k.usernameTemplate (ne $k.path "/data") -}}
{{- fail "config.kopia.usernameTemplate with a path other than /data cannot be restored: VolSync's Kopia ReplicationDestination restores another path only through sourceIdentity, which derives the username from sourceName (dots dropped, cut at 50 characters) instead of taking it as it is. Drop usernameTemplate or use path /data." -}}
{{- end -}}
{{- $b := .Values.backend -}}
{{- if .Values.backends }}{{ $b = include "bo.ownBackend" . | fromJson }}{{ end -}}
{{- if and (ne $p.engine "none") (eq $p.mode "generate") (eq $p.secret.mode "externalSecret") (not .Values.backends) (not $p.secret.externalSecret.remoteKey) -}}
{{- fail "policies.secret.externalSecret.remoteKey: the store's key the generated ExternalSecrets extract (the repository's password and credentials)" -}}
{{- end -}}
{{- if and (ne $p.engine "none") (eq $p.mode "generate") (eq $p.mover "restic") -}}
{{- $_ := include "bo.resticBase" . -}}
{{- if .Values.backends }}{{ $_ := include "bo.backendResticSecrets" . }}{{ end -}}
{{- end -}}
{{- if and (ne $p.engine "none") (eq $p.mode "generate") (eq $p.mover "kopia") (eq $b.type "kopia-fs") (not (include "bo.moverNFS" . | fromJson).server) -}}
{{- fail "policies.nfs: the generated ReplicationSources and ReplicationDestinations need the Kopia repository too. With backend.repository.nfs set they mount that export; with backend.repository.existingClaim (a PVC the movers in other namespaces cannot use) set policies.nfs.server and policies.nfs.path to the NFS export behind it." -}}
{{- end -}}
{{- end -}}

{{/* The NFS export the movers mount (JSON): policies.nfs, else the oracle's own repository export. */}}
{{- define "bo.moverNFS" -}}
{{- $n := .Values.policies.nfs -}}
{{- $b := .Values.backend -}}
{{- if .Values.backends }}{{ $b = include "bo.ownBackend" . | fromJson }}{{ end -}}
{{- $r := (($b.repository).nfs) | default dict -}}
{{- if $n.server -}}
{{- dict "server" $n.server "path" $n.path "mountPath" $n.mountPath | toJson -}}
{{- else if and (eq .Values.policies.mover "kopia") (eq $b.type "kopia-fs") $r.server -}}
{{- dict "server" $r.server "path" $r.path "mountPath" $n.mountPath | toJson -}}
{{- else -}}
{{- dict "server" "" "path" "" "mountPath" $n.mountPath | toJson -}}
{{- end -}}
{{- end -}}

{{/* A JMESPath literal mapping the first two hex digits of a sha256 to numbers. */}}
{{- define "bo.hexDigits" -}}
{"0":0,"1":1,"2":2,"3":3,"4":4,"5":5,"6":6,"7":7,"8":8,"9":9,"a":10,"b":11,"c":12,"d":13,"e":14,"f":15}
{{- end -}}

{{/* CEL policies: match labelled PVCs outside the excluded namespaces. */}}
{{- define "bo.celMatch" -}}
matchConstraints:
  resourceRules:
    - apiGroups: [""]
      apiVersions: [v1]
      operations: {{ .operations | default (list "CREATE") | toJson }}
      resources: [persistentvolumeclaims]
  objectSelector:
    matchExpressions:
      - key: {{ .Values.policies.labelKey | quote }}
        operator: In
        values: {{ include "bo.labelValues" . }}
  namespaceSelector:
    matchExpressions:
      - key: kubernetes.io/metadata.name
        operator: NotIn
        values: {{ .Values.policies.excludedNamespaces | toJson }}
matchConditions:
  # Repeats the selectors so that tools without namespace labels (the kyverno CLI) agree.
  - name: labelled-outside-excluded-namespaces
    expression: >-
      !(object.metadata.namespace in {{ .Values.policies.excludedNamespaces | toJson }}) &&
      has(object.metadata.labels) && {{ .Values.policies.labelKey | quote }} in object.metadata.labels &&
      object.metadata.labels[{{ .Values.policies.labelKey | quote }}] in {{ include "bo.labelValues" . }}
{{- end -}}

{{/*
CEL variables holding the oracle's /exists answer, asked with ?unknownStatus=200 (Kyverno 1.17's
http.Get errors on a non-2xx answer instead of returning its body). http.Get errors when the
oracle is unreachable, which fails the policy closed. The kyverno CLI's apiCallResponses mock returns
{body, statusCode} instead: `oracle` accepts both shapes.
*/}}
{{- define "bo.celOracle" -}}
{{ include "bo.restoreSourceCEL" . }}
{{- include "bo.celToken" . }}
- name: oracleResponse
  expression: >-
    {{ include "bo.celHTTP" . }}.Get({{ include "bo.oracleURL" . | quote }} + '/exists/' + object.metadata.namespace + '/' + object.metadata.name +
    '?unknownStatus=200' + (has(object.metadata.annotations) && {{ include "bo.acceptNearMissAnnotation" . | quote }} in object.metadata.annotations &&
    object.metadata.annotations[{{ include "bo.acceptNearMissAnnotation" . | quote }}] != '' ? '&accept=near-miss' : '') + variables.restoreQuery
    {{- include "bo.celHeaders" . }})
- name: oracle
  expression: >-
    variables.oracleResponse != null && 'body' in variables.oracleResponse ? variables.oracleResponse.body : variables.oracleResponse
- name: authoritative
  expression: >-
    variables.oracle != null && 'authoritative' in variables.oracle && variables.oracle.authoritative == true &&
    'decision' in variables.oracle && variables.oracle.decision in ['restore', 'fresh']
- name: restore
  expression: variables.authoritative && variables.oracle.decision == 'restore'
- name: hasDataSource
  expression: has(object.spec.dataSourceRef) || has(object.spec.dataSource)
{{- end -}}

{{/*
The CEL GeneratingPolicies build what they generate as CEL map literals. Kyverno 1.17 and 1.18
type-check CEL with homogeneous aggregate literals: every value of a map literal (and every element
of a list literal) must have the same type, so a map mixing strings, maps and numbers does not
compile. Every value in these literals is therefore wrapped in dyn(), which 1.19 accepts too.
*/}}

{{/* A Helm value as a CEL literal, every map value and list element wrapped in dyn(). */}}
{{- define "bo.celLiteral" -}}
{{- if kindIs "map" . -}}
{{- $entries := list -}}
{{- range $k, $v := . -}}
{{- $entries = append $entries (printf "%s: dyn(%s)" ($k | toJson) (include "bo.celLiteral" $v)) -}}
{{- end -}}
{{- printf "{%s}" (join ", " $entries) -}}
{{- else if kindIs "slice" . -}}
{{- $items := list -}}
{{- range . -}}
{{- $items = append $items (printf "dyn(%s)" (include "bo.celLiteral" .)) -}}
{{- end -}}
{{- printf "[%s]" (join ", " $items) -}}
{{- else -}}
{{- toJson . -}}
{{- end -}}
{{- end -}}

{{/*
Metadata of resources the CEL GeneratingPolicies create, as a CEL map; the argument is the CEL
expression of their name.
*/}}
{{- define "bo.celGeneratedMeta" -}}
{'name': dyn({{ . }}), 'namespace': dyn(object.metadata.namespace),
{{- " " -}} 'labels': dyn({'backup-oracle.io/pvc-uid': dyn(object.metadata.uid)}), 'annotations': dyn({'backup-oracle.io/pvc': dyn(object.metadata.name)}),
{{- " " -}} 'ownerReferences': dyn([dyn({'apiVersion': dyn('v1'), 'kind': dyn('PersistentVolumeClaim'), 'name': dyn(object.metadata.name),
{{- " " -}} 'uid': dyn(object.metadata.uid)})])}
{{- end -}}

{{/*
bo.moverCommon as the entries of a CEL map, on one line (for the CEL GeneratingPolicies);
.secretExpr is the CEL expression of the Secret's name.
*/}}
{{- define "bo.celMoverCommon" -}}
'repository': dyn({{ .secretExpr }}), 'copyMethod': dyn({{ .Values.policies.copyMethod | toJson }})
{{- with .Values.policies.volumeSnapshotClassName }}, 'volumeSnapshotClassName': dyn({{ . | toJson }}){{ end }}
{{- with .Values.policies.storageClassName }}, 'storageClassName': dyn({{ . | toJson }}){{ end -}}
, 'moverSecurityContext': dyn({{ include "bo.celLiteral" .Values.policies.moverSecurityContext }})
{{- $nfs := include "bo.moverNFS" . | fromJson }}
{{- if and .nfsVariable (include "bo.anyBackendNFS" .) }}, 'moverVolumes': dyn([dyn({'mountPath': dyn({{ $nfs.mountPath | toJson }}), 'volumeSource': dyn({'nfs': dyn({'server': dyn({{ .nfsVariable }}.server), 'path': dyn({{ .nfsVariable }}.path)})})})])
{{- else if $nfs.server }}, 'moverVolumes': dyn({{ include "bo.celLiteral" (list (dict "mountPath" $nfs.mountPath "volumeSource" (dict "nfs" (dict "server" $nfs.server "path" $nfs.path)))) }})
{{- end }}
{{- end -}}

{{/* A memory quantity ("256Mi", "96MiB", "1G", "268435456") in bytes. */}}
{{- define "bo.bytes" -}}
{{- $s := toString . -}}
{{- $units := dict "" 1 "B" 1 "K" 1000 "M" 1000000 "G" 1000000000 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "KiB" 1024 "MiB" 1048576 "GiB" 1073741824 -}}
{{- $n := regexFind "^[0-9]+" $s -}}
{{- $u := trimPrefix $n $s -}}
{{- if or (not $n) (not (hasKey $units $u)) -}}
{{- fail (printf "cannot read the memory quantity %q: write it as a number of bytes or with K, M, G, Ki, Mi, Gi (or KiB, MiB, GiB)" $s) -}}
{{- end -}}
{{- mul (atoi $n) (get $units $u) -}}
{{- end -}}


{{/* Refuses a backends list the policies and the oracle cannot use, with a sentence. */}}
{{- define "bo.validateBackends" -}}
{{- $own := 0 -}}
{{- $names := dict -}}
{{- range .Values.backends -}}
{{- if hasKey $names .name -}}{{- fail (printf "backends: the name %q is used twice; names label answers, metrics and Secrets" .name) -}}{{- end -}}
{{- $_ := set $names .name true -}}
{{- if eq .role "own" -}}{{- $own = add1 $own -}}{{- end -}}
{{- if and (ne $.Values.policies.engine "none") (eq $.Values.policies.mode "generate") (not .moverSecret) -}}
{{- fail (printf "backends[%s].moverSecret: the policies clone this backend's VolSync repository Secret (sourceNamespace, sourceName) for the ReplicationDestinations that restore from it" .name) -}}
{{- end -}}
{{- end -}}
{{- if ne $own 1 -}}
{{- fail (printf "backends: exactly one entry needs role: own (this cluster's repository, where the ReplicationSources back up to); found %d" $own) -}}
{{- end -}}
{{- if ne .Values.policies.engine "none" -}}
{{- range .Values.backends -}}
{{- if not (hasPrefix (printf "%s-" $.Values.policies.mover) .type) -}}
{{- fail (printf "backends[%s]: type %s cannot be restored by the %s mover of policies.mover; every backend the policies restore from must be a %s repository" .name .type $.Values.policies.mover $.Values.policies.mover) -}}
{{- end -}}
{{- end -}}
{{- if eq .Values.policies.mode "gate" -}}
{{- fail "backends with policies.mode gate: your own ReplicationDestinations name one repository, so a PVC whose newest snapshot is in another backend would restore from the wrong one (or nothing); use policies.mode generate, or a single backend" -}}
{{- end -}}
{{- end -}}
{{- if and (ne .Values.policies.engine "none") (eq .Values.policies.mode "generate") -}}
{{- $external := eq .Values.policies.secret.mode "externalSecret" -}}
{{- if and $external (ne .Values.policies.mover "restic") -}}
{{- fail "backends with policies.secret.mode externalSecret: supported with the restic movers only; use mode clone with each backend's moverSecret" -}}
{{- end -}}
{{- range .Values.backends -}}
{{- if and $external (not .moverSecret.remoteKey) -}}
{{- fail (printf "backends[%s].moverSecret.remoteKey: with policies.secret.mode externalSecret the policies extract this backend's restic credentials and password from the store's remoteKey" .name) -}}
{{- end -}}
{{- if and (not $external) (not .moverSecret.sourceName) -}}
{{- fail (printf "backends[%s].moverSecret: the policies clone this backend's VolSync repository Secret (sourceNamespace, sourceName) for the ReplicationDestinations that restore from it" .name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The own backend of the backends list (JSON). */}}
{{- define "bo.ownBackend" -}}
{{- range .Values.backends }}{{ if eq .role "own" }}{{ toJson . }}{{ end }}{{ end -}}
{{- end -}}


{{/*
Blue/green: the NFS export each backend's movers mount (JSON map name -> {server, path}). A
generate rule cannot leave a field out for some PVCs only, so when any backend is on NFS every RD
mounts one: a backend on S3 maps to the own export, else to the first NFS export listed, mounted
unused.
*/}}
{{- define "bo.anyBackendNFS" -}}
{{- range .Values.backends }}{{ if and (eq .type "kopia-fs") (((.repository).nfs).server) }}yes{{ end }}{{ end -}}
{{- end -}}
{{- define "bo.backendNFS" -}}
{{- $own := include "bo.moverNFS" . | fromJson -}}
{{- if not $own.server -}}
{{- range .Values.backends -}}
{{- if and (not $own.server) (eq .type "kopia-fs") (((.repository).nfs).server) -}}
{{- $own = dict "server" .repository.nfs.server "path" .repository.nfs.path "mountPath" $own.mountPath -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $m := dict -}}
{{- range .Values.backends -}}
{{- if and (eq .type "kopia-fs") (((.repository).nfs).server) -}}
{{- $_ := set $m .name (dict "server" .repository.nfs.server "path" .repository.nfs.path) -}}
{{- else -}}
{{- $_ := set $m .name (dict "server" $own.server "path" $own.path) -}}
{{- end -}}
{{- end -}}
{{- toJson $m -}}
{{- end -}}

{{/* Blue/green: the clone source (JSON map name -> {namespace, name}) of each backend's mover Secret. */}}
{{- define "bo.backendSecrets" -}}
{{- $m := dict -}}
{{- range .Values.backends -}}
{{- $_ := set $m .name (dict "namespace" .moverSecret.sourceNamespace "name" .moverSecret.sourceName) -}}
{{- end -}}
{{- toJson $m -}}
{{- end -}}

{{/* The PVC annotation naming the backend a restored PVC's RD restores from (blue/green). */}}
{{- define "bo.restoreBackendAnnotation" -}}backup-oracle.io/restore-backend{{- end -}}

{{/*
bo.s3CA: the volume source of an S3 settings block's private CA (s3.ca: secretName or
configMapName, key), as YAML; empty without one. Both names set is refused with a sentence.
*/}}
{{- define "bo.s3CA" -}}
{{- $ca := .ca | default dict -}}
{{- if and $ca.secretName $ca.configMapName -}}
{{- fail "s3.ca: set secretName or configMapName, not both (the PEM of the S3 endpoint's private CA)" -}}
{{- end -}}
{{- if $ca.secretName -}}
secret:
  secretName: {{ $ca.secretName | quote }}
  items:
    - key: {{ $ca.key | default "ca.crt" | quote }}
      path: {{ $ca.key | default "ca.crt" | quote }}
{{- else if $ca.configMapName -}}
configMap:
  name: {{ $ca.configMapName | quote }}
  items:
    - key: {{ $ca.key | default "ca.crt" | quote }}
      path: {{ $ca.key | default "ca.crt" | quote }}
{{- end -}}
{{- end -}}

{{/*
The restic movers' repository base (RESTIC_REPOSITORY is s3:<base>/<namespace>/<pvc>): one value
for both sides. Empty policies.resticRepositoryBase: derived from the oracle's own restic-s3
backend as <endpoint>/<bucket>[/<prefix>] (the endpoint's scheme, else https unless
backend.s3.secure is false). Set: it may name another host (the movers may reach S3 by another
name than the oracle), but its path must be the oracle's bucket and prefix, or the movers would
write where the oracle never looks (every PVC fresh; README, "restic"); the chart refuses such a
base with a sentence, and also an oracle template other than {prefix}/{namespace}/{pvc} or a shared
layout, which VolSync's movers (one repository per PVC, at base/<namespace>/<pvc>) cannot write.
*/}}
{{- define "bo.resticBase" -}}
{{- $b := .Values.backend -}}
{{- $what := "backend" -}}
{{- if .Values.backends }}{{ $b = include "bo.ownBackend" . | fromJson }}{{ $what = printf "backends[%s]" $b.name }}{{ end -}}
{{- include "bo.resticBaseOf" (dict "b" $b "base" .Values.policies.resticRepositoryBase "what" $what) -}}
{{- end -}}

{{/* The restic movers' base of backend .b (.what names it in messages); .base: the stated one. */}}
{{- define "bo.resticBaseOf" -}}
{{- $b := .b -}}
{{- $what := .what -}}
{{- $base := .base | default "" | trimSuffix "/" -}}
{{- if ne $b.type "restic-s3" -}}
{{- if not $base -}}
{{- fail (printf "policies.resticRepositoryBase: the restic movers' repository base (s3:<base>/<namespace>/<pvc>) cannot be derived from %s of type %s; set it (a single backend only)" $what $b.type) -}}
{{- end -}}
{{- $base -}}
{{- else -}}
{{- $s3 := $b.s3 | default dict -}}
{{- $r := $b.restic | default dict -}}
{{- if eq ($r.layout | default "per-pvc") "shared" -}}
{{- fail (printf "policies.mover restic with %s.restic.layout shared: VolSync's restic movers keep one repository per PVC (at <base>/<namespace>/<pvc>), they cannot back up to or restore from a shared repository" $what) -}}
{{- end -}}
{{- if not (has ($r.repositoryTemplate | default "") (list "" "{prefix}/{namespace}/{pvc}")) -}}
{{- fail (printf "%s.restic.repositoryTemplate %q: the generated restic movers write <base>/<namespace>/<pvc>, which the oracle finds only with the default template {prefix}/{namespace}/{pvc}" $what $r.repositoryTemplate) -}}
{{- end -}}
{{- $path := list $s3.bucket (($s3.prefix | default "") | trimAll "/") | compact | join "/" -}}
{{- if not $base -}}
{{- if not $s3.endpoint -}}
{{- fail (printf "policies.resticRepositoryBase: %s.s3.endpoint is empty (AWS's default), so the restic movers' base cannot be derived; set an endpoint (e.g. https://s3.amazonaws.com)" $what) -}}
{{- end -}}
{{- $endpoint := $s3.endpoint | trimSuffix "/" -}}
{{- if not (contains "://" $endpoint) }}{{ $endpoint = printf "%s://%s" (ternary "https" "http" (ne $s3.secure false)) $endpoint }}{{ end -}}
{{- printf "%s/%s" $endpoint $path -}}
{{- else -}}
{{- $rest := regexReplaceAll "^[A-Za-z][A-Za-z0-9+.-]*://" $base "" -}}
{{- $given := regexReplaceAll "^[^/]*/?" $rest "" | trimAll "/" -}}
{{- if ne $given $path -}}
{{- fail (printf "policies.resticRepositoryBase %q puts the restic repositories under %q of the S3 server, but the oracle reads bucket %q with prefix %q (%s.s3), i.e. under %q: every PVC would be answered fresh while its backups pile up elsewhere. Leave resticRepositoryBase empty (it is then derived from %s.s3), or make its path %q (its host may differ)" .base (printf "%s/<namespace>/<pvc>" $given) ($s3.bucket | default "") ($s3.prefix | default "") $what (printf "%s/<namespace>/<pvc>" $path) $what $path) -}}
{{- end -}}
{{- $base -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
bo.validateCutover: cutover.at is an RFC 3339 instant and cutover.from names a backends[] entry.
*/}}
{{- define "bo.validateCutover" -}}
{{- $c := .Values.cutover -}}
{{- if not (regexMatch "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$" ($c.at | default "")) -}}
{{- fail (printf "cutover.at %q: the instant of the cutover as RFC 3339 with the T and a zone, e.g. 2026-12-06T18:00:00Z" ($c.at | default "")) -}}
{{- end -}}
{{- $names := list -}}
{{- range .Values.backends }}{{ $names = append $names .name }}{{ end -}}
{{- if not (has $c.from $names) -}}
{{- fail (printf "cutover.from %q: name the backends[] entry of the colour being left (one of %s)" ($c.from | default "") (join ", " $names)) -}}
{{- end -}}
{{- end -}}

{{/*
The Kubernetes API rights of the oracle's own service account, as RBAC rules: the one place the
chart states them. They are what `backup-oracle rights` lists for the Deployment's settings (a
chart test compares the two; repo/kube states each call's rule next to the call). With the gate
self-test on: create PVCs, in the canary namespace only (the Role's), for the server-side dry
runs; nothing else, nowhere else.
*/}}
{{- define "bo.oracleRules" -}}
- apiGroups: [""]
  resources: [persistentvolumeclaims]
  verbs: [create]
{{- end -}}

{{/* A Go duration of whole hours, minutes and seconds ("5m", "1h30m") in seconds. */}}
{{- define "bo.seconds" -}}
{{- $total := 0 -}}
{{- range regexFindAll "[0-9]+[hms]" (toString .) -1 -}}
{{- $n := atoi (regexFind "^[0-9]+" .) -}}
{{- $total = add $total (mul $n (get (dict "h" 3600 "m" 60 "s" 1) (regexFind "[hms]$" .))) -}}
{{- end -}}
{{- $total -}}
{{- end -}}

{{/* The gate self-test's values the chart refuses, with a sentence. */}}
{{- define "bo.validateGate" -}}
{{- if and .Values.gate.enabled (has .Values.gate.canaryNamespace .Values.policies.excludedNamespaces) -}}
{{- fail (printf "gate.canaryNamespace %s is one of policies.excludedNamespaces: the policies would never see the canary and the self-test could only report disarmed. Use another canary namespace, or remove it from the excluded ones." .Values.gate.canaryNamespace) -}}
{{- end -}}
{{- end -}}

{{/*
bo.cutoverSide: this release's side of a declared cutover (README, "Blue/green migration"):
"leaving" when cutover.from names this release's own backend (backends[] role own): the chart
runs the final-backup Job; "arriving" when it names another backend: the oracle waits for the
final backups (CUTOVER_AT, CUTOVER_FROM); "none" without a cutover.
*/}}
{{- define "bo.cutoverSide" -}}
{{- $c := .Values.cutover -}}
{{- if not (or $c.at $c.from) -}}none
{{- else if and .Values.backends (eq $c.from (include "bo.ownBackend" . | fromJson).name) -}}leaving
{{- else -}}arriving
{{- end -}}
{{- end -}}

{{/*
bo.cutoverMode: what the cutover Job of this release does: "run" (leaving), "undo" (no cutover,
in blue/green mode, cutover.undoJob: restores what a removed cutover changed) or "" (none).
*/}}
{{- define "bo.cutoverMode" -}}
{{- $side := include "bo.cutoverSide" . -}}
{{- if eq $side "leaving" -}}run
{{- else if and (eq $side "none") .Values.backends .Values.cutover.undoJob -}}undo
{{- end -}}
{{- end -}}

{{/*
The Kubernetes API rights of the cutover Job's service account, as RBAC rules (a ClusterRole: the
backup-labelled PVCs may be in any namespace): the one place the chart states them. They are what
`backup-oracle cutover <mode> --rights` lists for the Job's arguments (a chart test compares the
two; repo/kube states each call's rule next to the call). Argument: (dict "mode" "run"|"undo"
"scale" bool).
*/}}
{{- define "bo.cutoverRules" -}}
- apiGroups: [volsync.backube]
  resources: [replicationsources]
  verbs: [list, patch]
{{- if eq .mode "run" }}
- apiGroups: [""]
  resources: [persistentvolumeclaims, pods]
  verbs: [list]
{{- if .scale }}
- apiGroups: [apps]
  resources: [replicasets]
  verbs: [get]
- apiGroups: [apps]
  resources: [deployments, statefulsets]
  verbs: [get, patch]
{{- end }}
{{- else if .scale }}
- apiGroups: [apps]
  resources: [deployments, statefulsets]
  verbs: [list, patch]
{{- end }}
{{- end -}}

{{/*
TLS material (README, "Who may ask"): {ca, crt, key} PEM, computed once per render and kept in
.Values (so every template sees the same). cert-manager or existingSecret: only the CA
(tls.caBundle; the certificate is not the chart's). Else the Secret <fullname>-tls when it
exists (kept across upgrades), or a new CA and certificate for the Service's names, localhost
and 127.0.0.1 (kubectl port-forward).
*/}}
{{- define "bo.tlsMaterial" -}}
{{- if not (hasKey .Values "__boTLS") -}}
{{- $t := .Values.tls -}}
{{- $m := dict "ca" "" "crt" "" "key" "" -}}
{{- if and $t.enabled (or $t.certManager.enabled $t.existingSecret) -}}
{{- if not $t.caBundle -}}
{{- fail "tls.caBundle: with tls.certManager.enabled or tls.existingSecret the chart needs the CA (PEM) that signs the certificate: the policies must trust it, and it is not known when the chart renders" -}}
{{- end -}}
{{- $_ := set $m "ca" $t.caBundle -}}
{{- else if $t.enabled -}}
{{- $name := printf "%s-tls" (include "bo.fullname" .) -}}
{{- $old := lookup "v1" "Secret" .Release.Namespace $name -}}
{{- if and $old $old.data (index $old.data "ca.crt") (index $old.data "tls.crt") (index $old.data "tls.key") -}}
{{- $_ := set $m "ca" (index $old.data "ca.crt" | b64dec) -}}
{{- $_ := set $m "crt" (index $old.data "tls.crt" | b64dec) -}}
{{- $_ := set $m "key" (index $old.data "tls.key" | b64dec) -}}
{{- else -}}
{{- $svc := include "bo.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- $ca := genCA (printf "%s-ca" $svc) (int $t.validityDays) -}}
{{- $names := list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) "localhost" -}}
{{- $cert := genSignedCert (printf "%s.%s.svc" $svc $ns) (list "127.0.0.1") $names (int $t.validityDays) $ca -}}
{{- $_ := set $m "ca" $ca.Cert -}}
{{- $_ := set $m "crt" $cert.Cert -}}
{{- $_ := set $m "key" $cert.Key -}}
{{- end -}}
{{- end -}}
{{- $_ := set .Values "__boTLS" $m -}}
{{- end -}}
{{- toJson (get .Values "__boTLS") -}}
{{- end -}}

{{/* The CA the policies trust (PEM), empty without TLS. */}}
{{- define "bo.caBundle" -}}
{{- (include "bo.tlsMaterial" . | fromJson).ca -}}
{{- end -}}

{{/* The Secret holding the serving certificate. */}}
{{- define "bo.tlsSecretName" -}}
{{- .Values.tls.existingSecret | default (printf "%s-tls" (include "bo.fullname" .)) -}}
{{- end -}}

{{/* The Secret holding the CEL policies' static token (key token). */}}
{{- define "bo.policyTokenSecret" -}}
{{- .Values.auth.policyToken.existingSecret | default (printf "%s-policy-token" (include "bo.fullname" .)) -}}
{{- end -}}

{{/* The static token the CEL policies send: the existing Secret's, kept, or a new one. */}}
{{- define "bo.policyToken" -}}
{{- if not (hasKey .Values "__boPolicyToken") -}}
{{- $old := lookup "v1" "Secret" .Release.Namespace (include "bo.policyTokenSecret" .) -}}
{{- $token := "" -}}
{{- if and $old $old.data (index $old.data "token") -}}
{{- $token = index $old.data "token" | b64dec -}}
{{- else -}}
{{- $token = randAlphaNum 48 -}}
{{- end -}}
{{- $_ := set .Values "__boPolicyToken" $token -}}
{{- end -}}
{{- get .Values "__boPolicyToken" -}}
{{- end -}}

{{/* The service port's name: https or http. */}}
{{- define "bo.portName" -}}{{ ternary "https" "http" .Values.tls.enabled }}{{- end -}}

{{/* The rights delegated authentication and authorisation need (backup-oracle rights: kube.TokenReviewRule, kube.SubjectAccessReviewRule). */}}
{{- define "bo.authRules" -}}
- apiGroups: [authentication.k8s.io]
  resources: [tokenreviews]
  verbs: [create]
- apiGroups: [authorization.k8s.io]
  resources: [subjectaccessreviews]
  verbs: [create]
{{- end -}}

{{/* The CEL policies' header argument: the static token (bo.celToken), none without authentication. */}}
{{- define "bo.celHeaders" -}}
{{- if .Values.auth.enabled -}}
, {'Authorization': 'Bearer ' + string(variables.oracleToken)}
{{- end -}}
{{- end -}}

{{/*
The CEL http client: the library's own, which trusts the admission controller's system trust
store, so over TLS the oracle's CA must be there (Kyverno's chart: admissionController
caCertificates.data, README "Who may ask"). Not http.Client(caBundle): on every supported version
(1.17.2-1.19.1) it returns a value the Get overloads do not take ("no such overload:
Get(http.contextImpl, ...)", kyverno/sdk extensions/cel/libs/http/impl.go, http_client_string
wraps the *contextImpl that contextImpl.Client returns), seen on the real controllers in make e2e.
*/}}
{{- define "bo.celHTTP" -}}
http
{{- end -}}

{{/*
Blue/green with the restic movers (policies.secret.mode externalSecret): each backend's
ExternalSecret source (JSON map name -> {remoteKey, base}); the own backend's base may be stated
(policies.resticRepositoryBase), every other one is derived from its S3 settings.
*/}}
{{- define "bo.backendResticSecrets" -}}
{{- $m := dict -}}
{{- range .Values.backends -}}
{{- $stated := ternary $.Values.policies.resticRepositoryBase "" (eq .role "own") -}}
{{- $base := include "bo.resticBaseOf" (dict "b" . "base" $stated "what" (printf "backends[%s]" .name)) -}}
{{- $_ := set $m .name (dict "remoteKey" .moverSecret.remoteKey "base" $base) -}}
{{- end -}}
{{- toJson $m -}}
{{- end -}}

{{/* The store key the PVC's own ExternalSecret extracts: the own backend's with backends. */}}
{{- define "bo.remoteKey" -}}
{{- if .Values.backends -}}
{{- (include "bo.ownBackend" . | fromJson).moverSecret.remoteKey -}}
{{- else -}}
{{- .Values.policies.secret.externalSecret.remoteKey -}}
{{- end -}}
{{- end -}}

{{/*
The static token the CEL policies send (auth.policyToken): read from its Secret at each
admission (resource.Get; Kyverno's admission controller may get that one Secret), so a rotated
token reaches the policies as it reaches the oracle, and never appears in a policy object.
*/}}
{{- define "bo.celToken" -}}
{{- if .Values.auth.enabled }}
- name: oracleToken
  expression: >-
    string(base64.decode(string(resource.Get('v1', 'secrets', {{ .Release.Namespace | quote }}, {{ include "bo.policyTokenSecret" . | quote }}).data.token)))
{{- end }}
{{- end -}}

{{/*
bo.externalSecretTemplate: the keys the policies set on a PVC's own ExternalSecret target over what
the store's remoteKey holds (mergePolicy Merge), as a dict: RESTIC_REPOSITORY for the restic
movers (s3:<base>/<namespace>/<pvc>, the namespace and PVC left as the two placeholders
NAMESPACE_PLACEHOLDER and PVC_PLACEHOLDER for each policy set to fill), and for the Kopia movers on
NFS, KOPIA_REPOSITORY filesystem:///mnt/<mountPath>: the fork uses the Secret's value as it is for
an NFS moverVolume, and mounts the export at /mnt/<mountPath> (README, "Migrating from the
predecessor").
*/}}
{{- define "bo.externalSecretTemplate" -}}
{{- $p := .Values.policies -}}
{{- $out := dict -}}
{{- if eq $p.mover "restic" -}}
{{- $_ := set $out "RESTIC_REPOSITORY" (printf "s3:%s/NAMESPACE_PLACEHOLDER/PVC_PLACEHOLDER" (include "bo.resticBase" .)) -}}
{{- else -}}
{{- $nfs := include "bo.moverNFS" . | fromJson -}}
{{- if $nfs.server -}}
{{- $_ := set $out "KOPIA_REPOSITORY" (printf "filesystem:///mnt/%s" $nfs.mountPath) -}}
{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}
