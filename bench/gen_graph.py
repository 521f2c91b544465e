#!/usr/bin/env python3
"""Writes a generated devgraph project, for the loader benchmark (bench/README.md).

    python3 bench/gen_graph.py OUTDIR [--tasks 10000] [--files 20] [--matrix-size 50]
                                      [--ninja] [--make]

OUTDIR gets a root `tasks.toml` and `--files` included files `layers/layerNN.toml`,
together defining exactly `--tasks` tasks (after matrix expansion). Layer NN holds:

  * matrix templates `[tasks."layerNN:KIND:{unit}"]`, each expanding over `--matrix-size`
    values of `unit` (about half of the layer's tasks);
  * plain tasks `[tasks."layerNN:lib:NNNN"]` (the other half);
  * a group `[tasks.layerNN]` with `deps = ["layerNN:*"]`: the whole layer.

Deps are by name (`layerNN:lib:0004`, templated `layerNN:gen:{unit}`) and by glob
(`layerNN:*`, `layerMM:build:*`, `layerMM:lib:003*`), and only ever point into the same
layer at something defined earlier or into the previous layer, so the graph is a DAG:
each layer waits for the previous one through its group. The root file holds `[settings]`,
`[env]`, a `setup` task that layer 00 starts from and `all`, the group of every layer.

The project is modelled first (`Def`s per file), then expanded with devgraph's own rules
(`expand`) into a concrete graph, and written out by emitters: `emit_devgraph` always,
`emit_ninja` (`--ninja`: OUTDIR/build.ninja) and `emit_make` (`--make`: OUTDIR/Makefile)
on request. The ninja and make files hold the equivalent graph, each task a stamp file
under `stamps/` made by running `true`. Another output format is one more emitter over
the same expanded graph.

Two more modes write projects with real input files, for the drift benchmark
(bench/drift.sh, "Drift benchmark" in bench/README.md):

    python3 bench/gen_graph.py OUTDIR --mode drift [--tasks 1000] [--inputs 100]
                               [--width 50] [--fan-in 3] [--min-size 1024] [--max-size 4096]
    python3 bench/gen_graph.py OUTDIR --mode hash [--big 8] [--big-mib 100]
                               [--small 51200] [--min-size 1024] [--max-size 7168]

`--mode drift` writes a layered graph of `--tasks` tasks, `--width` per layer, each with
`--inputs` text files `src/<task>/mNN/fNN.txt` of `--min-size`..`--max-size` bytes, and
the same graph three times: `tasks.toml` + `layers/lNN.toml` (`inputs = ["src/<task>/**"]`),
`build.ninja` and `Makefile` (each task an edge/rule whose inputs are its files plus its
deps' stamps). Task `lLL-tTTT` (L > 0) depends on tasks T, T+1, .., T+fan_in-1 (mod width)
of layer L-1; `all` depends on the last layer. Every task runs `true > stamps/<tool>/<task>`.

`--mode hash` writes one task `hash` whose inputs are `--big` files of `--big-mib` MiB
(`big/bNN.bin`, pseudo-random bytes) and `--small` text files (`small/dNNN/fNN.txt`, 100 per
folder), and `files.list`, the NUL-separated list of those files for `b3sum`.

Both refuse an OUTDIR that exists and is not empty.

Python 3.9+, standard library only. The output is deterministic.
"""

from __future__ import annotations

import argparse
import bisect
import fnmatch
import itertools
import os
import random
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

# Matrix template kinds, in the order a layer defines them.
KINDS = ["gen", "build", "test", "image", "lint", "docs", "pack", "deploy"]
# Tasks the root file defines: `setup` and `all`.
ROOT_TASKS = 2


@dataclass
class Def:
    """One `[tasks.KEY]` table as written: a plain task, a group or a matrix template."""

    key: str
    desc: str
    run: Optional[str] = None
    deps: List[str] = field(default_factory=list)
    inputs: List[str] = field(default_factory=list)
    outputs: List[str] = field(default_factory=list)
    env: List[Tuple[str, str]] = field(default_factory=list)
    hash_env: List[str] = field(default_factory=list)
    requires_tools: List[str] = field(default_factory=list)
    probe: Optional[str] = None
    probe_timeout: Optional[str] = None
    timeout: Optional[str] = None
    retries: Optional[int] = None
    retry_delay: Optional[str] = None
    matrix: List[Tuple[str, List[str]]] = field(default_factory=list)


