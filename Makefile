# Freshet: the two commands a newcomer needs are `make run` and `make test`.
GO       ?= go
PKGS     ?= ./...
# Test timeout for the whole suite (CI's budget is 30 minutes).
TEST_TIMEOUT ?= 25m
BENCH    ?= .
BENCHTIME ?= 1s

.PHONY: run test test-race test-short bench up down lint fmt build check docs broker

## run: start the local stack (Postgres, ClickHouse, Varnish, embedded Kafka broker, services) from local binaries; Ctrl-C stops it.
run:
	$(GO) run ./deploy/local $(ARGS)

## broker: only the embedded Kafka-protocol broker (127.0.0.1:9092, data in .freshet/kafka).
broker:
	$(GO) run ./deploy/local broker $(ARGS)

## docs: regenerate docs/configuration.md from the config structs.
docs:
	$(GO) run ./deploy/local config > docs/configuration.md

## test: the whole suite, integration included: installs the Debian packages the tests need (as root; otherwise prints the command), then lists loudly at the end any integration test skipped for a missing server (FRESHET_REQUIRE_SERVERS=1 fails the run instead).
test:
	$(GO) run ./deploy/testrun -go $(GO) -timeout $(TEST_TIMEOUT) $(PKGS)

## test-race: the whole suite under the race detector (about twice as long as test).
test-race:
	$(GO) run ./deploy/testrun -go $(GO) -race -timeout $(TEST_TIMEOUT) $(PKGS)

## test-short: unit tests only (skips the tests that start servers).
test-short:
	$(GO) test -short -count=1 $(PKGS)

## bench: Go benchmarks, then the short run of every whole-stack scenario (loadtest/, a few minutes; LOAD_ARGS=-long for the issue's sizes). Figures: docs/benchmarks.md.
bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -benchtime $(BENCHTIME) $(PKGS)
	$(GO) run ./loadtest/cmd/freshet-load $(LOAD_ARGS)

## up: the whole pipeline in Docker (needs a Docker engine).
up:
	docker compose up --build

down:
	docker compose down

## build: every binary into ./bin.
build:
	$(GO) build -o bin/ ./services/... ./deploy/local

## lint: go vet plus a gofmt check.
lint:
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## fmt: format the code.
fmt:
	gofmt -w $$(git ls-files '*.go')

help:
	@grep -E '^## ' Makefile | sed 's/^## //'
