# The two commands: `make demo` runs the proxy in front of a local MinIO,
# `make test` runs every test (what CI runs, through .ci/run).
GO      ?= go
BIN     := bin/ssec-proxy
FUZZTIME ?= 5s

.PHONY: all build demo test unit lint fuzz-short fuzz deps clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/ssec-proxy

deps:
	scripts/deps.sh

demo: deps build
	$(BIN) demo

# Every test, integration tests included (they start MinIO over TLS and drive
# minio-go, aws-sdk-go-v2, and Debian's awscli, s3cmd, rclone and python3-boto3).
test: lint fuzz-short
	scripts/deps.sh --clients
	SSEC_INTEGRATION=require $(GO) test -race -count=1 ./...

# Unit tests only, no MinIO needed.
unit:
	$(GO) test -race -short ./...

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: the files above need formatting"; exit 1; }
	$(GO) vet ./...
	scripts/staticcheck.sh

# Each fuzz target for a few seconds (CI), or longer: make fuzz FUZZTIME=5m.
fuzz-short:
	scripts/fuzz.sh $(FUZZTIME)

fuzz:
	scripts/fuzz.sh $(if $(filter 5s,$(FUZZTIME)),2m,$(FUZZTIME))

# The performance benchmark (issue 6, docs/PERFORMANCE.md): MinIO over TLS,
# the proxy binary and nginx, direct vs proxied; writes bench/results-*.md.
# bench-short runs it with small sizes in seconds and judges no timing (CI).
.PHONY: bench bench-short
bench: deps build
	$(GO) run ./bench -proxy-bin $(BIN)

bench-short: deps build
	$(GO) run ./bench -short -proxy-bin $(BIN)

# The container image from the Dockerfile, with docker (when its daemon
# answers) or podman, whichever is there (podman with --format docker,
# which keeps the HEALTHCHECK).
IMAGE   ?= ssec-proxy:latest
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null)
.PHONY: image
image:
	@if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then \
	  set -x; docker build --build-arg VERSION=$(VERSION) -t $(IMAGE) .; \
	elif command -v podman >/dev/null 2>&1; then \
	  set -x; podman build --format docker --build-arg VERSION=$(VERSION) -t $(IMAGE) .; \
	else \
	  echo "make image: no docker (with a running daemon) and no podman"; exit 1; \
	fi

clean:
	rm -rf bin
