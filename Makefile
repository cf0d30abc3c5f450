# delayctl: `make demo` runs the whole loop on the real data; `make test` runs the tests.
# `make help` lists every target.

SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
BIN := bin/delayctl

DATA ?= data/flightdata.csv
OUT ?= out
MODEL ?= $(OUT)/model.json
TRAIN_CONFIG ?= configs/train.yaml

ADDR ?= 127.0.0.1:8080
RATE ?= 200/s
DURATION ?= 20s
SLO ?= configs/slo.yaml
RESULTS ?= $(OUT)/run.bin

.PHONY: help build test lint fuzz data demo train serve bench slo slo-rules perf perf-train perf-serve perf-bench perf-slo golden

help: ## Show this help
	@grep -hE '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-12s %s\n", $$1, $$2}'

build: ## Build bin/delayctl (static, with version and commit)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/delayctl

test: $(DATA) ## Run every test with the race detector, then short fuzz runs of the decoders (needs the data: see make data)
	$(GO) test -race -timeout 15m ./...
	$(MAKE) fuzz FUZZTIME=5s

FUZZTIME ?= 30s
# Every decoder of outside input: model files, request bodies, SLO files (delayctl, sloth,
# OpenSLO), results files, rates, headers and prediction logs with their outcomes.
# A failing run is printed and retried once: an input that crashes the code is saved under
# testdata/fuzz and replayed first, so a real bug fails the retry too, while a fuzzing worker
# that a busy machine starves does not fail the build.
FUZZ_TARGETS := ./pkg/model:FuzzDecode ./pkg/model:FuzzPredictVector ./pkg/train:FuzzClean ./pkg/serve:FuzzDecodePredict ./pkg/serve:FuzzDecodeInfer \
	./pkg/serve:FuzzDecodeForm ./pkg/serve:FuzzReadBody ./pkg/slo:FuzzLoad ./pkg/slo:FuzzLoadForeign ./pkg/bench:FuzzParseRate \
	./pkg/bench:FuzzParseHeader ./pkg/bench:FuzzWriteRequest ./pkg/results:FuzzRead ./pkg/evaluate:FuzzReadLog
fuzz: ## Fuzz every decoder for FUZZTIME each (default 30s; make test runs 5s each)
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t#*:} ($${t%%:*}) for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) $${t%%:*} >/tmp/delayctl-fuzz.log 2>&1 || \
			{ cat /tmp/delayctl-fuzz.log; echo "retrying once: a crasher saved to testdata fails again"; \
			  $(GO) test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) $${t%%:*} || exit 1; }; \
	done

lint: ## gofmt, go vet, staticcheck, deadcode (pinned) and go mod tidy
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
	@out=$$($(GO) run golang.org/x/tools/cmd/deadcode@v0.52.0 -test ./...); if [ -n "$$out" ]; then echo "dead code:"; echo "$$out"; exit 1; fi
	$(GO) mod tidy -diff

data: $(DATA) ## Put the flight data at data/flightdata.csv (checksum verified)
$(DATA):
	./scripts/fetch-data.sh $(DATA)

train: build $(DATA) ## Train on the real data: out/model.json, metrics.json and plots
	@mkdir -p $(OUT)
	$(BIN) train --data $(DATA) --config $(TRAIN_CONFIG) --out $(MODEL) --cv 5 --metrics-out $(OUT)/metrics.json --plots $(OUT)/plots

demo: build $(DATA) ## The main job on the real data: train, serve, bench, SLO verdict (RATE, DURATION)
	BIN=$(BIN) DATA=$(DATA) OUT=$(OUT) RATE=$(RATE) DURATION=$(DURATION) ./scripts/demo.sh

.PHONY: hostile
hostile: ## Hostile clients against a real delayctl serve (GOMEMLIMIT=200MiB): memory, connections, shedding, /metrics flood; about a minute
	$(GO) test -tags hostile -count=1 -timeout 5m -run 'TestHostile' -v ./cmd/delayctl

