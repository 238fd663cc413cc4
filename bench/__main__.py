"""Runs every benchmark, prints one table and saves the figures to var/bench.json.

A benchmark is a function returning a list of Figure; register it in BENCHMARKS. Figures
are reported with a baseline measured in the same run wherever one exists, because this
machine is shared and absolute timings drift.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

from bench.encryption import encryption_overhead
from bench.figures import Figure
from bench.flow import flow_endpoint
from bench.nlu import nlu_parse_latency
from bench.stripe_load import stripe_events

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = [nlu_parse_latency, flow_endpoint, stripe_events, encryption_overhead]


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


def main() -> int:
    figures: list[Figure] = []
    for benchmark in BENCHMARKS:
        figures += benchmark()
    print(render(figures))
    out = ROOT / "var" / "bench.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps([asdict(f) for f in figures], indent=2) + "\n", encoding="utf-8")
    print(f"saved {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
