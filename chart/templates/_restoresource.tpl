{{/*
A PVC annotated backup-oracle.io/restore-source: "<username>@<hostname>:<path>" names the Kopia
source it is restored from instead of the one the identity settings give (README, "Naming the
source on the PVC"). The policies pass it to the oracle (?source=, which checks it and answers
restore or unknown, never fresh), deny it when it is malformed or when VolSync's Kopia mover (the
perfectra1n fork) could not restore it, and generate the ReplicationDestination stating exactly
that source. The rules below are the oracle's (repo.ParseKopiaSource, repo.KopiaDestinationOf),
whose tests hold them to the fork's source (integration/harness/kopiamover, destination.go):
- syntax: a username and a hostname without '@', ':' or white space, an absolute path without
  white space;
- path /data, username and hostname within the CRD's pattern (bo.explicitNamePattern): the RD
  states username and hostname;
- otherwise the RD states sourceIdentity {sourceName, sourceNamespace: the hostname,
  sourcePathOverride: the path} and neither username nor hostname (the fork refuses one without
  the other, and restores /data when a hostname is stated); the fork derives the username from
  sourceName and the hostname from sourceNamespace, which must leave them as they are: a username
  of [A-Za-z0-9_-], at most 50 characters, starting and ending with a letter or digit (sourceName
  is the username), or exactly 50 ending in '-' or '_' (the mover's own cut of a longer name:
  sourceName is the username and "x", which the fork cuts away again); a hostname of
  [A-Za-z0-9.-] starting and ending with a letter or digit;
- any other source cannot be restored by the fork: denied with a sentence.
*/}}
{{- define "bo.restoreSourceAnnotation" -}}backup-oracle.io/restore-source{{- end -}}
{{- define "bo.restoreSourcePattern" -}}^[^@:[:space:]]+@[^@:[:space:]]+:/[^[:space:]]*${{- end -}}
{{- define "bo.explicitNamePattern" -}}^[a-zA-Z0-9]([a-zA-Z0-9._-]*[a-zA-Z0-9])?${{- end -}}
{{- define "bo.derivedUserPattern" -}}^[A-Za-z0-9]([A-Za-z0-9_-]*[A-Za-z0-9])?${{- end -}}
{{- define "bo.cutUserPattern" -}}^[A-Za-z0-9][A-Za-z0-9_-]*${{- end -}}
{{- define "bo.derivedHostPattern" -}}^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?${{- end -}}

{{/* The annotation's JMESPath path. */}}
{{- define "bo.restoreSourcePath" -}}request.object.metadata.annotations."{{ include "bo.restoreSourceAnnotation" . }}"{{- end -}}

{{/*
The ?source= part of the oracle's URL (JMESPath), empty without the annotation. '@', ':' and '/'
may stand in a query as they are; '%', '+' (a space otherwise), '&', '#' and ';' are encoded.
*/}}
{{- define "bo.restoreSourceQuery" -}}
{{- $a := include "bo.restoreSourcePath" . -}}
{{ "{{" }} ({{ $a }} != `null` && join('', ['&source=', replace_all(replace_all(replace_all(replace_all(replace_all({{ $a }}, '%', '%25'), '+', '%2B'), '&', '%26'), '#', '%23'), ';', '%3B')])) || '' }}
{{- end -}}

{{/*
Kyverno context entries reading the annotation (JMESPath): restoreSource ('' without one),
restoreUser, restoreHost, restorePath, restoreExplicit (the RD states username and hostname),
restoreDerived (it can state sourceIdentity) and restoreSourceName.
*/}}
{{- define "bo.restoreSourceContext" -}}
- name: restoreSource
  variable:
    jmesPath: {{ include "bo.restoreSourcePath" . }} || ''
{{- range $i, $name := list "restoreUser" "restoreHost" "restorePath" }}
- name: {{ $name }}
  variable:
    jmesPath: regex_replace_all('^([^@:]*)@([^:]*):(.*)$', restoreSource, '${{ add1 $i }}')
{{- end }}
- name: restoreExplicit
  variable:
    jmesPath: >-
      restorePath == '/data' && regex_match('{{ include "bo.explicitNamePattern" . }}', restoreUser) &&
      regex_match('{{ include "bo.explicitNamePattern" . }}', restoreHost)
