# backup-oracle: every command a developer or CI needs. Tool versions are pinned here, once.
# Tools are built from the Go module proxy into the git-ignored .tools/ folder on first use and
# reused afterwards (a tool's file name carries its version, so a version bump rebuilds it).

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO        ?= go
TOOLS     := $(CURDIR)/.tools
BIN       := $(CURDIR)/bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -s -w -X main.version=$(VERSION) -X main.revision=$(REVISION)

# --- pinned tools ---------------------------------------------------------------------------
KOPIA_VERSION         := v0.22.3
RESTIC_VERSION        := v0.19.1
VERSITYGW_VERSION     := v1.8.0
KYVERNO_VERSION       := v1.19.1
HELM_VERSION          := v3.22.0
GOLANGCI_LINT_VERSION := v2.15.0
# make e2e: the wrapper module integration/e2e/tools pins Kubernetes, and through it etcd.
KUBERNETES_VERSION    := v1.35.0
ETCD_VERSION          := v3.6.5

KOPIA         := $(TOOLS)/kopia-$(KOPIA_VERSION)
RESTIC        := $(TOOLS)/restic-$(RESTIC_VERSION)
VERSITYGW     := $(TOOLS)/versitygw-$(VERSITYGW_VERSION)
KYVERNO       := $(TOOLS)/kyverno-$(KYVERNO_VERSION)
HELM          := $(TOOLS)/helm-$(HELM_VERSION)
GOLANGCI_LINT := $(TOOLS)/golangci-lint-$(GOLANGCI_LINT_VERSION)
ETCD               := $(TOOLS)/etcd-$(ETCD_VERSION)
KUBE_APISERVER     := $(TOOLS)/kube-apiserver-$(KUBERNETES_VERSION)
KUBECTL            := $(TOOLS)/kubectl-$(KUBERNETES_VERSION)
KYVERNO_ADMISSION  := $(TOOLS)/kyverno-admission-controller-$(KYVERNO_VERSION)
KYVERNO_BACKGROUND := $(TOOLS)/kyverno-background-controller-$(KYVERNO_VERSION)
KYVERNO_CLEANUP    := $(TOOLS)/kyverno-cleanup-controller-$(KYVERNO_VERSION)
KYVERNO_CRDS       := $(TOOLS)/kyverno-crds-$(KYVERNO_VERSION)

# Tools the test suite drives, passed to the tests as <NAME>_BIN.
TEST_TOOLS := $(KOPIA)
TEST_ENV   := KOPIA_BIN=$(KOPIA)
TEST_TOOLS += $(RESTIC) $(VERSITYGW)
TEST_ENV   += RESTIC_BIN=$(RESTIC) VERSITYGW_BIN=$(VERSITYGW)

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

$(KYVERNO):
	$(call build-module,github.com/kyverno/kyverno,$(KYVERNO_VERSION),cmd/cli/kubectl-kyverno,$@)

$(HELM):
	$(call install-module,helm.sh/helm/v3/cmd/helm,$(HELM_VERSION),$@)

# Kyverno's controllers, as its images run them, and its CRDs (plain YAML in the module).
KYVERNO_LDFLAGS := -X github.com/kyverno/kyverno/pkg/version.BuildVersion=$(KYVERNO_VERSION)

$(KYVERNO_ADMISSION):
	$(call build-module,github.com/kyverno/kyverno,$(KYVERNO_VERSION),cmd/kyverno,$@,$(KYVERNO_LDFLAGS))

$(KYVERNO_BACKGROUND):
	$(call build-module,github.com/kyverno/kyverno,$(KYVERNO_VERSION),cmd/background-controller,$@,$(KYVERNO_LDFLAGS))

$(KYVERNO_CLEANUP):
	$(call build-module,github.com/kyverno/kyverno,$(KYVERNO_VERSION),cmd/cleanup-controller,$@,$(KYVERNO_LDFLAGS))

