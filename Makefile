# Trellis: the one entry point. `make run` brings the network up; `make test` proves it.
SHELL      := /bin/bash
export PATH := /usr/local/go/bin:$(CURDIR)/bin:$(PATH)
BIN        := $(CURDIR)/bin
MODULES    := pkg proto services/intake services/scheduling services/billing services/notification services/dashboard deploy/devstack deploy/bench e2e
SERVICES   := intake scheduling billing notification dashboard
TOOLS      := $(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/protoc-gen-connect-go $(BIN)/staticcheck
GO_TEST_FLAGS ?= -count=1 -timeout 15m
# Tests use the same database as the dev stack when one is given.
ifdef DATABASE_URL
export TEST_DATABASE_URL ?= $(DATABASE_URL)
endif

.PHONY: x12check fuzz test-faults help run test test-unit test-e2e lint generate build bench tools mailpit postgres token clean chromium

help: ## list targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

run: postgres mailpit ## run the whole network locally with demo data (Ctrl-C stops it)
	go build -o $(BIN)/devstack ./deploy/devstack/cmd/devstack
	exec $(BIN)/devstack up

test: postgres mailpit x12check chromium ## all tests: unit, integration (Postgres + JetStream) and end-to-end
	TRELLIS_REQUIRE_X12CHECK=1 go test $(GO_TEST_FLAGS) $(addsuffix /...,$(addprefix ./,$(MODULES)))

test-faults: postgres mailpit ## the fault suite: load under kill -9, NATS restarts, cut DB connections, duplicates, poison; then invariants (FAULTS=short|long)
	TRELLIS_FAULTS=$(or $(FAULTS),short) TRELLIS_FAULTS_PG_RESTART=$(FAULTS_PG_RESTART) \
		go test $(GO_TEST_FLAGS) -run '^TestFaults$$' -v ./e2e/

test-e2e: postgres mailpit chromium ## only the end-to-end test
	go test $(GO_TEST_FLAGS) -v ./e2e/...

bench: postgres mailpit ## Go benchmarks (bus, 835), then the harness: baselines, the whole pipeline, read side, memory -> docs/benchmarks.md (BENCH_SCALE=small: about 4 min)
	@mkdir -p .run/bench
	set -o pipefail; { go test -run '^$$' -bench . -benchmem -benchtime=$(if $(filter small,$(BENCH_SCALE)),500x,2000x) ./pkg/bus/ && \
		go test -run '^$$' -bench . -benchmem -benchtime=$(if $(filter small,$(BENCH_SCALE)),10x,20x) ./services/billing/internal/x12/ ./services/billing/cmd/billing/; } | tee .run/bench/gobench.txt
	cd deploy/bench && GOWORK=off GOFLAGS=-mod=mod go build -o $(BIN)/bench ./cmd/bench
	$(BIN)/bench -gobench .run/bench/gobench.txt $(BENCH_FLAGS)

# Fuzz targets as "package:Target"; each runs for FUZZTIME (CI: a short run). Their seed
# corpus (f.Add and testdata/fuzz/) also runs as plain tests in `make test`. FUZZTIME is a count
# of executions ("100000x"), not a duration: with a duration, Go 1.26's fuzz coordinator can fail
# a clean run with "context deadline exceeded" at the deadline (go.dev/issue/75804, fixed in 1.27).
FUZZ_TARGETS := ./services/billing/internal/x12:FuzzParseERA ./services/billing/internal/x12:FuzzBalancedERA \
	./services/billing/internal/x12:FuzzCents ./pkg/rpc:FuzzRequestDecoding
FUZZTIME ?= 100000x
# The fault suite restarts the local Postgres cluster with this (empty: it does not).
FAULTS_PG_RESTART ?= $(CURDIR)/scripts/restart-postgres.sh

fuzz: ## fuzz the 835 reader, amounts and every API's request decoding/validation, FUZZTIME executions each (default 100000x)
	@for t in $(FUZZ_TARGETS); do echo "fuzz $${t#*:} ($(FUZZTIME))"; \
		go test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) "$${t%%:*}" || exit 1; done

