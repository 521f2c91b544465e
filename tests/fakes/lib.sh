# shellcheck shell=bash
# Shared by the fake docker, k3d, kubectl, helm and helmfile (tests only, never shipped).
#
# The fakes keep a simulated world in $FAKE_WORLD:
#   containers/NAME/{id,running,port}        containers (the registry; cluster nodes are implied)
#   containers/NAME/repos/REPO/TAG           what a registry container holds: the digest
#   images/REF                               images built, pulled or tagged on this machine
#   cluster/{name,uid,running,registry}      the k3d cluster; kube-system's UID is `uid`
#   cluster/releases/NS/NAME                 one line: STATUS FIRST-DEPLOYED LAST-DEPLOYED REVISION CHART
#   cluster/jobs/NS/NAME, cluster/pods/NS/NAME/{labels,phase,log,gone}
#   knobs/                                   what tests/fakes/fake-world arranges
#   calls.log                                one line per call: START END SLEPT EXIT TOOL ARGS
#   errors.log                               every call the fakes refused as unsupported
# Mutations happen under an flock of $FAKE_WORLD/.lock; the delays (FAKE_DELAY_MS per unit,
# 50 by default) are slept outside it, so parallel calls overlap as real ones would.

set -euo pipefail

if [[ -z ${FAKE_WORLD:-} ]]; then
  printf 'fake %s: FAKE_WORLD is not set (the directory the fake tools keep their world in)\n' \
    "${0##*/}" >&2
  exit 2
fi

FAKE_TOOL=${0##*/}
FAKE_CALL="$FAKE_TOOL $*"
FAKE_START=$EPOCHREALTIME
FAKE_SLEPT_MS=0
W=$FAKE_WORLD
[[ -d $W ]] || mkdir -p "$W"

fake_log_call() {
  local rc=$?
  printf '%s %s %d.%03d %s %s\n' "$FAKE_START" "$EPOCHREALTIME" \
    $((FAKE_SLEPT_MS / 1000)) $((FAKE_SLEPT_MS % 1000)) "$rc" "$FAKE_CALL" >>"$W/calls.log"
}
trap fake_log_call EXIT

# Refuses arguments the fakes do not know: the scripts must not drift from what is checked.
unsupported() {
  printf 'fake %s: unsupported arguments: %s\n' "$FAKE_TOOL" "$FAKE_CALL" >>"$W/errors.log"
  printf 'fake %s: unsupported arguments: %s\n' "$FAKE_TOOL" "$FAKE_CALL" >&2
  printf 'fake %s: (tests/fakes accept only what scripts/ uses; extend both together)\n' \
    "$FAKE_TOOL" >&2
  exit 2
}

# Sleeps N units of FAKE_DELAY_MS.
delay() {
  local ms=$(($1 * ${FAKE_DELAY_MS:-50}))
  FAKE_SLEPT_MS=$((FAKE_SLEPT_MS + ms))
  ((ms > 0)) || return 0
  sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
}

# Holds the world's lock until the process exits.
lock_world() {
  exec 9>"$W/.lock"
  flock 9
}

# get VAR FILE: reads the first line of FILE into VAR (empty when FILE is missing).
get() {
  local -n _into=$1
  _into=
  [[ -f $2 ]] || return 0
  IFS= read -r _into <"$2" || true
}

# put FILE VALUE: writes VALUE to FILE atomically.
put() {
  [[ -d ${1%/*} ]] || mkdir -p "${1%/*}"
  printf '%s\n' "$2" >"$1.tmp.$$"
  mv -f "$1.tmp.$$" "$1"
}

# A new 64-hex-digit ID.
new_id() {
  local a b
  read -r a </proc/sys/kernel/random/uuid
  read -r b </proc/sys/kernel/random/uuid
  a=${a//-/}${b//-/}
  printf '%s' "$a"
}

# The current time as RFC 3339 with microseconds, in UTC.
now() {
  local secs=${EPOCHREALTIME%.*} micros=${EPOCHREALTIME#*.}
  TZ=UTC printf '%(%Y-%m-%dT%H:%M:%S)T.%s000Z' "$secs" "$micros"
}

# A name usable as a file name for an image reference or a repository path.
escape() {
  local s=${1//\//%}
  printf '%s' "$s"
}

# The registry container listening on host port $1, if any.
registry_on_port() {
  local dir port
  for dir in "$W"/containers/*/; do
    [[ -d $dir ]] || continue
    get port "$dir/port"
    if [[ $port == "$1" ]]; then
      dir=${dir%/}
      printf '%s' "${dir##*/}"
      return 0
    fi
  done
  return 1
}

# Whether the kube context $1 names the fake cluster and it answers; prints what kubectl
# (style "kubectl") or helm (style "helm") would print otherwise, and fails.
cluster_answers() {
  local context=$1 style=$2 name running
  get name "$W/cluster/name"
  if [[ -z $name || $context != "k3d-$name" ]]; then
    if [[ $style == helm ]]; then
      printf 'Error: Kubernetes cluster unreachable: context "%s" does not exist\n' "$context" >&2
    else
      printf 'error: context "%s" does not exist\n' "$context" >&2
    fi
    return 1
  fi
  get running "$W/cluster/running"
  if [[ $running != true ]]; then
    if [[ $style == helm ]]; then
      printf 'Error: Kubernetes cluster unreachable: Get "https://0.0.0.0:6443/version": dial tcp 0.0.0.0:6443: connect: connection refused\n' >&2
    else
      printf 'The connection to the server 0.0.0.0:6443 was refused - did you specify the right host or port?\n' >&2
    fi
    return 1
  fi
}

# read_release FILE: the fields of a release into the globals status, first, last,
# revision and chart (all empty when there is no such release).
# shellcheck disable=SC2034 # the callers read them
read_release() {
  status="" first="" last="" revision="" chart=""
  [[ -f $1 ]] || return 0
  read -r status first last revision chart <"$1" || true
}

# Whether the labels in file $1 (k=v,k=v) match the selector $2 (k=v,k=v).
labels_match() {
  local labels pair
  get labels "$1"
  local IFS=,
  for pair in $2; do
    [[ ,$labels, == *",$pair,"* ]] || return 1
  done
}
