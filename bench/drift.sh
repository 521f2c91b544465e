#!/usr/bin/env bash
# The drift benchmarks (bench/README.md, "Drift benchmark"), with hyperfine, one hyperfine
# run per comparison so that each ratio comes from the same run:
#
#   1. noop   `devgraph run` on the converged graph of 1,000 tasks x 100 input files, against
#             `ninja` on the same graph as build.ninja (and `make -q`, `make`, for reference);
#   2. leaf   the same after one input file of a leaf task changed (hyperfine --prepare
#             appends to it before every run): one task re-runs;
#   3. cone   the same after one input file of a first-layer task changed: its cone of
#             dependents re-runs (400 tasks with the default shape); also both at -j1;
#   4. hash   hashing ~1 GiB of inputs with a cold stat cache (no .devgraph/): `devgraph plan`
#             and `devgraph run` against b3sum over the same files, with a warm page cache,
#             and with a cold one when /proc/sys/vm/drop_caches is writable.
#
#   bench/drift.sh                     # everything (about 10 minutes on 2 cores)
#   STEPS="noop leaf" bench/drift.sh   # some steps only
#   REGEN=1 bench/drift.sh             # write the projects afresh (default: reuse them)
#   RUNS=30 bench/drift.sh             # hyperfine --runs 30 (default: at least 10 runs and 3 s)
#   TASKS=1000 INPUTS=100 WIDTH=50 FAN_IN=3 BIG=8 BIG_MIB=100 SMALL=51200 bench/drift.sh
#   OUT=/tmp/small TASKS=100 INPUTS=10 WIDTH=10 BIG=2 BIG_MIB=4 SMALL=500 bench/drift.sh  # a quick try
#   DEVGRAPH=/tmp/snap/target/release/devgraph bench/drift.sh  # that binary; builds nothing
#
# Writes bench/out/drift/ and bench/out/hash/ (the projects), bench/out/drift-<step>.{md,json}
# (hyperfine's exports) and bench/out/drift-machine.txt. bench/out/ is gitignored.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"

TASKS="${TASKS:-1000}"
INPUTS="${INPUTS:-100}"
WIDTH="${WIDTH:-50}"
FAN_IN="${FAN_IN:-3}"
BIG="${BIG:-8}"
BIG_MIB="${BIG_MIB:-100}"
SMALL="${SMALL:-51200}"
STEPS="${STEPS:-noop leaf cone hash}"
REGEN="${REGEN:-0}"
OUT="${OUT:-$ROOT/bench/out}"
DRIFT="$OUT/drift"
HASH="$OUT/hash"

say() { echo "drift.sh: $*" >&2; }
want() { [[ " $STEPS " == *" $1 "* ]]; }

# ------------------------------------------------------------------------------- tools

missing_apt=()
command -v hyperfine >/dev/null 2>&1 || missing_apt+=(hyperfine)
command -v ninja >/dev/null 2>&1 || missing_apt+=(ninja-build)
command -v make >/dev/null 2>&1 || missing_apt+=(make)
if [ "${#missing_apt[@]}" -gt 0 ]; then
    say "installing ${missing_apt[*]}"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update && $SUDO apt-get install -y "${missing_apt[@]}"
fi
if ! command -v b3sum >/dev/null 2>&1; then
    say "installing b3sum"
    cargo install b3sum --locked
fi

# DEVGRAPH=/path/to/devgraph measures that binary instead of building this tree (e.g. a
# snapshot of one commit: `git archive HEAD | tar -x -C /tmp/snap`, built there).
if [ -n "${DEVGRAPH:-}" ]; then
    BIN="$(cd "$(dirname "$DEVGRAPH")" && pwd)/$(basename "$DEVGRAPH")"
else
    cargo build --release --locked
    TARGET_DIR="${CARGO_TARGET_DIR:-target}"
    BIN="$(cd "$TARGET_DIR/release" && pwd)/devgraph"
fi

