#!/usr/bin/env bash
# Proves the registry works end to end: pushes a tiny image from this machine (via
# $REGISTRY_PUSH_HOST), runs a pod from it in the cluster (pulled as $REGISTRY_HOST, over
# the mirror in k3d.yaml), checks what it printed, and deletes it.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { printf 'smoke-registry: error: %s\n' "$*" >&2; exit 1; }
for name in KUBE_CONTEXT REGISTRY_PUSH_HOST REGISTRY_HOST REGISTRY_NAMESPACE; do
  [[ -n ${!name:-} ]] || die "$name is not set (devgraph sets it from [env] in tasks.toml)"
done
for tool in docker kubectl; do
  command -v "$tool" >/dev/null || die "$tool is not on PATH"
done

base=busybox:1.36.1
tag=registry-smoke:dev
pod=registry-smoke
namespace=default
kube=(kubectl --context "$KUBE_CONTEXT" -n "$namespace")

docker pull "$base"
docker tag "$base" "$REGISTRY_PUSH_HOST/$REGISTRY_NAMESPACE/$tag"
docker push "$REGISTRY_PUSH_HOST/$REGISTRY_NAMESPACE/$tag"

"${kube[@]}" delete pod "$pod" --ignore-not-found
trap '"${kube[@]}" delete pod "$pod" --ignore-not-found >/dev/null' EXIT
"${kube[@]}" run "$pod" --image="$REGISTRY_HOST/$REGISTRY_NAMESPACE/$tag" --restart=Never \
  --command -- echo registry-smoke-ok
"${kube[@]}" wait --for=jsonpath='{.status.phase}'=Succeeded "pod/$pod" --timeout=120s ||
  die "pod $pod did not succeed: can the cluster pull $REGISTRY_HOST/$REGISTRY_NAMESPACE/$tag?"
out=$("${kube[@]}" logs "pod/$pod")
[[ $out == registry-smoke-ok ]] || die "pod $pod printed '$out', expected registry-smoke-ok"
echo "the cluster pulled and ran $REGISTRY_HOST/$REGISTRY_NAMESPACE/$tag"
