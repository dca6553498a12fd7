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
# Kyverno: the policies are proven on each of these versions (make test-policies, make e2e); the
# last one is the newest, whose CLI make test-chart uses.
KYVERNO_VERSIONS      := v1.17.2 v1.18.2 v1.19.1
KYVERNO_VERSION       := $(lastword $(KYVERNO_VERSIONS))
HELM_VERSION          := v3.22.0
GOLANGCI_LINT_VERSION := v2.15.0
GREMLINS_VERSION      := v0.6.0
# make image: go-containerregistry's crane assembles the image without a Docker daemon; the CA
# certificates are those of Debian's ca-certificates package (bookworm's, pinned).
CRANE_VERSION           := v0.22.1
CA_CERTIFICATES_VERSION := 20230311+deb12u1
# The console's browser test: Debian's chromium (bookworm). Debian keeps only the current
# version in its archive, so the pinned one is tried first and the archive's taken otherwise.
CHROMIUM_VERSION        := 150.0.7871.100-1~deb12u1
# make e2e: the wrapper module integration/e2e/tools pins Kubernetes, and through it etcd.
KUBERNETES_VERSION    := v1.35.0
# make e2e: upstream VolSync's controller and restic mover script (and make crds' upstream CRDs).
VOLSYNC_UPSTREAM_VERSION := v0.16.0
ETCD_VERSION          := v3.6.5

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
CA_BUNDLE     := $(TOOLS)/ca-certificates-$(subst +,_,$(CA_CERTIFICATES_VERSION)).crt
ETCD               := $(TOOLS)/etcd-$(ETCD_VERSION)
KUBE_APISERVER     := $(TOOLS)/kube-apiserver-$(KUBERNETES_VERSION)
KUBECTL            := $(TOOLS)/kubectl-$(KUBERNETES_VERSION)
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
	$(call install-module,helm.sh/helm/v3/cmd/helm,$(HELM_VERSION),$@)

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

E2E_TOOLS := $(ETCD) $(KUBE_APISERVER) $(KUBECTL) $(KYVERNO_BINS) $(KOPIA) $(HELM) $(VOLSYNC) $(RESTIC) $(VERSITYGW)
E2E_ENV   := ETCD_BIN=$(ETCD) KUBE_APISERVER_BIN=$(KUBE_APISERVER) KUBECTL_BIN=$(KUBECTL) KOPIA_BIN=$(KOPIA) HELM_BIN=$(HELM) \
  $(KYVERNO_BINS_ENV) VOLSYNC_BIN=$(VOLSYNC)/manager RESTIC_BIN=$(RESTIC) VERSITYGW_BIN=$(VERSITYGW)

.PHONY: tools
tools: $(TEST_TOOLS) $(CRANE) $(CA_BUNDLE) $(GOLANGCI_LINT) $(KYVERNO_BINS) $(HELM) $(E2E_TOOLS) $(GREMLINS) ## build every pinned tool into .tools/

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
test-go: $(TEST_TOOLS) image chromium ## unit and integration tests with the race detector (the image unpacked and run, the console in Chromium)
	$(TEST_ENV) IMAGE_TAR=$(IMAGE_TAR) CHROMIUM_BIN=$$(command -v chromium || true) CONSOLE_SCREENSHOT_DIR=$(BIN)/console \
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
	cd chart/test && HELM_BIN=$(HELM) KYVERNO_BIN=$(KYVERNO) BACKUP_ORACLE_BIN=$(BIN)/backup-oracle $(GO) test -count=1 ./...

.PHONY: e2e
e2e: $(E2E_TOOLS) $(GOLANGCI_LINT) ## restore-as-code end to end: etcd, kube-apiserver, Kyverno, the oracle, the shipped policies
	$(GO) vet -tags e2e ./integration/e2e/
	$(GOLANGCI_LINT) run --build-tags e2e ./integration/e2e/
	$(E2E_ENV) $(GO) test -tags e2e -count=1 -v -timeout 15m ./integration/e2e/

# Fuzz targets, as <package>:<target>. `make test` runs each for FUZZTIME_SHORT, `make fuzz` for
# FUZZTIME and then copies the inputs that widened coverage into <package>/testdata/fuzz/<target>/
# (the committed corpus, which every plain `go test` replays): review them and commit.
FUZZ_TARGETS   := ./repo:FuzzDNS1123 ./repo:FuzzKopiaIdentity ./repo:FuzzKopiaNames \
  ./repo:FuzzKopiaPVCOfRoundTrip ./server:FuzzExistsPath ./repo/restic:FuzzDecodeSnapshot \
  ./repo/kopia:FuzzParseRFC3339 ./repo/kopia:FuzzParseManifestContent
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

