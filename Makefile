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

## test: the whole suite, integration included (real servers; set FRESHET_REQUIRE_SERVERS=1 to fail instead of skip when one is missing).
test:
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) $(PKGS)

## test-race: the whole suite under the race detector (about twice as long as test).
test-race:
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(PKGS)

## test-short: unit tests only (skips the tests that start servers).
test-short:
	$(GO) test -short -count=1 $(PKGS)

## bench: Go benchmarks (figures and how to read them: docs/benchmarks.md).
bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -benchtime $(BENCHTIME) $(PKGS)

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
