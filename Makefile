# backup-oracle: every command a developer or CI needs. Tool versions are pinned here, once.
# Tools are built from the Go module proxy into the git-ignored .tools/ folder on first use and
# reused afterwards (a tool's file name carries its version, so a version bump rebuilds it).

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO        ?= go
TOOLS     := $(CURDIR)/.tools
BIN       := $(CURDIR)/bin
# One version (README, "Releasing"): the release tag v<semver> of the commit built (git describe
# --exact-match), else chart/Chart.yaml's version (the version in preparation; the revision tells
# builds apart). make release-check refuses a tag the chart's version and appVersion differ from.
CHART_VERSION := $(shell sed -n 's/^version: *//p' chart/Chart.yaml)
VERSION   ?= $(or $(shell git describe --tags --exact-match --match 'v[0-9]*' 2>/dev/null | sed 's/^v//'),$(CHART_VERSION))
REVISION  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -s -w -X main.version=$(VERSION) -X main.revision=$(REVISION)

# --- pinned tools ---------------------------------------------------------------------------
KOPIA_VERSION         := v0.22.3
RESTIC_VERSION        := v0.19.1
VERSITYGW_VERSION     := v1.8.0
# Kyverno: the policies are proven on each of these versions (make test-policies, make e2e); the
# last one is the newest, whose CLI make test-chart uses.
KYVERNO_VERSIONS      := v1.17.2 v1.18.2 v1.19.1
KYVERNO_VERSION       := $(lastword $(KYVERNO_VERSIONS))
# Helm 4 lints, renders, installs and pushes the chart (Helm 3 is not tested: README, "Install").
HELM_VERSION          := v4.3.2
GOLANGCI_LINT_VERSION := v2.15.0
GREMLINS_VERSION      := v0.6.0
# make image: go-containerregistry's crane assembles the image without a Docker daemon; the CA
# certificates are those of Debian's ca-certificates package (bookworm's, pinned).
CRANE_VERSION           := v0.22.1
# make release and its test: CNCF distribution's registry (served on 127.0.0.1 by the tests),
# cosign (signatures and the SBOM attestation), cyclonedx-gomod (the SBOM, with the licenses it
# detects: make licenses checks them).
DISTRIBUTION_VERSION    := v3.1.2
COSIGN_VERSION          := v3.1.3
CYCLONEDX_GOMOD_VERSION := v1.10.0
CA_CERTIFICATES_VERSION := 20230311+deb12u1
# The console's browser test: Debian's chromium (bookworm). Debian keeps only the current
# version in its archive, so the pinned one is tried first and the archive's taken otherwise.
CHROMIUM_VERSION        := 150.0.7871.100-1~deb12u1
# make e2e: the wrapper module integration/e2e/tools pins Kubernetes, and through it etcd.
KUBERNETES_VERSION    := v1.35.0
# make e2e: upstream VolSync's controller and restic mover script (and make crds' upstream CRDs).
VOLSYNC_UPSTREAM_VERSION := v0.16.0
ETCD_VERSION          := v3.6.5
# make e2e: Prometheus' promtool evaluates the chart's alert expressions on the oracle's /metrics
# (Prometheus 3.16.0, whose Go module version is v0.316.0).
PROMETHEUS_VERSION    := v0.316.0

KOPIA         := $(TOOLS)/kopia-$(KOPIA_VERSION)
RESTIC        := $(TOOLS)/restic-$(RESTIC_VERSION)
VERSITYGW     := $(TOOLS)/versitygw-$(VERSITYGW_VERSION)
# One folder per Kyverno version: kubectl-kyverno (the CLI), kyverno (the admission controller),
# background-controller, cleanup-controller and crds/.
kyverno-bin    = $(TOOLS)/kyverno-bin-$(1)
KYVERNO_BINS  := $(foreach v,$(KYVERNO_VERSIONS),$(call kyverno-bin,$(v)))
KYVERNO_BINS_ENV := KYVERNO_BINS="$(foreach v,$(KYVERNO_VERSIONS),$(v)=$(call kyverno-bin,$(v)))"
KYVERNO       := $(call kyverno-bin,$(KYVERNO_VERSION))/kubectl-kyverno
HELM          := $(TOOLS)/helm-$(HELM_VERSION)
GOLANGCI_LINT := $(TOOLS)/golangci-lint-$(GOLANGCI_LINT_VERSION)
GREMLINS      := $(TOOLS)/gremlins-$(GREMLINS_VERSION)
CRANE         := $(TOOLS)/crane-$(CRANE_VERSION)
REGISTRY_BIN  := $(TOOLS)/registry-$(DISTRIBUTION_VERSION)
COSIGN        := $(TOOLS)/cosign-$(COSIGN_VERSION)
CYCLONEDX_GOMOD := $(TOOLS)/cyclonedx-gomod-$(CYCLONEDX_GOMOD_VERSION)
CA_BUNDLE     := $(TOOLS)/ca-certificates-$(subst +,_,$(CA_CERTIFICATES_VERSION)).crt
ETCD               := $(TOOLS)/etcd-$(ETCD_VERSION)
KUBE_APISERVER     := $(TOOLS)/kube-apiserver-$(KUBERNETES_VERSION)
KUBECTL            := $(TOOLS)/kubectl-$(KUBERNETES_VERSION)
PROMTOOL           := $(TOOLS)/promtool-$(PROMETHEUS_VERSION)
# Upstream VolSync: manager (the controller), mover-restic/ and crds/ in one folder.
VOLSYNC            := $(TOOLS)/volsync-$(VOLSYNC_UPSTREAM_VERSION)

