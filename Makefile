# Veil: everything a fresh machine needs is fetched by these targets:
# Go modules through the module proxy, and onnxruntime from the npm package
# onnxruntime-node (it ships libonnxruntime.so for linux-x64).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

GO        ?= go
BIN       := $(CURDIR)/bin
CACHE     := $(CURDIR)/.cache

# onnxruntime_go v1.38.0 is built against the onnxruntime 1.31 C API.
ORT_VERSION    := 1.31.1
ORT_TGZ_SHA256 := d7a3de2b1bba92614abc74af909cc0ba4f4dd5347735418794edeb58cfef2d22
ORT_LIB_SHA256 := f19a4da48c4c65e0cdccff82354482f657fa91a3455b66174195b94ca55b0e6f
ORT_LIB_NAME   := libonnxruntime.so.1
ORT_CACHE      := $(CACHE)/onnxruntime-$(ORT_VERSION)
ORT_LIB        := $(ORT_CACHE)/$(ORT_LIB_NAME)

export ORT_LIBRARY_PATH := $(ORT_LIB)
export CGO_ENABLED := 1

GO_TEST_FLAGS ?= -race -count=1 -timeout 25m

.PHONY: all build ort test test-short run bench fuzz proto vet clean
all: build

# Fetch the onnxruntime shared library once into the ignored cache, checking
# both the npm tarball and the library by sha256.
ort: $(ORT_LIB)
$(ORT_LIB):
	@mkdir -p $(ORT_CACHE)
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	echo "fetching onnxruntime-node@$(ORT_VERSION) from npm (libonnxruntime for linux-x64)"; \
	( cd "$$tmp" && npm pack --silent --ignore-scripts onnxruntime-node@$(ORT_VERSION) >/dev/null ); \
	echo "$(ORT_TGZ_SHA256)  $$tmp/onnxruntime-node-$(ORT_VERSION).tgz" | sha256sum -c --quiet; \
	tar -xzf "$$tmp/onnxruntime-node-$(ORT_VERSION).tgz" -C "$$tmp" package/bin/napi-v6/linux/x64/$(ORT_LIB_NAME); \
	echo "$(ORT_LIB_SHA256)  $$tmp/package/bin/napi-v6/linux/x64/$(ORT_LIB_NAME)" | sha256sum -c --quiet; \
	install -m 0644 "$$tmp/package/bin/napi-v6/linux/x64/$(ORT_LIB_NAME)" $(ORT_LIB)

# The binaries, with the onnxruntime library beside them so that
# bin/veil-runtime works with no environment set.
build: ort
	@mkdir -p $(BIN)
	$(GO) build -trimpath -o $(BIN)/ ./cmd/...
	@# The batcher ships in a minimal image: rebuild it static, without cgo.
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/veil-batcher ./cmd/veil-batcher
	@install -m 0644 $(ORT_LIB) $(BIN)/$(ORT_LIB_NAME)

vet:
	$(GO) vet ./...

test: build vet
	VEIL_BIN_DIR=$(BIN) $(GO) test $(GO_TEST_FLAGS) ./...

# The main job.
run: build
	$(BIN)/veil run $(RUN_ARGS)

bench: build
	VEIL_BIN_DIR=$(BIN) $(GO) run ./test/bench $(BENCH_ARGS)

# Fuzz each decoder for a short while (CI runs only the seed corpora, via make test).
FUZZ_TIME ?= 30s
fuzz: ort
	@for p in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$p 2>/dev/null | grep '^Fuzz' || true); do \
	    echo "== $$p $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZ_TIME) $$p; \
	  done; \
	done

# Regenerates the OIP gRPC stubs; needs protoc (Debian: protobuf-compiler).
proto:
	@command -v protoc >/dev/null || { echo "protoc not found: apt-get install protobuf-compiler" >&2; exit 1; }
	$(GO) build -o $(CACHE)/protoc-bin/ google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc
	PATH=$(CACHE)/protoc-bin:$$PATH protoc --go_out=. --go_opt=paths=source_relative \
	  --go-grpc_out=. --go-grpc_opt=paths=source_relative oip/inferencepb/grpc_predict_v2.proto

clean:
	rm -rf $(BIN)
