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

Python 3.9+, standard library only. The output is deterministic.
"""

from __future__ import annotations

import argparse
import bisect
import fnmatch
import itertools
import os
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


# ----------------------------------------------------------------------------- main


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write a generated devgraph project (tasks.toml + layers/*.toml) to OUTDIR.",
    )
    parser.add_argument("outdir", type=Path, metavar="OUTDIR")
    parser.add_argument("--tasks", type=int, default=10_000, help="tasks in total, after matrix expansion (default 10000)")
    parser.add_argument("--files", type=int, default=20, help="included files, one layer each (default 20)")
    parser.add_argument("--matrix-size", type=int, default=50, help="values per matrix template, at most (default 50)")
    parser.add_argument("--ninja", action="store_true", help="also write OUTDIR/build.ninja with the same graph")
    parser.add_argument("--make", action="store_true", help="also write OUTDIR/Makefile with the same graph")
    parser.add_argument("-q", "--quiet", action="store_true", help="no summary on stderr")
    args = parser.parse_args(argv)

    shape, files = model(args.tasks, args.files, args.matrix_size)
    tasks = expand(files)
    if len(tasks) != args.tasks:
        raise SystemExit(f"gen_graph: BUG: made {len(tasks)} tasks, not {args.tasks}")

    out: Path = args.outdir
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
