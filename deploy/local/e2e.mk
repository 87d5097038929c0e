# shipbot against a real local Argo CD (v2.14.21, or v3.2.11 with ARGOCD=v3)
# + Kubernetes 1.31 (apiserver, KCM, scheduler, kubelet on containerd: one
# real node), no Docker
# (deploy/local/README.md). Included from the Makefile:
#     include deploy/local/e2e.mk
# Needs root (a private network and mount namespace per run), git, and Debian's
# etcd-server, redis-server, containerd, runc and containernetworking-plugins
# (installed here when missing and apt-get exists).
#
#   make e2e-build      build or reuse the tool binaries (first time ~14 min)
#   make e2e-contract   Argo CD v1alpha1 JSON -> shipbot's argo structs
#   make e2e            the end-to-end scenarios (build cached)
#   make e2e ARGOCD=v3  the same scenarios against Argo CD v3 (CI runs both)
#   make demo-argocd    the demo chat with the real local Argo CD (ARGOCD=v3 too)

GO          ?= go
E2E_BUILD   := deploy/local/build.sh
E2E_TIMEOUT ?= 20m
E2E_FLAGS   ?=
# The Argo CD major the stack runs: v2 (v2.14.21) or v3 (v3.2.11), each
# built from its own tool module (deploy/local/tools/argocd, argocd-v3).
ARGOCD      ?= v2
DEMO_AS     ?= alice

.PHONY: e2e e2e-build e2e-contract e2e-deps demo-argocd

e2e-deps:
	@missing=""; \
	command -v etcd >/dev/null || missing="$$missing etcd-server"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v ip >/dev/null || missing="$$missing iproute2"; \
	command -v containerd >/dev/null || missing="$$missing containerd"; \
	command -v runc >/dev/null || missing="$$missing runc"; \
	[ -x /usr/lib/cni/bridge ] || missing="$$missing containernetworking-plugins"; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@[ "$$(id -u)" = 0 ] || { echo "e2e needs root (ip netns)"; exit 1; }

e2e-build:
	@GO=$(GO) ARGOCD=$(ARGOCD) $(E2E_BUILD) >/dev/null

e2e-contract:
	cd deploy/local/tools/argocd && $(GO) test -count=1 ./...

# The test binary is built outside the namespace (which has no module
# proxy) and run inside it; the harness deletes the namespace afterwards.
e2e: e2e-deps
	@set -e; bin=$$(GO=$(GO) ARGOCD=$(ARGOCD) $(E2E_BUILD) | tail -n1); \
	$(GO) build -o bin/shipbot ./cmd/shipbot; \
	$(GO) build -o bin/e2e-harness ./deploy/local/harness; \
	$(GO) test -c -tags e2e -o bin/e2e.test ./deploy/local/e2e; \
	$(GO) test -c -o bin/shipbot-cmd.test ./cmd/shipbot; \
	start=$$(date +%s); \
	bin/e2e-harness netns -- bin/e2e.test -test.v -test.count=1 -test.timeout $(E2E_TIMEOUT) -bin "$$bin" -shipbot bin/shipbot -cmd-tests bin/shipbot-cmd.test -argocd $(ARGOCD) $(E2E_FLAGS); \
	echo "e2e ($(ARGOCD)) wall time (stack + scenarios + teardown): $$(( $$(date +%s) - start ))s"

demo-argocd: e2e-deps
	@set -e; echo "demo-argocd: building the local Argo CD stack if needed (first build ~14 min, cached after)"; \
	bin=$$(GO=$(GO) ARGOCD=$(ARGOCD) $(E2E_BUILD) | tail -n1); \
	$(GO) build -o bin/shipbot ./cmd/shipbot; \
	$(GO) build -o bin/e2e-harness ./deploy/local/harness; \
	bin/e2e-harness netns -- bin/e2e-harness demo -bin "$$bin" -shipbot bin/shipbot -as $(DEMO_AS)
