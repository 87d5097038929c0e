#!/usr/bin/env bash
# Builds the local Argo CD stack's binaries (argocd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kubelet, kustomize, helm, and app:
# the one static binary of the stack's container images) and prints the
# folder that holds them all on the last line of stdout.
#
# Each tool is cached on its own, under a key that hashes its inputs (its tool
# module's go.mod and go.sum or its source, its version, `go version`):
# changing the kube tool module rebuilds the four Kubernetes binaries and
# leaves argocd (the longest build) alone. The bin folder links them together
# under a key of all those keys. A folder that is already complete is reused
# as it is (a warm run takes well under a second).
#
#   deploy/local/build.sh            # build or reuse; last stdout line = bin dir
#   ARGOCD=v3 deploy/local/build.sh  # the same stack with Argo CD v3 (default v2)
#   SHIPBOT_E2E_CACHE=/x build.sh    # cache root (default ~/.cache/shipbot-e2e)
#
# Progress goes to stderr. Binaries never go into the source tree.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
GO="${GO:-go}"

# Each Argo CD major is built from a tool module of its own, with the
# kustomize and helm versions that release pins (its hack/tool-versions.sh).
case "${ARGOCD:-v2}" in
v2)
	ARGOCD_VERSION=2.14.21
	ARGOCD_MODULE=tools/argocd
	KUSTOMIZE_VERSION=v5.4.3
	HELM_VERSION=v3.16.4
	;;
v3) # the newest v3 that builds with Go 1.26 (v3.2.12 does not compile, v3.6 needs Go 1.27)
	ARGOCD_VERSION=3.2.11
	ARGOCD_MODULE=tools/argocd-v3
	KUSTOMIZE_VERSION=v5.7.0
	HELM_VERSION=v3.18.4
	;;
*)
	echo "ARGOCD=$ARGOCD: want v2 or v3" >&2
	exit 2
	;;
esac
ARGOCD_PATH="github.com/argoproj/argo-cd/v${ARGOCD_VERSION%%.*}"
KUBE_VERSION=1.31.0

log() { printf '[build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

gover="$("$GO" version)"
hash() { { cat "$@"; echo "$gover"; } | sha256sum | cut -c1-16; }
k_argocd="$(hash "$here/$ARGOCD_MODULE/go.mod" "$here/$ARGOCD_MODULE/go.sum" <(echo "argocd=$ARGOCD_VERSION"))"
k_kube="$(hash "$here/tools/kube/go.mod" "$here/tools/kube/go.sum" <(echo "kube=$KUBE_VERSION"))"
k_kustomize="$(hash <(echo "kustomize=$KUSTOMIZE_VERSION"))"
k_helm="$(hash <(echo "helm=$HELM_VERSION"))"
k_app="$(hash "$here"/images/app/*.go)"
key="$(echo "$k_argocd $k_kube $k_kustomize $k_helm $k_app" | sha256sum | cut -c1-16)"

root="${SHIPBOT_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shipbot-e2e}"
dir="$root/$key"
bin="$dir/bin"
obj="$root/obj"
# tool -> its cache folder (binaries built once per key, linked into bin).
declare -A src=(
	[argocd]="$obj/argocd-$k_argocd"
	[kube-apiserver]="$obj/kube-$k_kube"
	[kube-controller-manager]="$obj/kube-$k_kube"
	[kube-scheduler]="$obj/kube-$k_kube"
	[kubelet]="$obj/kube-$k_kube"
	[kustomize]="$obj/kustomize-$k_kustomize"
	[helm]="$obj/helm-$k_helm"
	[app]="$obj/app-$k_app"
)
tools=(argocd kube-apiserver kube-controller-manager kube-scheduler kubelet kustomize helm app)

complete() {
	for t in "${tools[@]}"; do [ -x "$bin/$t" ] || return 1; done
	[ -f "$bin/crds/application-crd.yaml" ] || return 1
	[ -f "$dir/complete" ]
}

if complete; then
	touch "$dir" "${src[@]}" 2>/dev/null || true # in use: keeps them from the pruning below
	log "reusing $bin (key $key)"
	echo "$bin"
	exit 0
fi

log "building the local Argo CD stack into $bin (key $key)"
log "a cold build takes ~14 minutes on 2 cores (kube-apiserver ~4 min, argocd ~4.5 min,"
log "kubelet ~3 min, kube-controller-manager ~1.3 min, kustomize+helm ~1.5 min);"
log "each tool is cached under a key of its own inputs, later runs reuse it"
mkdir -p "$bin" "$obj"
rm -f "$dir/complete"
start=$SECONDS

step() { # tool, then the command that builds "$out/$tool"; skips a tool already cached
	local name=$1; shift
	local out="${src[$name]}"
	if [ ! -x "$out/$name" ]; then
		local t0=$SECONDS
		case $name in kustomize | helm | app) ;; *) download ;; esac
		log "$name: building..."
		mkdir -p "$out"
		out="$out" "$@"
		log "$name: done in $((SECONDS - t0))s"
	else
		log "$name: cached ($out)"
		touch "$out"
	fi
	ln -f "$out/$name" "$bin/$name" 2>/dev/null || cp -f "$out/$name" "$bin/$name"
}

