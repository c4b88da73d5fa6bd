#!/usr/bin/env bash
# Builds the testbed's binaries (control planes, real nodes' kubelet and kube-proxy, CoreDNS, ExternalDNS,
# CloudNativePG) from the pinned Go
# modules under tests/controlplane/ into a cache outside the clone, so fresh clones reuse them. Skips what is
# already built.
#   scripts/testbed-bin.sh            build what is missing, print the bin dir last
#   scripts/testbed-bin.sh --print    only print the bin dir
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
modules="$root/tests/controlplane"
# shellcheck source=/dev/null
. "$modules/versions.env"

key="k8s-${KUBERNETES_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_helm-${HELM_VERSION}"
cache="${SHAREDCORE_TESTBED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sharedcore/testbed}"
bin="$cache/$key/bin"
if [ "${1:-}" = "--print" ]; then echo "$bin"; exit 0; fi

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
mkdir -p "$bin"
start=$(date +%s)

say() { printf '[testbed-bin %4ss] %s\n' "$(( $(date +%s) - start ))" "$*"; }

# The go.mod files and versions.env must agree, or the cache key would lie about what it holds.
require_version() { # module-dir module version
  grep -Eq "^\s*(require )?$2 $3( |$)" "$modules/$1/go.mod" ||
    { echo "tests/controlplane/$1/go.mod does not require $2 $3 (versions.env)" >&2; exit 1; }
}
require_version kubernetes k8s.io/kubernetes "$KUBERNETES_VERSION"
require_version etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION"
require_version kwok sigs.k8s.io/kwok "$KWOK_VERSION"
require_version helm helm.sh/helm/v3 "$HELM_VERSION"
require_version coredns github.com/coredns/coredns "$COREDNS_VERSION"
require_version cloudnative-pg github.com/cloudnative-pg/cloudnative-pg "$CNPG_VERSION"
require_version external-dns sigs.k8s.io/external-dns "$EXTERNAL_DNS_VERSION"

build() { # module-dir output-name package ldflags
  local dir=$1 name=$2 pkg=$3 ldflags=$4
  if [ -x "$bin/$name" ]; then say "$name: cached"; return; fi
  local t0; t0=$(date +%s)
  say "$name: building $pkg (a cold build takes minutes)"
  (cd "$modules/$dir" && go build -trimpath -ldflags "-s -w $ldflags" -o "$bin/.$name.tmp" "$pkg")
  mv "$bin/.$name.tmp" "$bin/$name"
  say "$name: built in $(( $(date +%s) - t0 ))s, $(du -h "$bin/$name" | cut -f1)"
}

k8s_minor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2)
k8s_ldflags=""
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $p.gitVersion=$KUBERNETES_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$k8s_minor"
  k8s_ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done
for tool in etcd kube-apiserver kubectl kube-controller-manager kube-scheduler kubelet kube-proxy; do
  case $tool in
    etcd) build etcd etcd go.etcd.io/etcd/server/v3 \
            "-X go.etcd.io/etcd/api/v3/version.GitSHA=release-$ETCD_VERSION" ;;
    *) build kubernetes "$tool" "k8s.io/kubernetes/cmd/$tool" "$k8s_ldflags" ;;
  esac
done
build kwok kwok sigs.k8s.io/kwok/cmd/kwok "-X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}"
# kwok plays nodes and pods by Stage definitions; take kwok's own "fast" set from the pinned module.
if [ ! -s "$bin/kwok-stages.yaml" ]; then
  kwok_src=$(cd "$modules/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
  for f in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease \
           pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
    echo "---"; cat "$kwok_src/kustomize/stage/$f.yaml"
  done > "$bin/.kwok-stages.yaml.tmp"
  mv "$bin/.kwok-stages.yaml.tmp" "$bin/kwok-stages.yaml"
fi
helm_ldflags="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for p in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  helm_ldflags+=" -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$k8s_minor"
done
build helm helm helm.sh/helm/v3/cmd/helm "$helm_ldflags"
# CoreDNS is not in the cache key (adding it would rebuild everything): a binary of another version is replaced.
if [ -x "$bin/coredns" ] && ! "$bin/coredns" -version | grep -qx "CoreDNS-${COREDNS_VERSION#v}"; then
  rm "$bin/coredns"
fi
build coredns coredns github.com/coredns/coredns "-X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION"
# CloudNativePG's manager (operator and instance manager in one binary; its version is compiled in), named by
# version so that another pin builds anew; its image and release manifest come from the same module (images.py).
build cloudnative-pg "cnpg-manager-$CNPG_VERSION" github.com/cloudnative-pg/cloudnative-pg/cmd/manager ""
# ExternalDNS likewise (its module needs one replace: a dependency's dependency moved from vbom.ml to GitHub).
if [ -x "$bin/external-dns" ] && ! "$bin/external-dns" --version | grep -qx "$EXTERNAL_DNS_VERSION"; then
  rm "$bin/external-dns"
fi
build external-dns external-dns sigs.k8s.io/external-dns \
  "-X sigs.k8s.io/external-dns/pkg/apis/externaldns.Version=$EXTERNAL_DNS_VERSION"
# Its DNSEndpoint CRD, of the same version: the testbed installs it where ExternalDNS runs, the tests everywhere.
edns_src=$(cd "$modules/external-dns" && go list -m -f '{{.Dir}}' sigs.k8s.io/external-dns)
cp "$edns_src/config/crd/standard/dnsendpoints.externaldns.k8s.io.yaml" "$bin/.externaldns-dnsendpoints.yaml.tmp"
mv "$bin/.externaldns-dnsendpoints.yaml.tmp" "$bin/externaldns-dnsendpoints.yaml"

# promtool ships in Debian's prometheus package; unpack just that binary (no service is installed).
if [ ! -x "$bin/promtool" ]; then
  say "promtool: unpacking from Debian's prometheus package"
  tmp=$(mktemp -d)
  (cd "$tmp" && { apt-get download prometheus >/dev/null 2>&1 ||
                  { apt-get update >/dev/null && apt-get download prometheus >/dev/null; }; } &&
   dpkg-deb -x prometheus_*.deb x && cp x/usr/bin/promtool "$bin/promtool")
  rm -rf "$tmp"
fi
say "all binaries ready in $(( $(date +%s) - start ))s"
echo "$bin"
