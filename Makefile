# ct-ops ingest — `make help` lists the targets.
SHELL := /bin/bash
NPM_BIN := node_modules/.bin
NODE := $(NPM_BIN)/node
HELM ?= $(shell command -v helm 2>/dev/null || echo $(HOME)/.cache/ct-ops-tools/bin/helm)

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_.-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

node_modules: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch node_modules

.PHONY: install
install: node_modules ## Install dependencies from the lockfile (npm ci)

.PHONY: dev
dev: node_modules ## Run the whole service locally: embedded PostgreSQL, dev TLS, a ready enrolment token
	npm run dev

.PHONY: dev-tls
dev-tls: node_modules ## Write a self-signed TLS pair to deploy/dev-tls/server.crt and server.key
	$(NODE) src/main.ts dev-tls --dir deploy/dev-tls

.PHONY: ingest
ingest: node_modules ## Build the executable dist/ingest (compiled JavaScript)
	rm -rf dist
	$(NPM_BIN)/tsc -p tsconfig.build.json
	mkdir -p dist/db/migrations
	cp src/db/migrations/*.sql dist/db/migrations/
	printf '#!/bin/sh\n# ct-ops ingest executable (built by make ingest)\ndir=$$(CDPATH= cd -- "$$(dirname -- "$$0")" && pwd)\nnode="$$dir/../node_modules/.bin/node"\n[ -x "$$node" ] || node=node\nexec "$$node" "$$dir/main.js" "$$@"\n' > dist/ingest
	chmod +x dist/ingest

.PHONY: typecheck
typecheck: node_modules ## Type-check sources, tests and benchmarks
	$(NPM_BIN)/tsc -p tsconfig.json --noEmit

.PHONY: test
test: node_modules ## Run the whole test suite (starts a throwaway PostgreSQL unless TEST_DATABASE_URL is set)
	npm test

.PHONY: bench
bench: node_modules ## Run the heartbeat load benchmark (see bench/RESULTS.md)
	npm run bench

.PHONY: helm
helm: ## Build Helm from the Go module proxy into ~/.cache/ct-ops-tools/bin (when missing)
	@test -x "$(HELM)" || GOBIN=$(HOME)/.cache/ct-ops-tools/bin go install helm.sh/helm/v4/cmd/helm@v4.3.2

.PHONY: k8s-manifests
k8s-manifests: helm ## Render k8s/ct-ops-ingest.yaml from the Helm chart with k8s/values-dev.yaml
	HELM=$(HELM) scripts/render-k8s.sh

.PHONY: image
image: ## Build the container image ct-ops-ingest:dev (needs Docker or another builder)
	docker build -t ct-ops-ingest:dev .

.PHONY: clean
clean: ## Remove build output and dev data
	rm -rf dist .data deploy/dev-tls
