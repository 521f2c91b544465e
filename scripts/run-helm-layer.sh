#!/usr/bin/env bash
# Syncs the Helmfile layer LAYER (a folder under layers/) and runs its Helm smoke tests.
#
#   scripts/run-helm-layer.sh LAYER [--image-digests]
#
# 1. Refuses to start when a release of the layer is stuck in pending-install,
#    pending-upgrade or pending-rollback (an interrupted helm): syncing over it would fail
#    with "another operation is in progress" after a long wait.
# 2. helmfile sync of layers/LAYER/helmfile.yaml. With --image-digests, the registry
#    digest of every services/<name> image is passed as the state value images.<name>.
# 3. For each smoke release of the layer (its name ends in -smoke): deletes the test Jobs
#    of a previous run (or `helm test` fails with "already exists"), runs `helm test`, and
#    prints the test pods' logs, read by label (helm test --logs misses Job pods). Logs
#    that are gone after a suite that passed (the pod was already cleaned up) are a
#    warning, not a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'run-helm-layer: %s\n' "$*"; }
warn() { printf 'run-helm-layer: warning: %s\n' "$*" >&2; }
die() { printf 'run-helm-layer: error: %s\n' "$*" >&2; exit 1; }

usage="usage: scripts/run-helm-layer.sh LAYER [--image-digests]"
[[ $# -ge 1 ]] || die "$usage"
layer=$1
shift
image_digests=false
for arg in "$@"; do
  case $arg in
    --image-digests) image_digests=true ;;
    *) die "unknown argument $arg; $usage" ;;
  esac
done
helmfile=layers/$layer/helmfile.yaml
[[ -f $helmfile ]] || die "$helmfile does not exist"
for name in KUBE_CONTEXT HELMFILE_ENVIRONMENT; do
  [[ -n ${!name:-} ]] || die "$name is not set (devgraph sets it from [env] in tasks.toml)"
done
for tool in helmfile helm kubectl; do
  command -v "$tool" >/dev/null || die "$tool is not on PATH"
done
helm_version=$(helm version --short)
[[ $helm_version == v3.* ]] || die "helm $helm_version found; these layers need helm v3"

# 1. Releases stuck by an interrupted helm.
states=$(scripts/layer-status.sh "$layer") || true
stuck=$(awk '$2 ~ /^pending-/' <<<"$states")
if [[ -n $stuck ]]; then
  while read -r release state _; do
    printf 'run-helm-layer: error: release %s is stuck in %s (an earlier helm was interrupted)\n' \
      "$release" "$state" >&2
    printf '  fix: helm rollback %s -n %s --kube-context %s   (or helm uninstall it), then run again\n' \
      "${release#*/}" "${release%%/*}" "$KUBE_CONTEXT" >&2
  done <<<"$stuck"
  exit 1
fi

# 2. Sync.
state_values=()
if [[ $image_digests == true ]]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  {
    echo "images:"
    for dockerfile in services/*/Dockerfile; do
      [[ -e $dockerfile ]] || continue
      service=${dockerfile%/Dockerfile}
      service=${service##*/}
      digest=$(scripts/image-digest.sh "$service") ||
        die "the registry has no image for $service: run devgraph run images"
      printf '  %s: "%s"\n' "$service" "$digest"
    done
  } >"$tmp/images.yaml"
  state_values=(--state-values-file "$tmp/images.yaml")
fi
say "syncing $helmfile"
# (${a[@]+"${a[@]}"}: an empty array under set -u, also in the bash 3.2 of macOS)
helmfile -f "$helmfile" -e "$HELMFILE_ENVIRONMENT" --kube-context "$KUBE_CONTEXT" \
  ${state_values[@]+"${state_values[@]}"} sync

# 3. Smoke tests.
releases=$(helmfile -f "$helmfile" -e "$HELMFILE_ENVIRONMENT" --kube-context "$KUBE_CONTEXT" \
  list --skip-charts)
failed=()
while read -r name namespace enabled _; do
  [[ $enabled == true && $name == *-smoke ]] || continue
  selector="app.kubernetes.io/instance=$name,app.kubernetes.io/component=helm-test"
  kubectl --context "$KUBE_CONTEXT" -n "$namespace" delete jobs -l "$selector" --ignore-not-found
  say "helm test $name"
  passed=true
  helm test "$name" -n "$namespace" --kube-context "$KUBE_CONTEXT" --timeout 10m || passed=false
  logs_ok=true
  logs=$(kubectl --context "$KUBE_CONTEXT" -n "$namespace" logs -l "$selector" \
    --all-containers --prefix --tail=-1 2>&1) || logs_ok=false
  if [[ $logs_ok == true && -n $logs && $logs != "No resources found"* ]]; then
    say "logs of the test pods of $name:"
    printf '%s\n' "$logs"
  elif [[ $passed == true ]]; then
    warn "the suite $name passed, but its test pods were gone before their logs could be read (${logs:-no output})"
  else
    say "no logs for the test pods of $name: ${logs:-no output}"
  fi
  [[ $passed == true ]] || failed+=("$name")
done < <(tail -n +2 <<<"$releases")

[[ -z ${failed[*]+set} ]] || die "helm test failed for ${failed[*]} (logs above)"
say "layer $layer is synced and its smoke tests passed"
