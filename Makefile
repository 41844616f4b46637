# pushgate — the commands a developer and CI use. See README.md.
GO       ?= go
BIN      := bin/pushgate
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
PKGS     := ./...

.PHONY: run build test unit lint vet fmt fuzz bench services clean image chart-test

## run: start the gateway on embedded defaults (SQLite under ./data, sandbox providers, a demo workspace)
run: build
	./$(BIN) serve --dev

## build: compile bin/pushgate
build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/pushgate

## test: everything CI checks: gofmt, go vet, all tests with -race against real Redis, PostgreSQL and SQLite, and a short fuzz run
test: services lint
	PUSHGATE_SHOTS_DIR=$(CURDIR)/screenshots $(GO) test -race -count=1 -timeout 8m $(PKGS)
	$(GO) test -count=1 -run TestWorkspaceListAt100k ./tenants/sqlstore/ # SQLite's 100,000 workspaces, too slow under -race
	@$(MAKE) --no-print-directory chart-test
	@GO=$(GO) bash scripts/fuzz.sh

## fuzz: a short run of every fuzz target (FUZZTIME=30s for a longer one)
fuzz:
	@GO=$(GO) bash scripts/fuzz.sh

## chart-test: render charts/pushgate offline (default, US, DE and broken values) and check it against the Kubernetes API types and the restricted Pod Security level
chart-test:
	@out=$$(gofmt -l charts/charttest); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	cd charts/charttest && $(GO) vet ./... && $(GO) test -count=1 -timeout 20m ./...

## image: build the container image pushgate:$(VERSION) (needs a Docker engine; nothing in test does)
IMAGE ?= pushgate
image:
	docker build --build-arg VERSION=$(VERSION) \
	  --build-arg REVISION=$$(git rev-parse HEAD 2>/dev/null || echo unknown) \
	  --build-arg CREATED=$$(date -u +%Y-%m-%dT%H:%M:%SZ) \
	  -t $(IMAGE):$(VERSION) .

## services: start (and if needed install) Redis, PostgreSQL and stripe-mock on loopback for the integration tests
services:
	@bash scripts/test-services.sh
	@GO=$(GO) bash scripts/stripe-mock.sh

## lint: gofmt, go vet, and no path that reaches outside the repository
lint: vet
	@bash scripts/check-self-contained.sh
	@out=$$(gofmt -l cmd api billing gateway tenants web); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

fmt:
	gofmt -w cmd api billing gateway tenants web

## bench: end-to-end benchmark (see README)
bench:
	@bash scripts/bench.sh

clean:
	rm -rf bin
