#!/usr/bin/env python3
"""Turns the hyperfine JSON exports of bench/drift.sh into the markdown tables of
bench/README.md ("Drift benchmark"): mean ± σ, min, max, runs, and each command's ratio
to a reference command of the same hyperfine run.

    python3 bench/drift_table.py EXPORT.json [--vs NAME] [--bytes N]

--vs NAME   the reference command (default: the second one); the ratio column is
            mean(command) / mean(NAME), with σ propagated from both σs.
--bytes N   the bytes each command reads: adds a throughput column (MiB/s = N / mean) and the
            throughput ratio, mean(NAME) / mean(command).

Python 3.9+, standard library only.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import List, Optional


def fmt_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.3f} s"
    return f"{seconds * 1000:.1f} ms"


def fmt_pm(mean: float, sd: float) -> str:
    if mean >= 1:
        return f"{mean:.3f} s ± {sd:.3f} s"
    return f"{mean * 1000:.1f} ms ± {sd * 1000:.1f} ms"


def ratio(a_mean: float, a_sd: float, b_mean: float, b_sd: float) -> tuple:
    r = a_mean / b_mean
    return r, r * math.sqrt((a_sd / a_mean) ** 2 + (b_sd / b_mean) ** 2)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("export")
    parser.add_argument("--vs", default=None)
    parser.add_argument("--bytes", type=int, default=None)
    args = parser.parse_args(argv)

    with open(args.export) as f:
        results = json.load(f)["results"]
    by_name = {r["command"]: r for r in results}
    ref = by_name[args.vs] if args.vs else results[min(1, len(results) - 1)]
    ref_sd = ref["stddev"] or 0.0

    head = "| Command | Mean ± σ | Median | Min | Max | Runs | Ratio to `" + ref["command"] + "` |"
    rule = "|:---|---:|---:|---:|---:|---:|---:|"
    if args.bytes:
        head += " Throughput | Throughput ratio |"
        rule += "---:|---:|"
    print(head)
    print(rule)
    for r in results:
        sd = r["stddev"] or 0.0
        rr, rr_sd = ratio(r["mean"], sd, ref["mean"], ref_sd)
        row = (
            f"| `{r['command']}` | {fmt_pm(r['mean'], sd)} | {fmt_time(r['median'])} | {fmt_time(r['min'])} | "
            f"{fmt_time(r['max'])} | {len(r['times'])} | "
            + ("1 |" if r is ref else f"{rr:.2f} ± {rr_sd:.2f} |")
        )
        if args.bytes:
            mib_s = args.bytes / r["mean"] / 2**20
            tr, tr_sd = ratio(ref["mean"], ref_sd, r["mean"], sd)
            row += f" {mib_s:,.0f} MiB/s | " + ("1 |" if r is ref else f"{tr:.2f} ± {tr_sd:.2f} |")
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
