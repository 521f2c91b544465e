#!/usr/bin/env bash
# The local image registry: the container $REGISTRY_NAME (k3d-ameide.localhost), listening
# on host port $REGISTRY_PORT. Started when it exists but is stopped, created when missing.
# Registry containers of the old bootstrap are removed first, so they cannot hold the port.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { printf 'ensure-registry: error: %s\n' "$*" >&2; exit 1; }
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

need_env REGISTRY_NAME REGISTRY_PORT
need_tools docker k3d

# Left by the old bash bootstrap; they would shadow or block the registry.
for legacy in k3d-dev-reg k3d-docker.io; do
  if docker inspect -f '{{.Id}}' "$legacy" >/dev/null 2>&1; then
    echo "removing the old registry container $legacy"
    docker rm -f "$legacy" >/dev/null
  fi
done

if running=$(docker inspect -f '{{.State.Running}}' "$REGISTRY_NAME" 2>/dev/null); then
  if [[ $running == true ]]; then
    echo "registry $REGISTRY_NAME is running"
  else
    echo "starting the stopped registry $REGISTRY_NAME"
    docker start "$REGISTRY_NAME" >/dev/null
  fi
else
  # k3d prefixes the name with k3d-: ameide.localhost becomes k3d-ameide.localhost.
  [[ $REGISTRY_NAME == k3d-* ]] || die "REGISTRY_NAME must start with k3d- (k3d names its registries so), got $REGISTRY_NAME"
  echo "creating the registry $REGISTRY_NAME on port $REGISTRY_PORT"
  k3d registry create "${REGISTRY_NAME#k3d-}" --port "0.0.0.0:$REGISTRY_PORT"
fi
