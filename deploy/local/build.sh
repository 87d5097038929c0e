#!/usr/bin/env bash
# Builds the local Argo CD stack's binaries (argocd, kube-apiserver,
# kube-controller-manager, kustomize, helm) into a cache folder keyed by the
# tool modules' go.mod and go.sum files, the tool versions below and `go version`, and
# prints that folder's bin directory on the last line of stdout. A folder that
# is already complete is reused as it is (a warm run takes well under a second).
#
#   deploy/local/build.sh            # build or reuse; last stdout line = bin dir
#   SHIPBOT_E2E_CACHE=/x build.sh    # cache root (default ~/.cache/shipbot-e2e)
#
# Progress goes to stderr. Binaries never go into the source tree.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
GO="${GO:-go}"

ARGOCD_VERSION=2.14.21
KUBE_VERSION=1.31.0
KUSTOMIZE_VERSION=v5.4.3   # the version Argo CD 2.14 pins
HELM_VERSION=v3.16.4

log() { printf '[build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

key="$( {
	cat "$here/tools/argocd/go.mod" "$here/tools/argocd/go.sum" "$here/tools/kube/go.mod" "$here/tools/kube/go.sum"
	echo "argocd=$ARGOCD_VERSION kube=$KUBE_VERSION kustomize=$KUSTOMIZE_VERSION helm=$HELM_VERSION"
	"$GO" version
} | sha256sum | cut -c1-16)"
root="${SHIPBOT_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shipbot-e2e}"
dir="$root/$key"
bin="$dir/bin"
tools=(argocd kube-apiserver kube-controller-manager kustomize helm)

complete() {
	for t in "${tools[@]}"; do [ -x "$bin/$t" ] || return 1; done
	[ -f "$bin/crds/application-crd.yaml" ] || return 1
	[ -f "$dir/complete" ]
}

if complete; then
	touch "$dir" # in use: keeps it from the pruning below
	log "reusing $bin (key $key)"
	echo "$bin"
	exit 0
fi

log "building the local Argo CD stack into $bin (key $key)"
log "first build takes ~11 minutes on 2 cores (kube-apiserver ~4 min, argocd ~4.5 min,"
log "kube-controller-manager ~1.3 min, kustomize+helm ~1.5 min); later runs reuse it"
mkdir -p "$bin"
rm -f "$dir/complete"
start=$SECONDS

step() { # name, then the command; skips a tool that is already there
	local name=$1; shift
	if [ -x "$bin/$name" ]; then log "$name: present"; return; fi
	local t0=$SECONDS
	log "$name: building..."
	"$@"
	log "$name: done in $((SECONDS - t0))s"
}

log "downloading modules"
(cd "$here/tools/kube" && "$GO" mod download)
(cd "$here/tools/argocd" && "$GO" mod download)

# Without these a kube-apiserver reports v0.0.0-master+$Format:%H$, which clients can't parse.
kver="-X k8s.io/component-base/version.gitVersion=v$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=$(cut -d. -f1 <<<"$KUBE_VERSION") -X k8s.io/component-base/version.gitMinor=$(cut -d. -f2 <<<"$KUBE_VERSION")"
step kube-apiserver bash -c "cd '$here/tools/kube' && '$GO' build -trimpath -ldflags='-s -w $kver' -o '$bin/kube-apiserver.tmp' k8s.io/kubernetes/cmd/kube-apiserver && mv '$bin/kube-apiserver.tmp' '$bin/kube-apiserver'"
step kube-controller-manager bash -c "cd '$here/tools/kube' && '$GO' build -trimpath -ldflags='-s -w $kver' -o '$bin/kube-controller-manager.tmp' k8s.io/kubernetes/cmd/kube-controller-manager && mv '$bin/kube-controller-manager.tmp' '$bin/kube-controller-manager'"
aver="-X github.com/argoproj/argo-cd/v2/common.version=$ARGOCD_VERSION"
step argocd bash -c "cd '$here/tools/argocd' && '$GO' build -trimpath -ldflags='-s -w $aver' -o '$bin/argocd.tmp' github.com/argoproj/argo-cd/v2/cmd && mv '$bin/argocd.tmp' '$bin/argocd'"
# kustomize and helm are built from their own released modules (go install
# pkg@version ignores the current module, so they resolve exactly as released).
step kustomize bash -c "cd '$dir' && GOBIN='$bin' '$GO' install -trimpath -ldflags='-s -w' sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
step helm bash -c "cd '$dir' && GOBIN='$bin' '$GO' install -trimpath -ldflags='-s -w' helm.sh/helm/v3/cmd/helm@$HELM_VERSION"

# Argo CD's CRDs, so the stack needs no module cache at run time.
mkdir -p "$bin/crds"
argodir="$(cd "$here/tools/argocd" && "$GO" list -m -f '{{.Dir}}' github.com/argoproj/argo-cd/v2)"
for c in application appproject applicationset; do
	cp "$argodir/manifests/crds/$c-crd.yaml" "$bin/crds/"
done
chmod -R u+w "$bin/crds"

touch "$dir/complete"
# Other keys (older go.sum or Go versions) unused for a week go.
find "$root" -mindepth 1 -maxdepth 1 -type d ! -name "$key" -mtime +7 -exec rm -rf {} + 2>/dev/null || true
log "all built in $((SECONDS - start))s: $(du -sh "$bin" | cut -f1) in $bin"
echo "$bin"