# devgraph keeps its secrets key under $XDG_DATA_HOME: use a throwaway one.
XDG_DATA_HOME="$(mktemp -d)"
export XDG_DATA_HOME
trap 'rm -rf "$XDG_DATA_HOME"' EXIT

# ------------------------------------------------------------------------------- projects

mkdir -p "$OUT"
if [ "$REGEN" = 1 ] || [ ! -f "$DRIFT/tasks.toml" ]; then
    rm -rf "$DRIFT"
    python3 bench/gen_graph.py "$DRIFT" --mode drift --tasks "$TASKS" --inputs "$INPUTS" \
        --width "$WIDTH" --fan-in "$FAN_IN"
fi
if want hash && { [ "$REGEN" = 1 ] || [ ! -f "$HASH/tasks.toml" ]; }; then
    rm -rf "$HASH"
    python3 bench/gen_graph.py "$HASH" --mode hash --big "$BIG" --big-mib "$BIG_MIB" --small "$SMALL"
fi

LAYERS=$(((TASKS + WIDTH - 1) / WIDTH))
LEAF_TASK="$(printf 'l%02d-t%03d' $((LAYERS - 1)) $(((TASKS - 1) % WIDTH)))"
CONE_TASK="l00-t000"
LEAF_FILE="$DRIFT/src/$LEAF_TASK/m00/f00.txt"
CONE_FILE="$DRIFT/src/$CONE_TASK/m00/f00.txt"
# Appends a new line (the time in ns) to the file: new content, new mtime, every run.
edit() { echo "sh -c 'date +%s%N >> $1'"; }

# Converges all three tools. The stat cache re-reads a file changed less than 2 s before it was
# hashed (engine/digest.rs, RACY_MARGIN_NS), so wait, and run devgraph twice.
converge() {
    sleep 3
    "$BIN" -C "$DRIFT" -q run
    "$BIN" -C "$DRIFT" -q run
    ninja -C "$DRIFT" >/dev/null
    make -s -C "$DRIFT"
    "$BIN" -C "$DRIFT" plan --exit-code >/dev/null || { say "devgraph has not converged"; exit 1; }
    ninja -C "$DRIFT" -n | grep -q 'no work to do' || { say "ninja has not converged"; exit 1; }
    make -q -C "$DRIFT" || { say "make has not converged"; exit 1; }
}

"$BIN" -C "$DRIFT" check
if want noop || want leaf || want cone; then
    say "converging $DRIFT (the first time, every task runs)"
    converge
    # How many tasks each edit makes run (devgraph's plan and ninja's dry run agree).
    for f in "$LEAF_FILE" "$CONE_FILE"; do
        cp -p "$f" "$OUT/drift-edit.tmp"
        date +%s%N >>"$f"
        say "after an edit of ${f#"$DRIFT"/}: devgraph plan: $("$BIN" -C "$DRIFT" plan | tail -1);" \
            "ninja -n: $(ninja -C "$DRIFT" -n | grep -c '^\[') edges"
        mv "$OUT/drift-edit.tmp" "$f"
    done
    converge
fi

machine() {
    echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC')"
    if [ -n "${DEVGRAPH:-}" ]; then
        echo "binary:  $BIN (given; not built from this tree)"
    else
        echo "binary:  $BIN (built from this tree)"
    fi
    echo "sha256:  $(sha256sum "$BIN" | cut -c1-16)"
    echo "tree:    $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- engine Cargo.toml Cargo.lock 2>/dev/null || echo " (engine modified: diff sha256 $(git diff HEAD -- engine Cargo.toml Cargo.lock | sha256sum | cut -c1-12))")"
    echo "cpu:     $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') x $(nproc)"
    echo "memory:  $(free -h | awk '/^Mem:/ {print $2}')"
    echo "kernel:  $(uname -sr)"
    echo "fs:      $(df -T "$OUT" | awk 'NR == 2 {print $2 " on " $1}')"
    echo "rustc:   $(rustc --version)"
    echo "tools:   $(hyperfine --version), ninja $(ninja --version), $(make --version | head -1), $(b3sum --version)"
    echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min, before the runs)"
}
machine | tee "$OUT/drift-machine.txt"

