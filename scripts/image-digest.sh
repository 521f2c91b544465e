#!/usr/bin/env bash
# Prints the digest of SERVICE's image in the local registry
# ($REGISTRY_PUSH_HOST/$REGISTRY_NAMESPACE/SERVICE:$IMAGE_TAG), the identity of the
# image:SERVICE task. Fails when the registry does not hold the image.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { printf 'image-digest: error: %s\n' "$*" >&2; exit 1; }

[[ $# -eq 1 ]] || die "usage: scripts/image-digest.sh SERVICE"
for name in REGISTRY_PUSH_HOST REGISTRY_NAMESPACE IMAGE_TAG; do
  [[ -n ${!name:-} ]] || die "$name is not set (devgraph sets it from [env] in tasks.toml)"
done
command -v docker >/dev/null || die "docker is not on PATH"

docker buildx imagetools inspect --format '{{.Manifest.Digest}}' \
  "$REGISTRY_PUSH_HOST/$REGISTRY_NAMESPACE/$1:$IMAGE_TAG"