- name: restoreDerived
  variable:
    jmesPath: >-
      regex_match('{{ include "bo.derivedHostPattern" . }}', restoreHost) &&
      ((length(restoreUser) <= `50` && regex_match('{{ include "bo.derivedUserPattern" . }}', restoreUser)) ||
      (length(restoreUser) == `50` && regex_match('{{ include "bo.cutUserPattern" . }}', restoreUser)))
- name: restoreSourceName
  variable:
    jmesPath: (regex_match('[-_]$', restoreUser) && join('', [restoreUser, 'x'])) || restoreUser
{{- end -}}

{{/*
The same as CEL variables (restoreNamed: the annotation is there, whatever it says;
restoreWellFormed: it has the syntax), and restoreQuery, the ?source= part of the oracle's URL.
*/}}
{{- define "bo.restoreSourceCEL" -}}
{{- $a := printf "'%s'" (include "bo.restoreSourceAnnotation" .) -}}
- name: restoreNamed
  expression: has(object.metadata.annotations) && {{ $a }} in object.metadata.annotations
- name: restoreSource
  expression: "variables.restoreNamed ? object.metadata.annotations[{{ $a }}] : ''"
- name: restoreWellFormed
  expression: variables.restoreSource.matches('{{ include "bo.restoreSourcePattern" . }}')
- name: restoreUser
  expression: "variables.restoreWellFormed ? variables.restoreSource.substring(0, variables.restoreSource.indexOf('@')) : ''"
- name: restoreRest
  expression: "variables.restoreWellFormed ? variables.restoreSource.substring(variables.restoreSource.indexOf('@') + 1) : ''"
- name: restoreHost
  expression: "variables.restoreWellFormed ? variables.restoreRest.substring(0, variables.restoreRest.indexOf(':')) : ''"
- name: restorePath
  expression: "variables.restoreWellFormed ? variables.restoreRest.substring(variables.restoreRest.indexOf(':') + 1) : ''"
- name: restoreExplicit
  expression: >-
    variables.restorePath == '/data' && variables.restoreUser.matches('{{ include "bo.explicitNamePattern" . }}') &&
    variables.restoreHost.matches('{{ include "bo.explicitNamePattern" . }}')
- name: restoreDerived
  expression: >-
    variables.restoreHost.matches('{{ include "bo.derivedHostPattern" . }}') &&
    ((size(variables.restoreUser) <= 50 && variables.restoreUser.matches('{{ include "bo.derivedUserPattern" . }}')) ||
    (size(variables.restoreUser) == 50 && variables.restoreUser.matches('{{ include "bo.cutUserPattern" . }}')))
- name: restoreSourceName
  expression: "variables.restoreUser.matches('[-_]$') ? variables.restoreUser + 'x' : variables.restoreUser"
- name: restoreQuery
  expression: >-
    variables.restoreNamed ? '&source=' + variables.restoreSource.replace('%', '%25').replace('+', '%2B').replace('&', '%26')
    .replace('#', '%23').replace(';', '%3B') : ''
{{- end -}}

{{/* The denials' messages (both sets). */}}
{{- define "bo.restoreSourceMalformedMessage" -}}
The annotation {{ include "bo.restoreSourceAnnotation" . }} names the Kopia source to restore this PVC from, as <username>@<hostname>:<path> (e.g. data-volsync@media:/data): a username and a hostname without '@', ':' or white space, and an absolute path without white space. Fix or remove it.
{{- end -}}
{{- define "bo.restoreSourceUnrestorableMessage" -}}
VolSync's Kopia mover cannot restore this source: its ReplicationDestination states a username and a hostname only for the path /data (both matching {{ include "bo.explicitNamePattern" . }}), and otherwise derives them from sourceIdentity's sourceName and sourceNamespace, which must leave them as they are (a username of letters, digits, '-' and '_', at most 50 characters, starting and ending with a letter or digit; a hostname of letters, digits, '-' and '.'). Restore it by hand, or remove the annotation.
{{- end -}}
