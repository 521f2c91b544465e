#!/usr/bin/env bash
# Times the whole `devgraph check` and `devgraph list` commands on a generated project of
# 10,000 tasks in 20 included files, with hyperfine. See bench/README.md.
#
#   bench/run.sh                       # 10,000 tasks, 20 files
#   TASKS=50000 FILES=100 bench/run.sh # another size
#
# Writes bench/out/graph<TASKS>/ (the project), bench/out/hyperfine.md and .json (the
# results) and bench/out/machine.txt (what they were measured on). bench/out/ is gitignored.
set -euo pipefail
cd "$(dirname "$0")/.."

TASKS="${TASKS:-10000}"
FILES="${FILES:-20}"
OUT=bench/out
PROJECT="$OUT/graph$TASKS"

if ! command -v hyperfine >/dev/null 2>&1; then
    echo "run.sh: installing hyperfine" >&2
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update && $SUDO apt-get install -y hyperfine
fi

cargo build --release --locked
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
BIN="$(cd "$TARGET_DIR/release" && pwd)/devgraph"

mkdir -p "$OUT"
python3 bench/gen_graph.py "$PROJECT" --tasks "$TASKS" --files "$FILES"

# The project must be valid: `check` prints "ok: N tasks in M files" and exits 0.
"$BIN" -C "$PROJECT" check

{
    echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "commit:  $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- engine Cargo.toml Cargo.lock 2>/dev/null || echo ' (engine modified)')"
    echo "cpu:     $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') x $(nproc)"
    echo "memory:  $(free -h | awk '/^Mem:/ {print $2}')"
    echo "kernel:  $(uname -sr)"
    echo "rustc:   $(rustc --version)"
    echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min, before the runs)"
    hyperfine --version
} | tee "$OUT/machine.txt"

# -N: run without a shell, so nothing needs subtracting. Output goes to /dev/null.
hyperfine -N --warmup 3 \
    --command-name "devgraph check ($TASKS tasks)" "$BIN -C $PROJECT check" \
    --command-name "devgraph list ($TASKS tasks)" "$BIN -C $PROJECT list" \
    --export-markdown "$OUT/hyperfine.md" \
    --export-json "$OUT/hyperfine.json"

echo
echo "run.sh: results in $OUT/hyperfine.md, $OUT/hyperfine.json; machine in $OUT/machine.txt"