bench() { # STEP hyperfine-args...
    local step="$1"
    shift
    say "step $step (load $(cut -d' ' -f1 /proc/loadavg))"
    hyperfine -N --warmup 3 ${RUNS:+--runs "$RUNS"} --export-markdown "$OUT/drift-$step.md" --export-json "$OUT/drift-$step.json" "$@"
}

# ------------------------------------------------------------------------------- 1. no-op

if want noop; then
    bench noop \
        -n "devgraph run" "$BIN -C $DRIFT run" \
        -n "ninja" "ninja -C $DRIFT" \
        -n "make -q" "make -q -C $DRIFT" \
        -n "make" "make -C $DRIFT"
fi

# ------------------------------------------------------------------------------- 2. one file

if want leaf; then
    bench leaf --prepare "$(edit "$LEAF_FILE")" \
        -n "devgraph run" "$BIN -C $DRIFT run" \
        -n "ninja" "ninja -C $DRIFT" \
        -n "make" "make -C $DRIFT"
fi

if want cone; then
    bench cone --prepare "$(edit "$CONE_FILE")" \
        -n "devgraph run" "$BIN -C $DRIFT run" \
        -n "ninja" "ninja -C $DRIFT" \
        -n "devgraph run -j1" "$BIN -C $DRIFT run -j1" \
        -n "ninja -j1" "ninja -j1 -C $DRIFT" \
        -n "make" "make -C $DRIFT"
fi

# ------------------------------------------------------------------------------- 3. hashing

if want hash; then
    "$BIN" -C "$HASH" check
    BYTES=$(find "$HASH/big" "$HASH/small" -type f -printf '%s\n' | awk '{s += $1} END {print s}')
    FILES=$(find "$HASH/big" "$HASH/small" -type f | wc -l)
    say "hash: $FILES files, $BYTES bytes"
    echo "hash:    $FILES files, $BYTES bytes" >>"$OUT/drift-machine.txt"
    FIND_B3="sh -c 'cd $HASH && find big small -type f -print0 | xargs -0 b3sum'"
    LIST_B3="sh -c 'cd $HASH && xargs -0 -a files.list b3sum'"
    bench hash-warm --prepare "rm -rf $HASH/.devgraph" \
        -n "devgraph plan" "$BIN -C $HASH plan" \
        -n "b3sum (find, xargs)" "$FIND_B3" \
        -n "b3sum (file list)" "$LIST_B3" \
        -n "devgraph run" "$BIN -C $HASH run"
    if sync && echo 3 2>/dev/null >/proc/sys/vm/drop_caches; then
        bench hash-cold --prepare "sh -c 'rm -rf $HASH/.devgraph; sync; echo 3 > /proc/sys/vm/drop_caches'" \
            -n "devgraph plan" "$BIN -C $HASH plan" \
            -n "b3sum (find, xargs)" "$FIND_B3" \
            -n "b3sum (file list)" "$LIST_B3"
    else
        say "cannot drop the page cache (not root?): warm page cache only"
    fi
fi

# ------------------------------------------------------------------------------- tables

for step in noop leaf cone; do
    if want "$step" && [ -f "$OUT/drift-$step.json" ]; then
        echo
        echo "## $step"
        python3 bench/drift_table.py "$OUT/drift-$step.json" --vs ninja
    fi
done
for step in hash-warm hash-cold; do
    if want hash && [ -f "$OUT/drift-$step.json" ]; then
        echo
        echo "## $step ($BYTES bytes)"
        python3 bench/drift_table.py "$OUT/drift-$step.json" --vs "b3sum (find, xargs)" --bytes "$BYTES"
    fi
done
echo
say "results in $OUT/drift-*.md and .json; machine in $OUT/drift-machine.txt"
