# shipbot: `make demo` runs the local demo, `make test` runs the tests.
GO        ?= go
BIN       := bin/shipbot
DEMO_DIR  ?= .shipbot-demo
DEMO_AS   ?= alice
PKGS      := ./...
# Tests run with the race detector where cgo is available (CI has gcc).
RACE      ?= -race

# make e2e, e2e-contract, demo-argocd: shipbot against a real local Argo CD (deploy/local).
include deploy/local/e2e.mk

.PHONY: all build test demo lint fmt vet fuzz bench bench-review clean

all: lint test

build:
	CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=auto -o $(BIN) ./cmd/shipbot

demo: build
	./$(BIN) demo --dir $(DEMO_DIR) --as $(DEMO_AS)

test:
	$(GO) test $(RACE) -count=1 $(PKGS)

# The container image (issue 17), built without a Docker daemon by
# deploy/image: OCI layout in $(IMAGE_OUT)/oci and a docker-loadable
# $(IMAGE_OUT)/shipbot.tar; prints the digest. Reproducible: timestamps are
# SOURCE_DATE_EPOCH or the HEAD commit's time. IMAGE_GOARCH=arm64 builds
# for arm64 (the builder itself runs on the host, hence GOOS/GOARCH unset).
IMAGE_OUT    ?= dist/image
IMAGE_GOARCH ?= $(or $(GOARCH),$(shell $(GO) env GOARCH))
IMAGE_FLAGS  ?=
.PHONY: image
image:
	env -u GOOS -u GOARCH $(GO) run ./deploy/image -out $(IMAGE_OUT) -goarch $(IMAGE_GOARCH) $(IMAGE_FLAGS)

lint: fmt vet

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

# Short fuzz runs of the parser and the manifest editors (FUZZTIME=10m for a long run).
FUZZTIME ?= 20s
fuzz:
	$(GO) test ./chat/command -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME)
	for f in $$($(GO) test ./gitops/edit -list 'Fuzz.*' | grep ^Fuzz); do \
		$(GO) test ./gitops/edit -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) || exit 1; done

# Monorepo benchmarks (issue 3): 1,000 apps x 3 envs, 10,000 commits, served over
# smart HTTP on 127.0.0.1, each beside the git CLI doing the same work; then
# (issue 13) a restart up to the first rollback plan, the cold clone's peak
# RSS in a child process, and the same commits on a clone aged by 8,000
# requests and 300 fetches. Ends with the summary, one `name: value` a line.
# BENCHFLAGS adds flags, e.g. -bench.age.nomaint (also an aged clone without
# maintenance: the "before") or -bench.age.requests=20000.
BENCHTIME ?= 5x
BENCHFLAGS ?=
bench:
	$(GO) test ./gitops/internal/bench/ -run '^$$' -bench Monorepo -benchtime $(BENCHTIME) -timeout 60m -bench.summary $(CURDIR)/bench-summary.txt $(BENCHFLAGS)
	@echo; cat bench-summary.txt
	$(MAKE) bench-review

# The review flow against the GitHub double on 127.0.0.1 (issue 11): request
# -> pull request opened, and last approval -> merged on main.
bench-review:
	$(GO) test ./gitops/forge/github/ -run '^$$' -bench 'Proposal|Approval' -benchtime $(BENCHTIME) -benchmem

clean:
	rm -rf bin $(DEMO_DIR) bench-summary.txt
