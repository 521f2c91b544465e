#!/usr/bin/env bash
# Builds services/SERVICE (its folder is the build context) and pushes it to the local
# registry as $REGISTRY_NAMESPACE/SERVICE:$IMAGE_TAG, via $REGISTRY_PUSH_HOST (localhost:5001:
# the host side of the registry). The cluster pulls the same image as
# $REGISTRY_HOST/$REGISTRY_NAMESPACE/SERVICE:$IMAGE_TAG.
#
# GHCR_TOKEN reaches the build only as the BuildKit secret `ghcr_token`
# (RUN --mount=type=secret,id=ghcr_token ...): never as a build argument, never in a layer.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { printf 'build-image: error: %s\n' "$*" >&2; exit 1; }
need_env() {
  local name
  for name in "$@"; do
    [[ -n ${!name:-} ]] || die "$name is not set (devgraph sets it from [env] in tasks.toml)"
  done
}

[[ $# -eq 1 ]] || die "usage: scripts/build-image.sh SERVICE"
service=$1
[[ $service =~ ^[a-z0-9][a-z0-9-]*$ ]] || die "image names are lowercase and hyphenated: got '$service'"
context=services/$service
[[ -f $context/Dockerfile ]] || die "$context/Dockerfile does not exist"

[[ -n ${GHCR_TOKEN:-} ]] || die "GHCR_TOKEN is not set: builds read it as a BuildKit secret (a GitHub token with read:packages)"
need_env REGISTRY_PUSH_HOST REGISTRY_NAMESPACE IMAGE_TAG
command -v docker >/dev/null || die "docker is not on PATH"

ref=$REGISTRY_PUSH_HOST/$REGISTRY_NAMESPACE/$service:$IMAGE_TAG
echo "building $ref"
DOCKER_BUILDKIT=1 docker build \
  --secret id=ghcr_token,env=GHCR_TOKEN \
  -t "$ref" \
  -f "$context/Dockerfile" \
  "$context"
echo "pushing $ref"
docker push "$ref"