@dataclass
class File:
    """A task file: its root-relative path, its defs, and (root only) the file header."""

    path: str
    defs: List[Def]
    header: str = ""


@dataclass
class Task:
    """One task after expansion: its name and the names of its deps."""

    name: str
    deps: List[str]


@dataclass
class Shape:
    """How the task budget is split: per layer, `templates` matrix templates of `size`
    values each, `plain[i]` plain tasks in layer i, and one group per layer."""

    width: int
    templates: int
    size: int
    plain: List[int]


# ----------------------------------------------------------------------------- the model


def plan(tasks: int, files: int, matrix_size: int) -> Shape:
    layer_tasks = tasks - ROOT_TASKS
    if files < 1:
        raise SystemExit("gen_graph: --files must be 1 or more")
    if layer_tasks < 3 * files:
        raise SystemExit(
            f"gen_graph: --tasks {tasks} is too few for {files} files; "
            f"use at least {3 * files + ROOT_TASKS}"
        )
    budgets = [layer_tasks // files + (1 if i < layer_tasks % files else 0) for i in range(files)]
    # Half of the smallest layer (its group aside) comes from templates, at least four of
    # them when they fit. Every layer has the same templates of the same size, so
    # `layerMM:KIND:{unit}` exists for every layer.
    matrix_budget = (min(budgets) - 1) // 2
    size = max(1, min(matrix_size, matrix_budget // 4))
    templates = min(matrix_budget // size, len(KINDS))
    plain = [b - 1 - templates * size for b in budgets]
    return Shape(width=max(2, len(str(files - 1))), templates=templates, size=size, plain=plain)


def kind(j: int) -> str:
    return KINDS[j]


def layer_name(shape: Shape, layer: int) -> str:
    return f"layer{layer:0{shape.width}d}"


def lib_name(prefix: str, n: int) -> str:
    return f"{prefix}:lib:{n:04d}"


def layer_file(shape: Shape, layer: int) -> File:
    p = layer_name(shape, layer)
    q = layer_name(shape, layer - 1) if layer > 0 else None
    units = [f"u{i:03d}" for i in range(shape.size)]
    defs: List[Def] = []

    for j in range(shape.templates):
        k = kind(j)
        d = Def(
            key=f"{p}:{k}:{{unit}}",
            desc=f"{k} for {{unit}} in {p}",
            run=f'mkdir -p out/{p}/{k} && echo "{k} $unit" > out/{p}/{k}/$unit.stamp',
            inputs=[f"src/{p}/{{unit}}/**/*.rs", f"src/{p}/{{unit}}/{k}.toml"],
            outputs=[f"out/{p}/{k}/{{unit}}.stamp"],
            matrix=[("unit", units)],
        )
        if j == 0:
            # The first template waits for the previous layer, by name.
            d.deps = [q, f"{q}:{k}:{{unit}}"] if q else ["setup"]
        else:
            # The previous template of this layer by (templated) name, and the same kind in
            # the previous layer by glob.
            d.deps = [f"{p}:{kind(j - 1)}:{{unit}}"] + ([f"{q}:{k}:*"] if q else [])
        if j % 2 == 0:
            d.timeout = "10m"
        if j == 1:
            d.env = [("KIND", k), ("OPT_LEVEL", "2")]
            d.hash_env = ["OPT_LEVEL"]
        if j == shape.templates - 1:
            d.probe = f"test -f out/{p}/{k}/$unit.stamp"
        defs.append(d)

    plain = shape.plain[layer]
    prev_plain = shape.plain[layer - 1] if layer > 0 else 0
    for n in range(plain):
        name = lib_name(p, n)
        deps: List[str] = []
        if n > 0:
            deps.append(lib_name(p, (n - 1) // 2))  # a binary tree inside the layer
        elif q:
            deps.append(q)  # the previous layer's group
        else:
            deps.append("setup")
        if shape.templates:
            deps.append(f"{p}:{kind(n % shape.templates)}:u{n % shape.size:03d}")
        if q and prev_plain:
            deps.append(lib_name(q, n % prev_plain))
            if n % 10 == 5:
                deps.append(f"{q}:lib:00{n % 100 // 10}*")  # ten libs of the previous layer
        d = Def(
            key=name,
            desc=f"library {n} of {p}",
            run=f"mkdir -p out/{p} && cc -c src/{p}/lib{n:04d}/*.c -o out/{p}/lib{n:04d}.o",
            deps=deps,
            inputs=[f"src/{p}/lib{n:04d}/**/*.c", f"!src/{p}/lib{n:04d}/**/generated/**"],
            outputs=[f"out/{p}/lib{n:04d}.o"],
        )
        if n % 3 == 0:
            d.timeout = "5m" if n % 2 else "1m30s"
        if n % 5 == 0:
            d.probe = f"test -f out/{p}/lib{n:04d}.o"
        if n % 15 == 0:
            d.probe_timeout = "2s"
        if n % 7 == 0:
            d.env = [("LIB", f"lib{n:04d}")]
            d.hash_env = ["CC", "CFLAGS"]
        if n % 11 == 0:
            d.requires_tools = ["cc"]
        if n % 20 == 0:
            d.retries = 2
            d.retry_delay = "500ms"
        defs.append(d)

    defs.append(Def(key=p, desc=f"everything in {p}", deps=[f"{p}:*"]))
    return File(path=f"layers/{p}.toml", defs=defs)


def model(tasks: int, files: int, matrix_size: int) -> Tuple[Shape, List[File]]:
    shape = plan(tasks, files, matrix_size)
    header = (
        "# Generated by bench/gen_graph.py: a synthetic project for the loader benchmark.\n"
        "version = 1\n"
        'include = ["layers/*.toml"]\n'
        "\n"
        "[settings]\n"
        'default = "all"\n'
        "jobs = 4\n"
        "\n"
        "[env]\n"
        'CC = "cc"\n'
        'CFLAGS = "-O2"\n'
    )
    root = File(
        path="tasks.toml",
        header=header,
        defs=[
            Def(
                key="setup",
                desc="prepare the output folder",
                run="mkdir -p out",
                outputs=["out/.setup"],
                requires_tools=["mkdir"],
            ),
            Def(key="all", desc="every layer", deps=["layer" + "?" * shape.width]),
        ],
    )
    layers = [layer_file(shape, i) for i in range(files)]
    return shape, [root] + layers


# ------------------------------------------------------------------- expansion (devgraph's rules)

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def substitute(text: str, values: Dict[str, str]) -> str:
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def is_glob(text: str) -> bool:
    return any(c in text for c in "*?[{")


def expand(files: List[File]) -> List[Task]:
    """The tasks in definition order (root file first, then the includes by path), each
    dep name or glob resolved to task names as devgraph does: a glob never matches the
    task itself, and repeats are dropped."""
    ordered = [files[0]] + sorted(files[1:], key=lambda f: f.path)
    instances: List[Tuple[str, List[str]]] = []
    for f in ordered:
        for d in f.defs:
            names = [var for var, _ in d.matrix]
            for combo in itertools.product(*(values for _, values in d.matrix)):
                values = dict(zip(names, combo))
                instances.append((substitute(d.key, values), [substitute(x, values) for x in d.deps]))
    sorted_names = sorted(name for name, _ in instances)
    known = set(sorted_names)
    if len(known) != len(instances):
        raise SystemExit("gen_graph: BUG: duplicate task names")
    tasks = []
    for name, deps in instances:
        resolved: List[str] = []
        for dep in deps:
            if is_glob(dep):
                prefix = re.split(r"[*?\[{\\]", dep, maxsplit=1)[0]
                start = bisect.bisect_left(sorted_names, prefix)
                matched = []
                for other in sorted_names[start:]:
                    if not other.startswith(prefix):
                        break
                    if other != name and fnmatch.fnmatchcase(other, dep):
                        matched.append(other)
                if not matched:
                    raise SystemExit(f"gen_graph: BUG: `{name}`: glob `{dep}` matches nothing")
            elif dep in known:
                matched = [dep]
            else:
                raise SystemExit(f"gen_graph: BUG: `{name}`: unknown dep `{dep}`")
            for m in matched:
                if m not in resolved:
                    resolved.append(m)
        tasks.append(Task(name=name, deps=resolved))
    check_acyclic(tasks)
    return tasks


def check_acyclic(tasks: List[Task]) -> None:
    index = {t.name: i for i, t in enumerate(tasks)}
    waiting = [len(t.deps) for t in tasks]
    dependents: List[List[int]] = [[] for _ in tasks]
    for i, t in enumerate(tasks):
        for d in t.deps:
            dependents[index[d]].append(i)
    ready = [i for i, w in enumerate(waiting) if w == 0]
    done = 0
    while ready:
        i = ready.pop()
        done += 1
        for j in dependents[i]:
            waiting[j] -= 1
            if waiting[j] == 0:
                ready.append(j)
    if done != len(tasks):
        raise SystemExit("gen_graph: BUG: the generated graph has a cycle")


# ----------------------------------------------------------------------------- emitters


def toml_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def toml_list(items: List[str]) -> str:
    return "[" + ", ".join(toml_str(i) for i in items) + "]"


def toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else toml_str(key)


def render_def(d: Def) -> str:
    lines = [f"[tasks.{toml_key(d.key)}]"]
    if d.matrix:
        pairs = ", ".join(f"{var} = {toml_list(values)}" for var, values in d.matrix)
        lines.append(f"matrix = {{ {pairs} }}")
    lines.append(f"desc = {toml_str(d.desc)}")
    if d.deps:
        lines.append(f"deps = {toml_list(d.deps)}")
    if d.inputs:
        lines.append(f"inputs = {toml_list(d.inputs)}")
    if d.outputs:
        lines.append(f"outputs = {toml_list(d.outputs)}")
    if d.env:
        pairs = ", ".join(f"{k} = {toml_str(v)}" for k, v in d.env)
        lines.append(f"env = {{ {pairs} }}")
    if d.hash_env:
        lines.append(f"hash_env = {toml_list(d.hash_env)}")
    if d.requires_tools:
        lines.append(f"requires_tools = {toml_list(d.requires_tools)}")
    if d.run is not None:
        lines.append(f"run = {toml_str(d.run)}")
    if d.probe is not None:
        lines.append(f"probe = {toml_str(d.probe)}")
    if d.probe_timeout is not None:
        lines.append(f"probe_timeout = {toml_str(d.probe_timeout)}")
    if d.timeout is not None:
        lines.append(f"timeout = {toml_str(d.timeout)}")
    if d.retries is not None:
        lines.append(f"retries = {d.retries}")
    if d.retry_delay is not None:
        lines.append(f"retry_delay = {toml_str(d.retry_delay)}")
    return "\n".join(lines) + "\n"


def emit_devgraph(out: Path, files: List[File]) -> None:
    layers = out / "layers"
    layers.mkdir(parents=True, exist_ok=True)
    # Files of an earlier run with more --files would still be included.
    for stale in layers.glob("layer*.toml"):
        stale.unlink()
    for f in files:
        body = f.header if f.header else "# Generated by bench/gen_graph.py. Included from tasks.toml.\n"
        body += "".join("\n" + render_def(d) for d in f.defs)
        (out / f.path).write_text(body)


def stamp(name: str) -> str:
    """The stamp file of a task; task names hold `:`, which ninja and make paths avoid."""
    return "stamps/" + re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def check_stamps(tasks: List[Task]) -> None:
    if len({stamp(t.name) for t in tasks}) != len(tasks):
        raise SystemExit("gen_graph: two tasks map to one stamp file")


def emit_ninja(out: Path, tasks: List[Task]) -> None:
    check_stamps(tasks)
    lines = [
        "# Generated by bench/gen_graph.py: the graph of tasks.toml, each task a stamp file.",
        "ninja_required_version = 1.5",
        "",
        "rule task",
        "  command = true > $out",
        "  description = $task",
        "",
    ]
    for t in tasks:
        deps = "".join(" " + stamp(d) for d in t.deps)
        lines.append(f"build {stamp(t.name)}: task{' |' + deps if deps else ''}")
        lines.append(f"  task = {t.name}")
    lines += ["", f"default {stamp('all')}", ""]
    (out / "build.ninja").write_text("\n".join(lines))


def emit_make(out: Path, tasks: List[Task]) -> None:
    check_stamps(tasks)
    lines = [
        "# Generated by bench/gen_graph.py: the graph of tasks.toml, each task a stamp file.",
        f".DEFAULT_GOAL := {stamp('all')}",
        "",
        "stamps:",
        "\t@mkdir -p $@",
        "",
    ]
    for t in tasks:
        deps = "".join(" " + stamp(d) for d in t.deps)
        lines.append(f"{stamp(t.name)}:{deps} | stamps")
        lines.append("\t@true > $@")
    lines.append("")
    (out / "Makefile").write_text("\n".join(lines))


# ----------------------------------------------------------------- drift and hash projects

WORDS = (
    "let mut fn pub struct impl self return match if else for while in use mod const static "
    "value index count buffer state task graph node edge hash input output path file stamp "
    "layer width depth cache entry record digest plan run check load parse emit write read "
    "open close flush sync error result option some none ok err vec map set string len push"
).split()


def text_corpus(rng: random.Random, lines: int = 4096) -> List[str]:
    """Source-like lines to build file contents from."""
    corpus = []
    for _ in range(lines):
        indent = "    " * rng.randrange(0, 4)
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(3, 12)))
        end = rng.choice([";", " {", "", ",", " }"])
        corpus.append(f"{indent}{words}{end}\n")
    return corpus


def text_file(rng: random.Random, corpus: List[str], header: str, size: int) -> bytes:
    """About `size` bytes of text, starting with `header` so every file's content differs."""
    parts = [header]
    n = len(header)
    while n < size:
        line = rng.choice(corpus)
        parts.append(line)
        n += len(line)
    return "".join(parts).encode()[:size]


def fresh_dir(out: Path) -> None:
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"gen_graph: {os.fspath(out)} exists and is not empty; remove it first")
    out.mkdir(parents=True, exist_ok=True)


def drift_name(layer: int, i: int) -> str:
    return f"l{layer:02d}-t{i:03d}"


def drift_graph(tasks: int, width: int, fan_in: int) -> List[Task]:
    """The layered graph: task i of layer L needs tasks i .. i+fan_in-1 (mod width) of layer L-1."""
    if tasks < 1 or width < 1 or fan_in < 1:
        raise SystemExit("gen_graph: --tasks, --width and --fan-in must be 1 or more")
    graph = []
    for n in range(tasks):
        layer, i = divmod(n, width)
        deps = []
        if layer > 0:
            prev = min(width, tasks - (layer - 1) * width)
            for k in range(min(fan_in, prev)):
                dep = drift_name(layer - 1, (i + k) % prev)
                if dep not in deps:
                    deps.append(dep)
        graph.append(Task(name=drift_name(layer, i), deps=deps))
    return graph


def input_files(task: str, inputs: int) -> List[str]:
    """A task's input files, root-relative: ten per folder, as a source tree would have."""
    return [f"src/{task}/m{j // 10:02d}/f{j % 10:02d}.txt" for j in range(inputs)]


def emit_drift(out: Path, graph: List[Task], inputs: int, width: int, min_size: int, max_size: int) -> int:
    """Writes the input files and the three build files; returns the bytes of input."""
    rng = random.Random(1000)
    corpus = text_corpus(rng)
    total = 0
    for t in graph:
        for rel in input_files(t.name, inputs):
            path = out / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            data = text_file(rng, corpus, f"// {rel}\n", rng.randint(min_size, max_size))
            path.write_bytes(data)
            total += len(data)
    for tool in ("dg", "ninja", "make"):
        (out / "stamps" / tool).mkdir(parents=True, exist_ok=True)
    layers = (len(graph) + width - 1) // width
    last = [t.name for t in graph if t.name.startswith(f"l{layers - 1:02d}-")]

    # devgraph: tasks.toml + one file per layer.
    (out / "layers").mkdir(exist_ok=True)
    (out / "tasks.toml").write_text(
        "# Generated by bench/gen_graph.py --mode drift (bench/drift.sh).\n"
        "version = 1\n"
        'include = ["layers/*.toml"]\n'
        "\n"
        "[settings]\n"
        'default = "all"\n'
        "# The shell ninja and make run commands with.\n"
        'shell = ["/bin/sh", "-c"]\n'
        "\n"
        "[tasks.all]\n"
        'desc = "the last layer, and so everything"\n'
        f"deps = {toml_list(last)}\n"
    )
    for layer in range(layers):
        body = ["# Generated by bench/gen_graph.py --mode drift. Included from tasks.toml.\n"]
        for t in graph[layer * width:(layer + 1) * width]:
            body.append(f"\n[tasks.{toml_key(t.name)}]\n")
            body.append(f'desc = "task {t.name}"\n')
            if t.deps:
                body.append(f"deps = {toml_list(t.deps)}\n")
            body.append(f"inputs = {toml_list([f'src/{t.name}/**'])}\n")
            body.append(f"run = {toml_str(f'true > stamps/dg/{t.name}')}\n")
        (out / "layers" / f"l{layer:02d}.toml").write_text("".join(body))

    # ninja: an edge per task, its files as explicit inputs and its deps' stamps as implicit ones.
    lines = [
        "# Generated by bench/gen_graph.py --mode drift: the graph of tasks.toml.",
        "ninja_required_version = 1.5",
        "",
        "rule task",
        "  command = true > $out",
        "  description = $out",
        "",
    ]
    for t in graph:
        files = " ".join(input_files(t.name, inputs))
        deps = "".join(f" stamps/ninja/{d}" for d in t.deps)
        lines.append(f"build stamps/ninja/{t.name}: task {files}{' |' + deps if deps else ''}")
    lines += ["", "build all: phony " + " ".join(f"stamps/ninja/{n}" for n in last), "default all", ""]
    (out / "build.ninja").write_text("\n".join(lines))

    # make: a rule per task, the same prerequisites.
    lines = [
        "# Generated by bench/gen_graph.py --mode drift: the graph of tasks.toml.",
        "# No built-in rules: without this, make tries every implicit rule (RCS, SCCS, ...) on",
        "# each of the input files, which takes it 45 s instead of 0.3 s for 1,000 x 100.",
        "MAKEFLAGS += --no-builtin-rules",
        ".SUFFIXES:",
        ".DEFAULT_GOAL := all",
        ".PHONY: all",
        "all: " + " ".join(f"stamps/make/{n}" for n in last),
        "",
    ]
    for t in graph:
        files = " ".join(input_files(t.name, inputs))
        deps = "".join(f" stamps/make/{d}" for d in t.deps)
        lines.append(f"stamps/make/{t.name}: {files}{deps}")
        lines.append("\t@true > $@")
    lines.append("")
    (out / "Makefile").write_text("\n".join(lines))
    return total


def emit_hash(out: Path, big: int, big_mib: int, small: int, min_size: int, max_size: int) -> int:
    """Writes the hashing project; returns the bytes of input."""
    rng = random.Random(2000)
    corpus = text_corpus(rng)
    files: List[str] = []
    total = 0
    chunk = 1 << 20
    for b in range(big):
        rel = f"big/b{b:02d}.bin"
        (out / "big").mkdir(parents=True, exist_ok=True)
        with open(out / rel, "wb") as f:
            for _ in range(big_mib):
                f.write(rng.randbytes(chunk))
        files.append(rel)
        total += big_mib * chunk
    for n in range(small):
        rel = f"small/d{n // 100:03d}/f{n % 100:02d}.txt"
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        data = text_file(rng, corpus, f"// {rel}\n", rng.randint(min_size, max_size))
        path.write_bytes(data)
        files.append(rel)
        total += len(data)
    (out / "files.list").write_bytes(b"".join(f.encode() + b"\0" for f in files))
    (out / "tasks.toml").write_text(
        "# Generated by bench/gen_graph.py --mode hash (bench/drift.sh).\n"
        "version = 1\n"
        "\n"
        "[settings]\n"
        'default = "hash"\n'
        'shell = ["/bin/sh", "-c"]\n'
        "\n"
        "[tasks.hash]\n"
        f'desc = "{big} files of {big_mib} MiB and {small} small ones"\n'
        'inputs = ["big/**", "small/**"]\n'
        'run = "true"\n'
    )
    return total


# ----------------------------------------------------------------------------- main


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write a generated devgraph project (tasks.toml + layers/*.toml) to OUTDIR.",
    )
    parser.add_argument("outdir", type=Path, metavar="OUTDIR")
    parser.add_argument("--mode", choices=["load", "drift", "hash"], default="load",
                        help="load: the loader benchmark's project (default); drift: tasks with "
                        "real input files, and build.ninja and Makefile; hash: one task over ~1 GiB")
    parser.add_argument("--tasks", type=int, default=None,
                        help="tasks in total, after matrix expansion (default 10000; --mode drift: 1000)")
    parser.add_argument("--files", type=int, default=20, help="included files, one layer each (default 20)")
    parser.add_argument("--matrix-size", type=int, default=50, help="values per matrix template, at most (default 50)")
    parser.add_argument("--ninja", action="store_true", help="also write OUTDIR/build.ninja with the same graph")
    parser.add_argument("--make", action="store_true", help="also write OUTDIR/Makefile with the same graph")
    drift = parser.add_argument_group("--mode drift and --mode hash")
    drift.add_argument("--inputs", type=int, default=100, help="input files per task (default 100)")
    drift.add_argument("--width", type=int, default=50, help="tasks per layer (default 50)")
    drift.add_argument("--fan-in", type=int, default=3, help="deps per task on the previous layer (default 3)")
    drift.add_argument("--min-size", type=int, default=1024, help="smallest text file, bytes (default 1024)")
    drift.add_argument("--max-size", type=int, default=None,
                       help="largest text file, bytes (default 4096; --mode hash: 7168)")
    drift.add_argument("--big", type=int, default=8, help="--mode hash: large files (default 8)")
    drift.add_argument("--big-mib", type=int, default=100, help="--mode hash: MiB per large file (default 100)")
    drift.add_argument("--small", type=int, default=51200, help="--mode hash: small files (default 51200)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no summary on stderr")
    args = parser.parse_args(argv)
    out: Path = args.outdir

    if args.mode == "drift":
        tasks = 1000 if args.tasks is None else args.tasks
        max_size = 4096 if args.max_size is None else args.max_size
        graph = drift_graph(tasks, args.width, args.fan_in)
        fresh_dir(out)
        total = emit_drift(out, graph, args.inputs, args.width, args.min_size, max_size)
        if not args.quiet:
            edges = sum(len(t.deps) for t in graph)
            print(
                f"gen_graph: {tasks} tasks (+ all) in layers of {args.width}, {edges} dep edges, "
                f"{tasks * args.inputs} input files ({total / 2**20:.1f} MiB); wrote tasks.toml, "
                f"layers/*.toml, build.ninja, Makefile, src/ in {os.fspath(out)}",
                file=sys.stderr,
            )
        return 0
    if args.mode == "hash":
        max_size = 7168 if args.max_size is None else args.max_size
        fresh_dir(out)
        total = emit_hash(out, args.big, args.big_mib, args.small, args.min_size, max_size)
        if not args.quiet:
            print(
                f"gen_graph: {args.big} x {args.big_mib} MiB + {args.small} small files = "
                f"{total} bytes ({total / 2**30:.3f} GiB); wrote tasks.toml, files.list, big/, small/ "
                f"in {os.fspath(out)}",
                file=sys.stderr,
            )
        return 0

    tasks_wanted = 10_000 if args.tasks is None else args.tasks
    shape, files = model(tasks_wanted, args.files, args.matrix_size)
    tasks = expand(files)
    if len(tasks) != tasks_wanted:
        raise SystemExit(f"gen_graph: BUG: made {len(tasks)} tasks, not {tasks_wanted}")

    out.mkdir(parents=True, exist_ok=True)
    emit_devgraph(out, files)
    written = ["tasks.toml", f"layers/*.toml ({args.files})"]
    if args.ninja:
        emit_ninja(out, tasks)
        written.append("build.ninja")
    if args.make:
        emit_make(out, tasks)
        written.append("Makefile")

    if not args.quiet:
        defs = sum(len(f.defs) for f in files)
        edges = sum(len(t.deps) for t in tasks)
        print(
            f"gen_graph: {len(tasks)} tasks from {defs} definitions "
            f"(per layer: templates {shape.templates} x {shape.size} values), {edges} dep edges; "
            f"wrote {', '.join(written)} in {os.fspath(out)}",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
