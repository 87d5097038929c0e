# shipbot: `make demo` runs the local demo, `make test` runs the tests.
GO        ?= go
BIN       := bin/shipbot
DEMO_DIR  ?= .shipbot-demo
DEMO_AS   ?= alice
PKGS      := ./...
# Tests run with the race detector where cgo is available (CI has gcc).
RACE      ?= -race

.PHONY: all build test demo lint fmt vet fuzz bench clean

all: lint test

build:
	$(GO) build -o $(BIN) ./cmd/shipbot

demo: build
	./$(BIN) demo --dir $(DEMO_DIR) --as $(DEMO_AS)

test:
	$(GO) test $(RACE) -count=1 $(PKGS)

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

clean:
	rm -rf bin $(DEMO_DIR)