# The image: the static binary, CA certificates, /etc/passwd and /etc/group naming UID/GID 568,
# /tmp and /state (owned by 568, STATE_DIR) in two layers on an empty base; no shell. Entrypoint,
# user, environment, port and labels are set by crane mutate through a registry crane serves on
# 127.0.0.1 for the duration (crane mutate reads images from a registry). The result is a
# tarball `docker load` and `podman load` accept. TestImageMatchesDockerfile holds the Dockerfile to
# the same settings.
IMAGE_REPOSITORY ?= ghcr.io/backup-oracle/backup-oracle
IMAGE_TAG        ?= $(VERSION)
IMAGE_TAR        := $(BIN)/backup-oracle-image.tar
IMAGE_DIR        := $(BIN)/image

.PHONY: image
image: $(CRANE) $(CA_BUNDLE) ## OCI image of the static binary without a Docker daemon: bin/backup-oracle-image.tar (docker load / podman load)
	rm -rf $(IMAGE_DIR) && mkdir -p $(IMAGE_DIR)/root/etc/ssl/certs $(IMAGE_DIR)/root/tmp $(IMAGE_DIR)/state/state
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(IMAGE_DIR)/root/backup-oracle ./cmd/backup-oracle
	cp $(CA_BUNDLE) $(IMAGE_DIR)/root/etc/ssl/certs/ca-certificates.crt
	printf 'root:x:0:0:root:/root:/sbin/nologin\nbackup-oracle:x:568:568:backup-oracle:/state:/sbin/nologin\n' > $(IMAGE_DIR)/root/etc/passwd
	printf 'root:x:0:\nbackup-oracle:x:568:\n' > $(IMAGE_DIR)/root/etc/group
	chmod 0755 $(IMAGE_DIR)/root/backup-oracle && chmod 0644 $(IMAGE_DIR)/root/etc/passwd $(IMAGE_DIR)/root/etc/group $(IMAGE_DIR)/root/etc/ssl/certs/ca-certificates.crt
	chmod 1777 $(IMAGE_DIR)/root/tmp && chmod 0700 $(IMAGE_DIR)/state/state
	tar --sort=name --numeric-owner --owner=0 --group=0 --mtime=@0 -C $(IMAGE_DIR)/root -cf $(IMAGE_DIR)/root.tar .
	tar --sort=name --numeric-owner --owner=568 --group=568 --mtime=@0 -C $(IMAGE_DIR)/state -cf $(IMAGE_DIR)/state.tar ./state
	@log=$(IMAGE_DIR)/registry.log; $(CRANE) registry serve --address 127.0.0.1:0 2>$$log & pid=$$!; trap 'kill $$pid' EXIT; \
	  for i in $$(seq 100); do port=$$(sed -n 's/.*serving on port \([0-9]*\).*/\1/p' $$log); test -n "$$port" && break; sleep 0.1; done; \
	  test -n "$$port" || { cat $$log; exit 1; }; reg=127.0.0.1:$$port/backup-oracle; \
	  $(CRANE) append --oci-empty-base -f $(IMAGE_DIR)/root.tar -f $(IMAGE_DIR)/state.tar -t $$reg:layers; \
	  $(CRANE) mutate $$reg:layers --set-platform linux/amd64 --entrypoint /backup-oracle --user 568:568 \
	    --env STATE_DIR=/state --exposed-ports 8080/tcp --workdir / \
	    -l org.opencontainers.image.title=backup-oracle -l org.opencontainers.image.version=$(VERSION) \
	    -l org.opencontainers.image.revision=$(REVISION) -l org.opencontainers.image.source=https://github.com/backup-oracle/backup-oracle \
	    -t $(IMAGE_REPOSITORY):$(IMAGE_TAG) -o $(IMAGE_TAR)
	@echo "$(IMAGE_TAR): $(IMAGE_REPOSITORY):$(IMAGE_TAG) (docker load -i $(IMAGE_TAR), or podman load -i $(IMAGE_TAR))"

.PHONY: soak
soak: $(TEST_TOOLS) ## invariant trials for TRIAL_DURATION per backend (default 15m): any wrong answer fails; memory and goroutines reported
	$(TEST_ENV) TRIAL_DURATION=$${TRIAL_DURATION:-15m} $(GO) test -count=1 -v -run 'TestInvariantTrials' -timeout 3h ./integration/

.PHONY: clean
clean: ## remove build output (keeps .tools)
	rm -rf $(BIN)

.PHONY: help
help:
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'