$(KYVERNO_CRDS):
	@dir=$$(cd /tmp && GOFLAGS=-mod=mod $(GO) mod download -json github.com/kyverno/kyverno@$(KYVERNO_VERSION) | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p'); \
	  test -n "$$dir"; rm -rf $@.tmp; cp -r "$$dir/config/crds" $@.tmp; chmod -R u+w $@.tmp; mv $@.tmp $@

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

$(ETCD):
	$(call build-e2e-tool,./etcd,$@)

$(KUBE_APISERVER):
	$(call build-e2e-tool,k8s.io/kubernetes/cmd/kube-apiserver,$@)

$(KUBECTL):
	$(call build-e2e-tool,k8s.io/kubernetes/cmd/kubectl,$@)

E2E_TOOLS := $(ETCD) $(KUBE_APISERVER) $(KUBECTL) $(KYVERNO_ADMISSION) $(KYVERNO_BACKGROUND) $(KYVERNO_CLEANUP) \
  $(KYVERNO_CRDS) $(KOPIA) $(HELM)
E2E_ENV   := ETCD_BIN=$(ETCD) KUBE_APISERVER_BIN=$(KUBE_APISERVER) KUBECTL_BIN=$(KUBECTL) \
  KYVERNO_ADMISSION_CONTROLLER_BIN=$(KYVERNO_ADMISSION) KYVERNO_BACKGROUND_CONTROLLER_BIN=$(KYVERNO_BACKGROUND) \
  KYVERNO_CLEANUP_CONTROLLER_BIN=$(KYVERNO_CLEANUP) KYVERNO_CRDS=$(KYVERNO_CRDS) KOPIA_BIN=$(KOPIA) HELM_BIN=$(HELM)

.PHONY: tools
tools: $(TEST_TOOLS) $(GOLANGCI_LINT) $(KYVERNO) $(HELM) $(E2E_TOOLS) ## build every pinned tool into .tools/

# --- the two README commands ----------------------------------------------------------------
.PHONY: run
run: ## run the service on a demo Kopia repository it creates itself
	$(GO) run ./cmd/backup-oracle --demo

.PHONY: test
test: lint test-go test-policies test-chart e2e ## everything CI runs: lint, vet, tidy check, unit and integration tests, policies, chart, end to end

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
test-go: $(TEST_TOOLS) ## unit and integration tests with the race detector
	$(TEST_ENV) $(GO) test -race -count=1 -timeout 20m ./...

.PHONY: test-policies
test-policies: $(KYVERNO) ## kyverno test suites of policies/ (ClusterPolicy and CEL sets, mocked oracle)
	$(KYVERNO) test policies/tests --remove-color
	$(GO) test -count=1 ./policies/

.PHONY: test-chart
test-chart: $(HELM) $(KYVERNO) build ## helm lint, goldens, schema rejections, policies/ = render, RS/RD vs CRDs, kyverno apply vs a live oracle
	for values in chart/testdata/values/*.yaml; do $(HELM) lint --strict chart --values "$$values"; done
	cd chart/test && $(GO) mod tidy -diff && $(GO) vet ./...
	cd chart/test && HELM_BIN=$(HELM) KYVERNO_BIN=$(KYVERNO) BACKUP_ORACLE_BIN=$(BIN)/backup-oracle $(GO) test -count=1 ./...

.PHONY: e2e
e2e: $(E2E_TOOLS) $(GOLANGCI_LINT) ## restore-as-code end to end: etcd, kube-apiserver, Kyverno, the oracle, the shipped policies
	$(GO) vet -tags e2e ./integration/e2e/
	$(GOLANGCI_LINT) run --build-tags e2e ./integration/e2e/
	$(E2E_ENV) $(GO) test -tags e2e -count=1 -v -timeout 15m ./integration/e2e/

.PHONY: update-golden
update-golden: $(HELM) ## rewrite chart/testdata/golden and policies/ from the chart (review the diff)
	cd chart/test && HELM_BIN=$(HELM) $(GO) test -count=1 -run 'TestGolden|TestPoliciesMatchRender' ./... -update

.PHONY: bench
bench: $(TEST_TOOLS) ## benchmarks (micro, then the real service and restic on S3); figures go to the README
	$(GO) test -run '^$$' -bench . -benchmem ./cache ./repo ./server
	$(TEST_ENV) $(GO) test -run '^$$' -bench . -benchmem -benchtime 1x -timeout 30m ./integration/ ./repo/restic/

.PHONY: soak
soak: $(TEST_TOOLS) ## invariant trials for TRIAL_DURATION per backend (default 15m): any wrong answer fails; memory and goroutines reported
	$(TEST_ENV) TRIAL_DURATION=$${TRIAL_DURATION:-15m} $(GO) test -count=1 -v -run 'TestInvariantTrials' -timeout 3h ./integration/

.PHONY: clean
clean: ## remove build output (keeps .tools)
	rm -rf $(BIN)

.PHONY: help
help:
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'