.PHONY: k8s-check image image-rootfs image-test pulumi-test
# The newest Kubernetes types come with delayctl's go.mod; the oldest supported minor's with
# deploy/k8s/check's own go.mod (docs/DEPLOY.md says which and why).
k8s-check: ## Validate deploy/k8s strictly with the newest and the oldest supported k8s API types, and cross-check them with delayctl
	$(GO) test -count=1 -run 'TestManifests|TestDockerfile' -v ./cmd/delayctl
	cd deploy/k8s/check && $(GO) test -count=1 -v ./...

IMAGE ?= delayctl:$(VERSION)
# docker when an engine answers, else podman (see docs/DEPLOY.md for the runc runtime).
ENGINE ?= $(shell docker info >/dev/null 2>&1 && echo docker || echo podman)
BAKE_MODEL ?=
IMAGE_BUILD_FLAGS ?=
# The image's root filesystem, built on the host so that the image build pulls nothing.
image-rootfs:
	rm -rf bin/image && mkdir -p bin/image/etc/ssl/certs bin/image/models
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/image/delayctl ./cmd/delayctl
	./scripts/check-static.sh bin/image/delayctl
	cp /etc/ssl/certs/ca-certificates.crt bin/image/etc/ssl/certs/
	echo 'nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin' >bin/image/etc/passwd
	echo 'nonroot:x:65532:' >bin/image/etc/group
	$(if $(BAKE_MODEL),cp $(BAKE_MODEL) bin/image/models/model.json)

image: image-rootfs ## Build the container image IMAGE (docker when an engine runs, else podman); BAKE_MODEL=file bakes a model in
	$(ENGINE) build $(if $(filter podman,$(ENGINE)),--format docker) $(IMAGE_BUILD_FLAGS) -f deploy/Dockerfile --target context -t $(IMAGE) .

image-test: ## Build the image with podman, run it with a model and check probes, uid, read-only root, health check, SIGTERM drain, size
	./scripts/image-test.sh

# deploy/pulumi is its own module (the cloud SDKs stay out of delayctl's go.mod); its tests
# build delayctl from this tree and run it with the containers' arguments.
pulumi-test: ## Unit-test the Pulumi programs (deploy/pulumi) with mocks, cross-checked against delayctl serve
	cd deploy/pulumi && $(GO) vet ./... && $(GO) test -count=1 ./...

.PHONY: e2e
e2e: build ## Zero-downtime rollout under load: 2 replicas behind nginx, rolling restart + hot reload, 0 failed requests
	BIN=$(BIN) DATA=$(DATA) ./scripts/e2e.sh

serve: build ## Serve MODEL (out/model.json) on ADDR (127.0.0.1:8080); Ctrl-C drains and stops
	$(BIN) serve --model $(MODEL) --addr $(ADDR)

bench: build $(DATA) ## Bench ADDR/predict at RATE (200/s) for DURATION (20s) with real rows into RESULTS (out/run.bin)
	$(BIN) bench --url http://$(ADDR)/predict --from-data $(DATA) --model $(MODEL) --body-form mixed \
		--rate $(RATE) --duration $(DURATION) --results $(RESULTS) --plot $(OUT)/plot.html --png $(OUT)/bench

slo: build ## SLO verdict of RESULTS against SLO (configs/slo.yaml); exit 1 when breached
	$(BIN) slo report --slo $(SLO) --results $(RESULTS)

slo-rules: build ## Prometheus recording and burn-rate alert rules for SLO
	$(BIN) slo rules --slo $(SLO) --selector 'job="delayctl"'

perf: build $(DATA) perf-train perf-serve perf-bench perf-slo ## Every performance script (needs wrk: apt-get install -y wrk)

perf-train: build $(DATA) ## Training at scale: 1M and 10M synthetic rows (PERF_TRAIN_100M=1: 100M), 3M vs scikit-learn
	./scripts/perf-train.sh

perf-serve: build $(DATA) ## delayctl serve vs a minimal net/http handler under wrk, pinned cores
	./scripts/perf-serve.sh

perf-bench: build ## delayctl bench --rate 0 vs wrk; memory of a 1M-request attack and report
	./scripts/perf-bench.sh

perf-slo: ## slo report over 1,000,000 results: time and memory
	./scripts/perf-slo.sh

golden: ## Refresh the golden files of report formats
	$(GO) test ./pkg/slo ./pkg/bench -update