downloaded=""
download() { # the tool modules, once, before the first Go build that needs them
	[ -n "$downloaded" ] && return
	log "downloading modules"
	(cd "$here/tools/kube" && "$GO" mod download)
	(cd "$here/$ARGOCD_MODULE" && "$GO" mod download)
	downloaded=1
}

# Without these a kube-apiserver reports v0.0.0-master+$Format:%H$, which clients can't parse.
kver="-X k8s.io/component-base/version.gitVersion=v$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=$(cut -d. -f1 <<<"$KUBE_VERSION") -X k8s.io/component-base/version.gitMinor=$(cut -d. -f2 <<<"$KUBE_VERSION")"
kube() ( # builds k8s.io/kubernetes/cmd/$1 into $out
	cd "$here/tools/kube" && "$GO" build -trimpath -ldflags="-s -w $kver" -o "$out/$1.tmp" "k8s.io/kubernetes/cmd/$1" && mv "$out/$1.tmp" "$out/$1"
)
for t in kube-apiserver kube-controller-manager kube-scheduler kubelet; do
	step "$t" kube "$t"
done
aver="-X $ARGOCD_PATH/common.version=$ARGOCD_VERSION"
argocd() (
	cd "$here/$ARGOCD_MODULE" && "$GO" build -trimpath -ldflags="-s -w $aver" -o "$out/argocd.tmp" "$ARGOCD_PATH/cmd" && mv "$out/argocd.tmp" "$out/argocd"
)
step argocd argocd
# kustomize and helm are built from their own released modules (go install
# pkg@version ignores the current module, so they resolve exactly as released).
step kustomize bash -c 'cd "$out" && GOBIN="$out" "$0" install -trimpath -ldflags="-s -w" sigs.k8s.io/kustomize/kustomize/v5@'"$KUSTOMIZE_VERSION" "$GO"
step helm bash -c 'cd "$out" && GOBIN="$out" "$0" install -trimpath -ldflags="-s -w" helm.sh/helm/v3/cmd/helm@'"$HELM_VERSION" "$GO"
# The container images' binary: standard library only, static.
step app bash -c 'cd "$1" && CGO_ENABLED=0 "$0" build -trimpath -ldflags="-s -w" -o "$out/app" ./deploy/local/images/app' "$GO" "$here/../.."

# Argo CD's CRDs, so the stack needs no module cache at run time.
crds="${src[argocd]}/crds"
if [ ! -f "$crds/application-crd.yaml" ]; then
	download
	argodir="$(cd "$here/$ARGOCD_MODULE" && "$GO" list -m -f '{{.Dir}}' "$ARGOCD_PATH")"
	mkdir -p "$crds"
	for c in application appproject applicationset; do
		cp "$argodir/manifests/crds/$c-crd.yaml" "$crds/"
	done
	chmod -R u+w "$crds"
fi
rm -rf "$bin/crds"
cp -r "$crds" "$bin/crds"

touch "$dir/complete"
# Other keys (older go.sum or Go versions) unused for a week go.
find "$root" -mindepth 1 -maxdepth 1 -type d ! -name "$key" ! -name obj -mtime +7 -exec rm -rf {} + 2>/dev/null || true
find "$obj" -mindepth 1 -maxdepth 1 -type d -mtime +7 -exec rm -rf {} + 2>/dev/null || true
log "all built in $((SECONDS - start))s: $(du -sh "$bin" | cut -f1) in $bin"
echo "$bin"
