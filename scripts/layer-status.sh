#!/usr/bin/env bash
# The live state of the Helmfile layer LAYER (a folder under layers/), one line per release:
#   NAMESPACE/NAME STATUS FIRST-DEPLOYED
# It is the identity of the infra:NN task. A re-sync that changes nothing keeps it (the
# first-deployed time stays), so the layers after it do not re-run; a reinstall (a new
# cluster) or a release that is not `deployed` changes it. A release that is not installed
# prints `absent`. Exits 1 when any release is not deployed, 2 when the cluster does not
# answer.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { printf 'layer-status: error: %s\n' "$*" >&2; exit 2; }

[[ $# -eq 1 ]] || die "usage: scripts/layer-status.sh LAYER (a folder under layers/, e.g. 24-auth)"
layer=$1
helmfile=layers/$layer/helmfile.yaml
[[ -f $helmfile ]] || die "$helmfile does not exist"
for name in KUBE_CONTEXT HELMFILE_ENVIRONMENT; do
  [[ -n ${!name:-} ]] || die "$name is not set (devgraph sets it from [env] in tasks.toml)"
done
for tool in helmfile helm; do
  command -v "$tool" >/dev/null || die "$tool is not on PATH"
done

# NAME NAMESPACE ENABLED INSTALLED LABELS CHART VERSION, after a header line.
releases=$(helmfile -f "$helmfile" -e "$HELMFILE_ENVIRONMENT" --kube-context "$KUBE_CONTEXT" \
  list --skip-charts) || die "helmfile list failed for $helmfile"

status=0
while read -r name namespace enabled _; do
  [[ $enabled == true ]] || continue
  if out=$(helm status "$name" -n "$namespace" --kube-context "$KUBE_CONTEXT" -o yaml 2>&1); then
    # The `info:` block holds the release's status and when it was first installed.
    state="" first="" info=false
    while IFS= read -r line; do
      case $line in
        info:) info=true ;;
        [^\ ]*) info=false ;;
        "  status: "*) [[ $info == false ]] || state=${line#  status: } ;;
        "  first_deployed: "*) [[ $info == false ]] || first=${line#  first_deployed: } ;;
      esac
    done <<<"$out"
    first=${first//\"/}
    printf '%s/%s %s %s\n' "$namespace" "$name" "${state:-unknown}" "${first:-unknown}"
    [[ $state == deployed ]] || status=1
  elif [[ $out == *"release: not found"* ]]; then
    printf '%s/%s absent\n' "$namespace" "$name"
    status=1
  else
    printf '%s\n' "$out" >&2
    die "cannot read release $namespace/$name from $KUBE_CONTEXT"
  fi
done < <(tail -n +2 <<<"$releases")
exit "$status"