# Tools the test suite drives, passed to the tests as <NAME>_BIN.
TEST_TOOLS := $(KOPIA)
TEST_ENV   := KOPIA_BIN=$(KOPIA)
TEST_TOOLS += $(RESTIC) $(VERSITYGW)
TEST_ENV   += RESTIC_BIN=$(RESTIC) VERSITYGW_BIN=$(VERSITYGW)
# Upstream VolSync's restic mover script (integration: the oracle and the real mover agree).
TEST_TOOLS += $(VOLSYNC)
TEST_ENV   += VOLSYNC_BIN=$(VOLSYNC)/manager

# build-module MODULE VERSION PACKAGE OUTPUT: for modules the proxy will not 'go install'
# (kopia, restic, kyverno): download the module, build inside a writable copy of it.
define build-module
	@echo "building $(1)@$(2) (first run only)"
	@mkdir -p $(TOOLS)/src
	@dir=$$(cd /tmp && GOFLAGS=-mod=mod $(GO) mod download -json $(1)@$(2) | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p'); \
	  test -n "$$dir"; \
	  src=$(TOOLS)/src/$(notdir $(4)); rm -rf "$$src"; cp -r "$$dir" "$$src"; chmod -R u+w "$$src"; \
	  cd "$$src" && CGO_ENABLED=0 GOFLAGS=-mod=mod $(GO) build -trimpath -ldflags "-s -w $(5)" -o $(4).tmp ./$(3); \
	  mv $(4).tmp $(4); rm -rf "$$src"
endef

# install-module MODULE VERSION OUTPUT: for modules 'go install' accepts.
define install-module
	@echo "installing $(1)@$(2) (first run only)"
	@mkdir -p $(TOOLS)/gobin-$(notdir $(3))
	@CGO_ENABLED=0 GOBIN=$(TOOLS)/gobin-$(notdir $(3)) $(GO) install -trimpath -ldflags "-s -w" $(1)@$(2)
	@mv $(TOOLS)/gobin-$(notdir $(3))/* $(3) && rmdir $(TOOLS)/gobin-$(notdir $(3))
endef

$(KOPIA):
	$(call build-module,github.com/kopia/kopia,$(KOPIA_VERSION),.,$@)

$(RESTIC):
	$(call build-module,github.com/restic/restic,$(RESTIC_VERSION),cmd/restic,$@)

$(VERSITYGW):
	$(call install-module,github.com/versity/versitygw/cmd/versitygw,$(VERSITYGW_VERSION),$@)

$(GOLANGCI_LINT):
	$(call install-module,github.com/golangci/golangci-lint/v2/cmd/golangci-lint,$(GOLANGCI_LINT_VERSION),$@)

$(GREMLINS):
	$(call install-module,github.com/go-gremlins/gremlins/cmd/gremlins,$(GREMLINS_VERSION),$@)

$(PROMTOOL):
	$(call install-module,github.com/prometheus/prometheus/cmd/promtool,$(PROMETHEUS_VERSION),$@)

$(CRANE):
	$(call install-module,github.com/google/go-containerregistry/cmd/crane,$(CRANE_VERSION),$@)

# Debian's ca-certificates package, pinned, its certificates concatenated as update-ca-certificates
# does (apt-get download needs the package lists: apt-get update when they lack it).
$(CA_BUNDLE):
	@echo "fetching ca-certificates $(CA_CERTIFICATES_VERSION) (first run only)"
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; cd "$$tmp"; \
	  apt-get download ca-certificates=$(CA_CERTIFICATES_VERSION) >/dev/null 2>&1 || { apt-get update -qq && apt-get download ca-certificates=$(CA_CERTIFICATES_VERSION); }; \
	  dpkg-deb -x ca-certificates_*.deb root; \
	  n=$$(ls root/usr/share/ca-certificates/mozilla/*.crt | wc -l); test "$$n" -gt 100; \
	  LC_ALL=C cat $$(LC_ALL=C ls root/usr/share/ca-certificates/mozilla/*.crt) > $@.tmp && mv $@.tmp $@

# Debian's chromium for the console's browser test (root: apt-get).
.PHONY: chromium
chromium: ## install Debian's chromium (the console test's browser) unless present
	@command -v chromium >/dev/null || { \
	  [ "$$(id -u)" = 0 ] || [ -n "$${CI:-}" ] || { echo "chromium is missing and only root can install it: the console's browser test will skip"; exit 0; }; \
	  export DEBIAN_FRONTEND=noninteractive; apt-get update -qq; \
	  apt-get install -y -qq --no-install-recommends chromium=$(CHROMIUM_VERSION) \
	    || { echo "chromium $(CHROMIUM_VERSION) is no longer in Debian's archive; installing the archive's"; apt-get install -y -qq --no-install-recommends chromium; }; }
	@command -v chromium >/dev/null && chromium --version || true

$(HELM):
	$(call install-module,helm.sh/helm/v4/cmd/helm,$(HELM_VERSION),$@)

$(REGISTRY_BIN):
	$(call install-module,github.com/distribution/distribution/v3/cmd/registry,$(DISTRIBUTION_VERSION),$@)

$(COSIGN):
	$(call install-module,github.com/sigstore/cosign/v3/cmd/cosign,$(COSIGN_VERSION),$@)

$(CYCLONEDX_GOMOD):
	$(call install-module,github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod,$(CYCLONEDX_GOMOD_VERSION),$@)

# Kyverno VERSION: its CLI and its controllers (as its images run them) from ONE copy of the
# module in ONE go build (the packages they share are compiled once), and its CRDs (plain YAML in
# the module). `go install` refuses the module (replace directives).
$(TOOLS)/kyverno-bin-%:
	@echo "building Kyverno $* (CLI, admission, background and cleanup controllers; first run only)"
	@mkdir -p $(TOOLS)/src
	@dir=$$(cd /tmp && GOFLAGS=-mod=mod $(GO) mod download -json github.com/kyverno/kyverno@$* | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p'); \
	  test -n "$$dir"; \
	  src=$(TOOLS)/src/kyverno-$*; rm -rf "$$src" $@.tmp; cp -r "$$dir" "$$src"; chmod -R u+w "$$src"; mkdir -p $@.tmp; \
	  (cd "$$src" && CGO_ENABLED=0 GOFLAGS=-mod=mod $(GO) build -trimpath \
	    -ldflags "-s -w -X github.com/kyverno/kyverno/pkg/version.BuildVersion=$*" -o $@.tmp/ \
	    ./cmd/cli/kubectl-kyverno ./cmd/kyverno ./cmd/background-controller ./cmd/cleanup-controller); \
	  cp -r "$$src/config/crds" $@.tmp/crds; mv $@.tmp $@; rm -rf "$$src"

# build-e2e-tool PACKAGE OUTPUT: build PACKAGE of the wrapper module integration/e2e/tools (its
# go.mod and go.sum pin Kubernetes and etcd) inside a copy of it under .tools/src.
KUBE_LDFLAGS := -X k8s.io/component-base/version.gitVersion=$(KUBERNETES_VERSION) \
  -X k8s.io/component-base/version.gitMajor=$(word 1,$(subst ., ,$(KUBERNETES_VERSION:v%=%))) \
  -X k8s.io/component-base/version.gitMinor=$(word 2,$(subst ., ,$(KUBERNETES_VERSION:v%=%))) \
  -X k8s.io/component-base/version.gitTreeState=clean
define build-e2e-tool
	@echo "building $(notdir $(2)) (first run only)"
	@mkdir -p $(TOOLS)/src
	@src=$(TOOLS)/src/$(notdir $(2)); rm -rf "$$src"; cp -r integration/e2e/tools "$$src"; \
	  cd "$$src"; \
	  for want in k8s.io/kubernetes@$(KUBERNETES_VERSION) go.etcd.io/etcd/server/v3@$(ETCD_VERSION); do \
	    got=$$($(GO) list -m -f '{{.Path}}@{{.Version}}' "$${want%@*}"); \
	    test "$$got" = "$$want" || { echo "integration/e2e/tools/go.mod has $$got, the Makefile pins $$want"; exit 1; }; \
	  done; \
	  CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w $(KUBE_LDFLAGS)" -o $(2).tmp $(1); \
	  mv $(2).tmp $(2); rm -rf "$$src"
endef

# Upstream VolSync (make e2e's restic scenarios): its controller (`go build ./cmd/`, run out of
# cluster), the restic mover script from the same module copy (the module zip drops the exec bit:
# restored here) and its CRDs (config/crd/bases and the VolumeSnapshot CRDs of hack/crds), in one
# folder: manager, mover-restic/, crds/.
$(VOLSYNC):
	@echo "building VolSync $(VOLSYNC_UPSTREAM_VERSION) (controller, restic mover script, CRDs; first run only)"
	@mkdir -p $(TOOLS)/src
	@dir=$$(cd /tmp && GOFLAGS=-mod=mod $(GO) mod download -json github.com/backube/volsync@$(VOLSYNC_UPSTREAM_VERSION) | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p'); \
	  test -n "$$dir"; \
	  src=$(TOOLS)/src/volsync-$(VOLSYNC_UPSTREAM_VERSION); rm -rf "$$src" $@.tmp; cp -r "$$dir" "$$src"; chmod -R u+w "$$src"; mkdir -p $@.tmp/crds; \
	  (cd "$$src" && CGO_ENABLED=0 GOFLAGS=-mod=mod $(GO) build -trimpath -ldflags "-s -w" -o $@.tmp/manager ./cmd/); \
	  cp -r "$$src/mover-restic" $@.tmp/mover-restic; chmod 0755 $@.tmp/mover-restic/entry.sh; \
	  cp "$$src"/config/crd/bases/*.yaml "$$src"/hack/crds/*.yaml $@.tmp/crds/; \
	  mv $@.tmp $@; rm -rf "$$src"

$(ETCD):
	$(call build-e2e-tool,./etcd,$@)

$(KUBE_APISERVER):
	$(call build-e2e-tool,k8s.io/kubernetes/cmd/kube-apiserver,$@)

$(KUBECTL):
	$(call build-e2e-tool,k8s.io/kubernetes/cmd/kubectl,$@)

# The previous release, which the upgrade tests start from (make test-chart, make e2e): its tag
# once one exists; before the first release, the first commit of main the release builds on.
PREVIOUS_RELEASE := 464e436

# make e2e also releases into a registry it starts (TestRelease runs make release): the
# release's tools are its prerequisites.
E2E_TOOLS := $(ETCD) $(KUBE_APISERVER) $(KUBECTL) $(KYVERNO_BINS) $(KOPIA) $(HELM) \
  $(REGISTRY_BIN) $(COSIGN) $(CRANE) $(CA_BUNDLE) $(CYCLONEDX_GOMOD) $(PROMTOOL) $(VOLSYNC) $(RESTIC) $(VERSITYGW)
E2E_ENV   := ETCD_BIN=$(ETCD) KUBE_APISERVER_BIN=$(KUBE_APISERVER) KUBECTL_BIN=$(KUBECTL) KOPIA_BIN=$(KOPIA) HELM_BIN=$(HELM) \
  REGISTRY_BIN=$(REGISTRY_BIN) COSIGN_BIN=$(COSIGN) CRANE_BIN=$(CRANE) PREVIOUS_RELEASE=$(PREVIOUS_RELEASE) PROMTOOL_BIN=$(PROMTOOL) \
  $(KYVERNO_BINS_ENV) VOLSYNC_BIN=$(VOLSYNC)/manager RESTIC_BIN=$(RESTIC) VERSITYGW_BIN=$(VERSITYGW)

.PHONY: tools
tools: $(TEST_TOOLS) $(CRANE) $(CA_BUNDLE) $(GOLANGCI_LINT) $(KYVERNO_BINS) $(HELM) $(E2E_TOOLS) $(GREMLINS) $(CYCLONEDX_GOMOD) ## build every pinned tool into .tools/

# --- the two README commands ----------------------------------------------------------------
.PHONY: run
run: ## run the service on a demo Kopia repository it creates itself
	$(GO) run ./cmd/backup-oracle --demo

.PHONY: test
test: lint test-go fuzz-short test-policies test-chart e2e ## everything CI runs: lint, vet, tidy check, unit and integration tests, fuzzing, policies, chart, end to end

# --- pieces ---------------------------------------------------------------------------------
.PHONY: build
build: ## build bin/backup-oracle
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/backup-oracle ./cmd/backup-oracle

.PHONY: lint
lint: $(GOLANGCI_LINT) ## golangci-lint, go vet and a go.mod tidiness check
	$(GO) mod tidy -diff
	$(GO) vet ./...
	$(GOLANGCI_LINT) run ./...

.PHONY: test-go
test-go: $(TEST_TOOLS) image sbom chromium ## unit and integration tests with the race detector (the image unpacked and run, the SBOMs' licenses, the console in Chromium)
	$(TEST_ENV) IMAGE_TAR=$(IMAGE_TAR) IMAGE_OCI=$(IMAGE_OCI) IMAGE_VERSION=$(VERSION) SBOM_DIR=$(SBOM_DIR) CHROMIUM_BIN=$$(command -v chromium || true) CONSOLE_SCREENSHOT_DIR=$(BIN)/console \
	  $(GO) test -race -count=1 -timeout 20m ./...

.PHONY: test-policies
test-policies: $(KYVERNO_BINS) $(GOLANGCI_LINT) ## kyverno test suites of policies/ (ClusterPolicy and CEL sets, mocked oracle) with the CLI of every KYVERNO_VERSIONS
	$(GO) vet -tags kyvernocli ./policies/
	$(GOLANGCI_LINT) run --build-tags kyvernocli ./policies/
	$(KYVERNO_BINS_ENV) $(GO) test -tags kyvernocli -count=1 -v ./policies/

.PHONY: test-chart
test-chart: $(HELM) $(call kyverno-bin,$(KYVERNO_VERSION)) build ## helm lint, goldens, schema rejections, policies/ = render, RS/RD vs CRDs, kyverno apply vs a live oracle
	for values in chart/testdata/values/*.yaml; do $(HELM) lint --strict chart --values "$$values"; done
	cd chart/test && $(GO) mod tidy -diff && $(GO) vet ./...
	cd chart/test && HELM_BIN=$(HELM) KYVERNO_BIN=$(KYVERNO) BACKUP_ORACLE_BIN=$(BIN)/backup-oracle PREVIOUS_RELEASE=$(PREVIOUS_RELEASE) \
	  $(GO) test -count=1 ./...

# make e2e vets and lints the e2e package with the tag kopiafork too (e2e-kopia-fork's test is
# compiled and linted in CI, never run there).
.PHONY: e2e
e2e: $(E2E_TOOLS) $(GOLANGCI_LINT) ## restore-as-code end to end: etcd, kube-apiserver, Kyverno, the oracle, the shipped policies
	$(GO) vet -tags e2e,kopiafork ./integration/e2e/
	$(GOLANGCI_LINT) run --build-tags e2e,kopiafork ./integration/e2e/
	$(E2E_ENV) $(GO) test -tags e2e -count=1 -v -timeout 15m ./integration/e2e/

# The Kopia scenarios on the Kopia fork of VolSync itself (perfectra1n/volsync): its controller
# and its mover-kopia/entry.sh in the e2e stack (newest Kyverno). Not part of make test: the Go
# module proxy does not serve the fork (its module path is upstream's), so CI has no way to
# obtain it. Given a checkout of the fork's source (VOLSYNC_FORK_SRC: its mover-kopia/, CRDs and
# Dockerfile are read from it) and the controller built from that checkout
# (VOLSYNC_FORK_MANAGER); nothing of the fork is built, copied or kept in this repository.
# README, "Real movers: the Kopia fork".
VOLSYNC_FORK_SRC     ?=
VOLSYNC_FORK_MANAGER ?=

.PHONY: e2e-kopia-fork
e2e-kopia-fork: $(ETCD) $(KUBE_APISERVER) $(KUBECTL) $(call kyverno-bin,$(KYVERNO_VERSION)) $(KOPIA) $(HELM) $(VERSITYGW) ## the Kopia scenarios on the Kopia fork (VOLSYNC_FORK_SRC=<checkout> VOLSYNC_FORK_MANAGER=<its controller>; not in make test)
	@test -n "$(VOLSYNC_FORK_SRC)" -a -n "$(VOLSYNC_FORK_MANAGER)" \
	  || { echo "usage: make e2e-kopia-fork VOLSYNC_FORK_SRC=<checkout of perfectra1n/volsync> VOLSYNC_FORK_MANAGER=<the controller built from it>"; exit 2; }
	ETCD_BIN=$(ETCD) KUBE_APISERVER_BIN=$(KUBE_APISERVER) KUBECTL_BIN=$(KUBECTL) KOPIA_BIN=$(KOPIA) HELM_BIN=$(HELM) VERSITYGW_BIN=$(VERSITYGW) \
	  KYVERNO_BINS="$(KYVERNO_VERSION)=$(call kyverno-bin,$(KYVERNO_VERSION))" \
	  VOLSYNC_FORK_SRC=$(abspath $(VOLSYNC_FORK_SRC)) VOLSYNC_FORK_MANAGER=$(abspath $(VOLSYNC_FORK_MANAGER)) \
	  $(GO) test -tags e2e,kopiafork -run '^TestKopiaFork$$' -count=1 -v -timeout 30m ./integration/e2e/

# Fuzz targets, as <package>:<target>. `make test` runs each for FUZZTIME_SHORT, `make fuzz` for
# FUZZTIME and then copies the inputs that widened coverage into <package>/testdata/fuzz/<target>/
# (the committed corpus, which every plain `go test` replays): review them and commit.
FUZZ_TARGETS   := ./repo:FuzzDNS1123 ./repo:FuzzKopiaIdentity ./repo:FuzzKopiaNames \
  ./repo:FuzzKopiaPVCOfRoundTrip ./server:FuzzExistsPath ./repo/restic:FuzzDecodeSnapshot \
  ./repo/kopia:FuzzParseRFC3339 ./repo/kopia:FuzzParseManifestContent ./repo:FuzzKopiaDestinationOf
FUZZTIME       ?= 2m
FUZZTIME_SHORT ?= 100000x

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME (default 2m) and add what it found to the committed corpus
	@stamp=$$(mktemp); trap 'rm -f "$$stamp"' EXIT; cache=$$($(GO) env GOCACHE)/fuzz; \
	for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; target=$${t##*:}; \
	  echo "fuzz $$pkg $$target for $(FUZZTIME)"; \
	  $(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) "$$pkg"; \
	  found=$$cache/$$($(GO) list "$$pkg")/$$target; dst=$$pkg/testdata/fuzz/$$target; \
	  if [ -d "$$found" ]; then mkdir -p "$$dst"; find "$$found" -type f -newer "$$stamp" -exec cp {} "$$dst"/ \; ; fi; \
	done; git status --short -- '*/testdata/fuzz'

.PHONY: fuzz-short
fuzz-short: ## run every fuzz target for FUZZTIME_SHORT (default 100000 inputs each, a count: a time-bounded run can fail with Go's "context deadline exceeded"; part of make test)
	@for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; target=$${t##*:}; \
	  echo "fuzz $$pkg $$target for $(FUZZTIME_SHORT)"; \
	  $(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME_SHORT) "$$pkg"; \
	done

# The VolSync CRDs the chart tests and make e2e validate against, vendored (see its README).
VOLSYNC_CRDS_DIR         := chart/test/testdata/crds

.PHONY: crds
crds: ## check the vendored VolSync CRDs against their digests and the upstream module on the Go proxy
	cd $(VOLSYNC_CRDS_DIR) && sha256sum --check --quiet SHA256SUMS
	@dir=$$(cd /tmp && GOFLAGS=-mod=mod $(GO) mod download -json github.com/backube/volsync@$(VOLSYNC_UPSTREAM_VERSION) | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p'); \
	  test -n "$$dir"; \
	  for f in $(VOLSYNC_CRDS_DIR)/volsync-upstream-$(VOLSYNC_UPSTREAM_VERSION)/*.yaml; do \
	    cmp "$$dir/config/crd/bases/$$(basename $$f)" "$$f"; \
	  done; \
	  echo "VolSync CRDs: digests match, upstream $(VOLSYNC_UPSTREAM_VERSION) identical to the module proxy's"

# Mutation testing: gremlins mutates each covered statement of repo/... and cache/ in turn and runs
# that package's tests (real kopia and restic CLIs, real S3). Slow: see the README for the last
# score and how long it took. Machine-readable results go to bin/mutate/.
MUTATE_PATHS   ?= ./repo ./cache
MUTATE_WORKERS ?= 1

.PHONY: mutate
mutate: $(GREMLINS) $(TEST_TOOLS) ## mutation testing of repo/... and cache/ with gremlins: score, surviving mutants (hours; not in make test)
	@mkdir -p $(BIN)/mutate
	for p in $(MUTATE_PATHS); do \
	  CI=true $(TEST_ENV) $(GREMLINS) unleash --workers $(MUTATE_WORKERS) --output-statuses ltc \
	    --output $(BIN)/mutate/$$(basename $$p).json $$p; \
	done
	@# gremlins never mutates the conditions of switch case clauses (see integration/casemutants).
	CI=true $(TEST_ENV) $(GO) run ./integration/casemutants

.PHONY: update-golden
update-golden: $(HELM) ## rewrite chart/testdata/golden and policies/ from the chart, and the Kyverno support tables (review the diff)
	cd chart/test && HELM_BIN=$(HELM) $(GO) test -count=1 -run 'TestGolden|TestPoliciesMatchRender' ./... -update
	$(GO) test -tags e2e -count=1 -run '^TestSupportTable$$' ./integration/e2e/ -update

.PHONY: bench
bench: $(TEST_TOOLS) ## benchmarks (micro, then the real service and restic on S3); figures go to the README
	$(GO) test -run '^$$' -bench . -benchmem ./cache ./repo ./server
	$(TEST_ENV) $(GO) test -run '^$$' -bench . -benchmem -benchtime 1x -timeout 30m ./integration/ ./repo/restic/

# The image: an OCI image index for IMAGE_PLATFORMS, each image the static binary of its
# architecture, CA certificates, /etc/passwd and /etc/group naming UID/GID 568, /tmp and /state
# (owned by 568, STATE_DIR) in two layers on an empty base; no shell. Entrypoint, user,
# environment, port and labels are set by crane mutate through a registry crane serves on
# 127.0.0.1 for the duration (crane mutate reads images from a registry). Results: IMAGE_OCI, an
# OCI image layout holding the index (what make release pushes; podman load / skopeo read it),
# and IMAGE_TAR, the amd64 image as a tarball `docker load` accepts. TestImageMatchesDockerfile
# holds the Dockerfile to the same settings.
IMAGE_REPOSITORY ?= ghcr.io/backup-oracle/backup-oracle
IMAGE_TAG        ?= $(VERSION)
IMAGE_PLATFORMS  := linux/amd64 linux/arm64
IMAGE_LICENSE    := Apache-2.0
IMAGE_TAR        := $(BIN)/backup-oracle-image.tar
IMAGE_OCI        := $(BIN)/backup-oracle-oci
IMAGE_DIR        := $(BIN)/image

.PHONY: image
image: $(CRANE) $(CA_BUNDLE) ## OCI image index (linux/amd64, linux/arm64) without a Docker daemon: bin/backup-oracle-oci (OCI layout), bin/backup-oracle-image.tar (amd64, docker load)
	rm -rf $(IMAGE_DIR) $(IMAGE_OCI) && mkdir -p $(IMAGE_DIR)/root/etc/ssl/certs $(IMAGE_DIR)/root/tmp $(IMAGE_DIR)/state/state
	cp $(CA_BUNDLE) $(IMAGE_DIR)/root/etc/ssl/certs/ca-certificates.crt
	printf 'root:x:0:0:root:/root:/sbin/nologin\nbackup-oracle:x:568:568:backup-oracle:/state:/sbin/nologin\n' > $(IMAGE_DIR)/root/etc/passwd
	printf 'root:x:0:\nbackup-oracle:x:568:\n' > $(IMAGE_DIR)/root/etc/group
	chmod 0644 $(IMAGE_DIR)/root/etc/passwd $(IMAGE_DIR)/root/etc/group $(IMAGE_DIR)/root/etc/ssl/certs/ca-certificates.crt
	chmod 1777 $(IMAGE_DIR)/root/tmp && chmod 0700 $(IMAGE_DIR)/state/state
	tar --sort=name --numeric-owner --owner=568 --group=568 --mtime=@0 -C $(IMAGE_DIR)/state -cf $(IMAGE_DIR)/state.tar ./state
	for platform in $(IMAGE_PLATFORMS); do arch=$${platform#*/}; \
	  GOOS=$${platform%/*} GOARCH=$$arch CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(IMAGE_DIR)/root/backup-oracle ./cmd/backup-oracle; \
	  chmod 0755 $(IMAGE_DIR)/root/backup-oracle; \
	  tar --sort=name --numeric-owner --owner=0 --group=0 --mtime=@0 -C $(IMAGE_DIR)/root -cf $(IMAGE_DIR)/root-$$arch.tar .; \
	  cp $(IMAGE_DIR)/root/backup-oracle $(IMAGE_DIR)/backup-oracle-linux-$$arch; \
	done
	@log=$(IMAGE_DIR)/registry.log; $(CRANE) registry serve --address 127.0.0.1:0 2>$$log & pid=$$!; trap 'kill $$pid' EXIT; \
	  for i in $$(seq 100); do port=$$(sed -n 's/.*serving on port \([0-9]*\).*/\1/p' $$log); test -n "$$port" && break; sleep 0.1; done; \
	  test -n "$$port" || { cat $$log; exit 1; }; reg=127.0.0.1:$$port/backup-oracle; manifests=(); \
	  for platform in $(IMAGE_PLATFORMS); do arch=$${platform#*/}; \
	    $(CRANE) append --oci-empty-base -f $(IMAGE_DIR)/root-$$arch.tar -f $(IMAGE_DIR)/state.tar -t $$reg:layers-$$arch; \
	    mutate=($(CRANE) mutate $$reg:layers-$$arch --set-platform $$platform --entrypoint /backup-oracle --user 568:568 \
	      --env STATE_DIR=/state --exposed-ports 8080/tcp --workdir / \
	      -l org.opencontainers.image.title=backup-oracle -l org.opencontainers.image.version=$(VERSION) \
	      -l org.opencontainers.image.revision=$(REVISION) -l org.opencontainers.image.source=https://github.com/backup-oracle/backup-oracle \
	      -l org.opencontainers.image.licenses=$(IMAGE_LICENSE)); \
	    "$${mutate[@]}" -t $$reg:$$arch >/dev/null; manifests+=(-m $$reg:$$arch); \
	    if [ "$$arch" = amd64 ]; then "$${mutate[@]}" -t $(IMAGE_REPOSITORY):$(IMAGE_TAG) -o $(IMAGE_TAR); fi; \
	  done; \
	  $(CRANE) index append "$${manifests[@]}" -t $$reg:index >/dev/null; \
	  $(CRANE) pull --format oci $$reg:index $(IMAGE_OCI)
	@echo "$(IMAGE_OCI): $(IMAGE_REPOSITORY):$(IMAGE_TAG) for $(IMAGE_PLATFORMS) (OCI layout; make release pushes it)"
	@echo "$(IMAGE_TAR): the linux/amd64 image (docker load -i $(IMAGE_TAR), or podman load -i $(IMAGE_TAR))"

# SBOMs: one CycloneDX document per platform of the image, read by cyclonedx-gomod from the
# build information of the very binary the image holds (module versions, GOOS/GOARCH, its
# digests), with the licenses it detects in each module's source (the module cache); make
# test-go checks them (integration/licenses_test.go, README "License").
SBOM_DIR := $(BIN)/sbom

.PHONY: sbom
sbom: image $(CYCLONEDX_GOMOD) ## CycloneDX SBOMs of the image's binaries with detected licenses: bin/sbom/backup-oracle-linux-<arch>.cdx.json
	rm -rf $(SBOM_DIR) && mkdir -p $(SBOM_DIR)
	for platform in $(IMAGE_PLATFORMS); do name=backup-oracle-$${platform/\//-}; \
	  $(CYCLONEDX_GOMOD) bin -json -licenses -version v$(VERSION) -output $(SBOM_DIR)/$$name.cdx.json $(IMAGE_DIR)/$$name 2>&1 \
	    | { grep -v 'github.com/backup-oracle/backup-oracle@v$(VERSION)' || true; }; \
	  test -s $(SBOM_DIR)/$$name.cdx.json; \
	done

# make release (README, "Releasing"): the chart, the image index, its SBOMs and the signatures, to
# the OCI registry REGISTRY: image $(REGISTRY)/backup-oracle:<version>, chart
# oci://$(REGISTRY)/charts/backup-oracle <version>. The packaged chart's default image.repository
# is $(REGISTRY)/backup-oracle, so a chart pulled from a registry installs that registry's image.
# Signing is keyless (Sigstore's OIDC flow) unless COSIGN_KEY names a key (COSIGN_PASSWORD in the
# environment). The tests push to a registry on 127.0.0.1 with a key and no transparency log:
# COSIGN_SIGN_FLAGS="--tlog-upload=false --use-signing-config=false" HELM_REGISTRY_FLAGS=--plain-http.
REGISTRY            ?= ghcr.io/backup-oracle
RELEASE_IMAGE       := $(REGISTRY)/backup-oracle
RELEASE_CHARTS      := $(REGISTRY)/charts
COSIGN_KEY          ?=
COSIGN_SIGN_FLAGS   ?=
HELM_REGISTRY_FLAGS ?=
CHART_PACKAGE       := $(BIN)/chart/backup-oracle-$(VERSION).tgz
cosign-sign          = $(COSIGN) $(1) --yes $(if $(COSIGN_KEY),--key $(COSIGN_KEY)) $(COSIGN_SIGN_FLAGS)

.PHONY: print-version
print-version: ## the version a build gets (its commit's tag v<version>, else chart/Chart.yaml's)
	@echo $(VERSION)

.PHONY: release-check
release-check: ## refuse a release whose versions disagree: VERSION (from the tag), Chart.yaml version and appVersion, IMAGE_TAG
	@app=$$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$$/\1/p' chart/Chart.yaml); \
	  echo "$(VERSION)" | grep -Eq '^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$$' \
	    || { echo "release: VERSION $(VERSION) is not a semantic version X.Y.Z[-pre]"; exit 1; }; \
	  test "$(VERSION)" = "$(CHART_VERSION)" \
	    || { echo "release: VERSION $(VERSION) (the git tag) is not chart/Chart.yaml's version $(CHART_VERSION): set the chart's version and appVersion to the tag's, or tag v$(CHART_VERSION)"; exit 1; }; \
	  test "$$app" = "$(CHART_VERSION)" \
	    || { echo "release: chart/Chart.yaml's appVersion $$app is not its version $(CHART_VERSION): they are one version"; exit 1; }; \
	  test "$(IMAGE_TAG)" = "$(VERSION)" \
	    || { echo "release: IMAGE_TAG $(IMAGE_TAG) is not VERSION $(VERSION): the chart's default image tag is its appVersion"; exit 1; }

.PHONY: chart-package
chart-package: $(HELM) ## bin/chart/backup-oracle-<version>.tgz, its default image.repository $(REGISTRY)/backup-oracle
	rm -rf $(BIN)/chart && mkdir -p $(BIN)/chart/src && cp -r chart $(BIN)/chart/src/backup-oracle
	sed -i 's|^  repository: $(IMAGE_REPOSITORY)$$|  repository: $(RELEASE_IMAGE)|' $(BIN)/chart/src/backup-oracle/values.yaml
	grep -qx '  repository: $(RELEASE_IMAGE)' $(BIN)/chart/src/backup-oracle/values.yaml
	$(HELM) package $(BIN)/chart/src/backup-oracle -d $(BIN)/chart
	test -f $(CHART_PACKAGE)

.PHONY: release
release: release-check sbom chart-package $(CRANE) $(COSIGN) $(HELM) ## push and sign the image index, its SBOMs and the chart to REGISTRY (README, "Releasing")
	$(CRANE) push $(IMAGE_OCI) $(RELEASE_IMAGE):$(VERSION)
	digest=$$($(CRANE) digest $(RELEASE_IMAGE):$(VERSION)); \
	  $(call cosign-sign,sign) --recursive $(RELEASE_IMAGE)@$$digest; \
	  for platform in $(IMAGE_PLATFORMS); do arch=$${platform#*/}; \
	    pdigest=$$($(CRANE) digest --platform $$platform $(RELEASE_IMAGE)@$$digest); \
	    $(call cosign-sign,attest) --type cyclonedx --predicate $(SBOM_DIR)/backup-oracle-linux-$$arch.cdx.json $(RELEASE_IMAGE)@$$pdigest; \
	  done
	out=$$($(HELM) push $(CHART_PACKAGE) oci://$(RELEASE_CHARTS) $(HELM_REGISTRY_FLAGS) 2>&1) || { echo "$$out"; exit 1; }; echo "$$out"; \
	  digest=$$(echo "$$out" | sed -n 's/^Digest: *//p'); test -n "$$digest"; \
	  $(call cosign-sign,sign) $(RELEASE_CHARTS)/backup-oracle@$$digest
	@echo "released $(VERSION): $(RELEASE_IMAGE):$(VERSION) ($(IMAGE_PLATFORMS)), oci://$(RELEASE_CHARTS)/backup-oracle --version $(VERSION)"

.PHONY: soak
soak: $(TEST_TOOLS) ## invariant trials for TRIAL_DURATION per backend (default 15m): any wrong answer fails; memory and goroutines reported
	$(TEST_ENV) TRIAL_DURATION=$${TRIAL_DURATION:-15m} $(GO) test -count=1 -v -run 'TestInvariantTrials' -timeout 3h ./integration/

.PHONY: clean
clean: ## remove build output (keeps .tools)
	rm -rf $(BIN)

.PHONY: help
help:
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'
