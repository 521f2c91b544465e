#!/usr/bin/env bash
# The k3d cluster $CLUSTER_NAME, as $K3D_CONFIG describes it.
#
# devgraph says why this runs in DEVGRAPH_DRIFT. When only the probe drifted (the cluster
# answers no more, e.g. Docker restarted and the nodes are stopped) and the cluster still
# exists, it is started: same cluster, same kube-system UID, so nothing after it re-runs.
# For any other reason (never run, k3d.yaml changed, the registry was recreated, ...) the
# cluster is deleted and created afresh. Either way, it then waits for every node to be
# Ready.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { printf 'ensure-k3d-cluster: error: %s\n' "$*" >&2; exit 1; }
need_env() {
  local name
  for name in "$@"; do
    [[ -n ${!name:-} ]] || die "$name is not set (devgraph sets it from [env] in tasks.toml)"
  done
}
need_tools() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || die "$tool is not on PATH"
  done
}

need_env CLUSTER_NAME KUBE_CONTEXT K3D_CONFIG
need_tools docker k3d kubectl
[[ -f $K3D_CONFIG ]] || die "the k3d config $K3D_CONFIG does not exist"
grep -Eq "^  name: $CLUSTER_NAME\$" "$K3D_CONFIG" ||
  die "$K3D_CONFIG does not name the cluster $CLUSTER_NAME (metadata.name)"

drift=${DEVGRAPH_DRIFT:-}
exists=false
if k3d cluster get "$CLUSTER_NAME" >/dev/null 2>&1; then
  exists=true
fi

if [[ $drift == probe && $exists == true ]]; then
  echo "cluster $CLUSTER_NAME exists but does not answer: starting it"
  k3d cluster start "$CLUSTER_NAME"
else
  if [[ $exists == true ]]; then
    echo "recreating cluster $CLUSTER_NAME (${drift:-run by hand})"
    k3d cluster delete "$CLUSTER_NAME"
  else
    echo "creating cluster $CLUSTER_NAME (${drift:-run by hand})"
  fi
  k3d cluster create --config "$K3D_CONFIG"
fi

echo "waiting for the nodes of $KUBE_CONTEXT to be Ready"
kubectl --context "$KUBE_CONTEXT" wait --for=condition=Ready nodes --all --timeout=180s
