"""Runs every benchmark, prints one table and saves the figures to var/bench.json, with a
chart of the latency percentiles in var/bench.png. `make bench` is the one entry point;
`python -m bench NAME…` runs only the named benchmarks (while working on one).

A benchmark is a function returning a list of Figure; register it in BENCHMARKS. A figure
computed from others (a ratio, an overhead) is a function of the measured figures, keyed
"benchmark/name": register it in DERIVED and it runs after the benchmarks, on what they
measured (skipped when its inputs are missing, e.g. in a partial run). Figures are reported
with a baseline measured in the same run wherever one exists, because this machine is
shared and absolute timings drift.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path

from bench.chart import save_chart
from bench.encryption import encryption_overhead
from bench.figures import Figure
from bench.flow import flow_endpoint
from bench.nlu import nlu_parse_latency
from bench.stripe_load import stripe_events
from bench.training import training_time

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "var" / "bench.json"
CHART = ROOT / "var" / "bench.png"
BENCHMARKS: list[Callable[[], list[Figure]]] = [
    nlu_parse_latency,
    flow_endpoint,
    stripe_events,
    training_time,
    encryption_overhead,
]
#: Figures computed from the measured ones (e.g. the encryption overhead: the Flow
#: endpoint's latency with and without encryption). Each gets every figure measured so far
#: as {"benchmark/name": Figure}; a KeyError means an input is missing and it is skipped.
DERIVED: list[Callable[[Mapping[str, Figure]], list[Figure]]] = []


def by_key(figures: list[Figure]) -> dict[str, Figure]:
    return {f"{f.benchmark}/{f.name}": f for f in figures}


def derive(
    figures: list[Figure], derived: list[Callable[[Mapping[str, Figure]], list[Figure]]]
) -> list[Figure]:
    """The figures of `derived`, each computed from `figures`."""
    extra: list[Figure] = []
    for compute in derived:
        try:
            extra += compute(by_key(figures + extra))
        except KeyError as missing:
            print(f"skipped {compute.__name__}: no figure {missing}", file=sys.stderr)
    return extra


def render(figures: list[Figure]) -> str:
    rows = [("benchmark", "figure", "value", "unit", "baseline", "ratio")]
    for f in figures:
        baseline = "" if f.baseline is None else f"{f.baseline:.3g}"
        ratio = "" if f.ratio is None else f"{f.ratio:.2f}"
        rows.append((f.benchmark, f.name, f"{f.value:.3g}", f.unit, baseline, ratio))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows
    )


def selected(names: list[str]) -> list[Callable[[], list[Figure]]]:
    known = {b.__name__: b for b in BENCHMARKS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown benchmark {unknown[0]}; one of: {', '.join(known)}")
    return [known[n] for n in names] if names else BENCHMARKS


def main(argv: list[str]) -> int:
    benchmarks = selected(argv)
    figures: list[Figure] = []
    for benchmark in benchmarks:
        print(f"running {benchmark.__name__}…", file=sys.stderr, flush=True)
        figures += benchmark()
    figures += derive(figures, DERIVED)
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps([asdict(f) for f in figures], indent=2) + "\n", encoding="utf-8")
    saved = [OUT, *([CHART] if save_chart(figures, CHART) else [])]
    print(render(figures))  # last, so the table ends the output
    print("saved " + ", ".join(str(path.relative_to(ROOT)) for path in saved))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
