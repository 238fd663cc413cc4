"""Runs every benchmark, prints one table and saves the figures to var/bench.json, with a
chart of the latency percentiles in var/bench.png. `make bench` is the one entry point;
`python -m bench NAME…` runs only the named benchmarks (while working on one).

A benchmark is a function returning a list of Figure; register it in BENCHMARKS. Figures
are reported with a baseline measured in the same run wherever one exists (e.g. the
encryption overhead: the same conversations with and without it, side by side), because
this machine is shared and absolute timings drift.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from bench.chart import save_chart
from bench.encryption import encryption_overhead
from bench.figures import Figure
from bench.flow import flow_endpoint
from bench.nlu import nlu_parse_latency
from bench.nlu_accuracy import nlu_accuracy
from bench.startup import rasa_startup
from bench.stripe_load import stripe_events
from bench.training import training_time

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "var" / "bench.json"
CHART = ROOT / "var" / "bench.png"
BENCHMARKS: list[Callable[[], list[Figure]]] = [
    nlu_parse_latency,
    nlu_accuracy,
    flow_endpoint,
    stripe_events,
    training_time,
    rasa_startup,
    encryption_overhead,
]


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
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps([asdict(f) for f in figures], indent=2) + "\n", encoding="utf-8")
    saved = [OUT, *([CHART] if save_chart(figures, CHART) else [])]
    print(render(figures))  # last, so the table ends the output
    print("saved " + ", ".join(str(path.relative_to(ROOT)) for path in saved))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