lint: tools ## gofmt, go vet, staticcheck, buf lint, generated code and go.work up to date
	@out=$$(gofmt -l $(MODULES) tools); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet $(addsuffix /...,$(addprefix ./,$(MODULES)))
	staticcheck $(addsuffix /...,$(addprefix ./,$(MODULES)))
	cd proto && buf lint
	@for m in $(MODULES); do (cd $$m && GOWORK=off go build ./... ) || { echo "GOWORK=off build failed in $$m"; exit 1; }; done
	$(MAKE) --no-print-directory generate
	go work sync
	@if [ -n "$$(git status --porcelain -- proto go.work go.work.sum '*/go.mod' '*/go.sum')" ]; then \
		echo "generated code or go.work/go.mod is stale: run 'make generate' and 'go work sync', then commit"; \
		git status --porcelain -- proto go.work go.work.sum '*/go.mod' '*/go.sum'; exit 1; fi

generate: tools ## regenerate protobuf Go code (and protovalidate's schema, offline)
	cd tools && GOWORK=off go run ./cmd/protovalidate-src ../proto/third_party
	cd proto && rm -rf gen && buf generate

build: ## build the service binaries into bin/
	go build -o $(BIN)/ $(foreach s,$(SERVICES),./services/$(s)/cmd/$(s)) ./deploy/devstack/cmd/devstack

tools: $(TOOLS) ## build the pinned developer tools into bin/

$(TOOLS) &: tools/go.mod tools/go.sum
	cd tools && GOWORK=off GOBIN=$(BIN) go install tool
	@touch $(TOOLS)

mailpit: ## build the Mailpit SMTP sink with its web UI into bin/
	@scripts/build-mailpit.sh

x12check: ## install the independent X12 parser (node-x12) billing's tests check 837 files with
	@scripts/ensure-x12check.sh

chromium: ## install Debian's Chromium and axe-core (npm) for the browser tests (e2e/browser) unless they are there
	@scripts/ensure-chromium.sh >/dev/null
	@scripts/ensure-axe.sh >/dev/null

postgres: ## make sure a local Postgres with the trellis admin role is running
	@scripts/ensure-postgres.sh

token: ## print a dev token: make token ROLE=intake_coordinator CLINICS='*'
	@go build -o $(BIN)/devstack ./deploy/devstack/cmd/devstack && $(BIN)/devstack token -role $(or $(ROLE),admin) -clinics '$(or $(CLINICS),*)'

clean: ## remove binaries and local state (.run: NATS data, Mailpit db)
	rm -rf bin .run

# --- deployment packaging (issue 11): container images and offline checks of deploy/ ---
IMAGE_REPO ?= trellis
IMAGE_TAG  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo dev)

.PHONY: images deploy-check
images: ## build the five service images (docker or podman): IMAGE_REPO=trellis IMAGE_TAG=<git sha>
	@engine=""; for e in docker podman; do \
		if command -v $$e >/dev/null 2>&1 && $$e info >/dev/null 2>&1; then engine=$$e; break; fi; done; \
	if [ -z "$$engine" ]; then \
		echo "make images: no container engine available (docker or podman not installed, or its daemon is not running);"; \
		echo "nothing was built. 'make deploy-check' validates deploy/images/Dockerfile without one."; exit 1; fi; \
	for s in $(SERVICES); do \
		echo "$$engine build $(IMAGE_REPO)/$$s:$(IMAGE_TAG)"; \
		$$engine build -f deploy/images/Dockerfile --build-arg SERVICE=$$s --target $$s \
			-t $(IMAGE_REPO)/$$s:$(IMAGE_TAG) -t $(IMAGE_REPO)/$$s:latest . || exit 1; \
	done

deploy-check: tools ## validate deploy/ offline: Dockerfile lint, compose, helm lint + strict render, alert rules and their unit tests, dashboards, runbooks
	cd deploy/validate && GOWORK=off go vet ./... && GOWORK=off staticcheck ./... && GOWORK=off go test $(GO_TEST_FLAGS) ./...
	cd deploy/images/healthcheck && GOWORK=off go vet ./... && GOWORK=off go test $(GO_TEST_FLAGS) ./...
