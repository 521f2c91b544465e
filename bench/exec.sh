#!/usr/bin/env bash
# Execution benchmarks (see bench/README.md, "Execution"):
#  1. a cold run of 2,000 trivial tasks (`true`) at -j2, against ninja and make on the same
#     graph, every tool running the same command through /bin/sh;
#  2. a 40-task graph of `sleep 0.2` tasks, 8 layers deep, against its critical path (1.6 s).
# Needs hyperfine, ninja and make (installed with apt-get when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in hyperfine ninja; do
    command -v "$tool" >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine ninja-build; }
done
cargo build --release --locked -q
bin="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/release/devgraph"
out="$PWD/bench/out/exec"
rm -rf "$out" && mkdir -p "$out/trivial" "$out/critical"
export XDG_DATA_HOME="$out/data"

python3 - "$out" <<'PY'
import sys
out = sys.argv[1]
# 1. 2,000 trivial tasks: 40 layers of 50, each task depending on two of the layer before.
N, W = 2000, 50
toml = ['version = 1', '[settings]', 'default = "all"', 'shell = ["/bin/sh", "-c"]', '']
ninja = ['rule t', '  command = true', '']
make = ['.PHONY: all', 'all: ' + ' '.join(f't{i}' for i in range(N)), '']
for i in range(N):
    layer = i // W
    deps = sorted({f't{(layer - 1) * W + (i * 7 + k) % W}' for k in range(2)}) if layer else []
    toml += [f'[tasks.t{i}]', 'run = "true"', 'deps = [' + ', '.join(f'"{d}"' for d in deps) + ']', '']
    ninja.append(f'build t{i}: t' + (' | ' + ' '.join(deps) if deps else ''))
    make.append(f'.PHONY: t{i}\nt{i}: ' + ' '.join(deps) + '\n\t@true')
toml += ['[tasks.all]', 'deps = ["t*"]']
ninja += ['build all: phony ' + ' '.join(f't{i}' for i in range(N)), 'default all']
open(f'{out}/trivial/tasks.toml', 'w').write('\n'.join(toml) + '\n')
open(f'{out}/trivial/build.ninja', 'w').write('\n'.join(ninja) + '\n')
open(f'{out}/trivial/Makefile', 'w').write('\n'.join(make) + '\n')
# 2. 40 tasks of `sleep 0.2`: 8 layers of 5; critical path 8 x 0.2 s = 1.6 s.
toml = ['version = 1', '[settings]', 'default = "all"', 'shell = ["/bin/sh", "-c"]', '']
for i in range(40):
    layer = i // 5
    deps = sorted({f't{(layer - 1) * 5 + (i + k) % 5}' for k in range(2)}) if layer else []
    toml += [f'[tasks.t{i}]', 'run = "sleep 0.2"', 'deps = [' + ', '.join(f'"{d}"' for d in deps) + ']', '']
toml += ['[tasks.all]', 'deps = ["t*"]']
open(f'{out}/critical/tasks.toml', 'w').write('\n'.join(toml) + '\n')
PY

# Each devgraph run starts from no state (a cold run); ninja's outputs are never written, so
# it runs every edge each time, like make's phony targets.
hyperfine -N --warmup 1 --runs 10 \
    --prepare "rm -rf $out/trivial/.devgraph $out/trivial/.ninja_log" \
    --export-markdown "$out/trivial.md" \
    -n "devgraph run -j2" "$bin -C $out/trivial run -j2 -q" \
    -n "ninja -j2" "ninja -C $out/trivial -j2" \
    -n "make -j2" "make -C $out/trivial -j2 -s"
hyperfine -N --runs 5 \
    --prepare "rm -rf $out/critical/.devgraph" \
    --export-markdown "$out/critical.md" \
    -n "devgraph run -j5 (critical path 1.6 s)" "$bin -C $out/critical run -j5 -q" \
    -n "devgraph run -j2 (work / 2 = 4.0 s)" "$bin -C $out/critical run -j2 -q"
