"""The latency percentiles of a bench run as one PNG bar chart (matplotlib, no display)."""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI

import matplotlib.pyplot as plt  # after choosing the backend

from bench.figures import Figure

_PERCENTILE = re.compile(r"\bp(\d{2})\b")


def latency_series(figures: list[Figure]) -> dict[str, dict[str, float]]:
    """{measurement: {"p50": ms, "p99": ms, …}} for every figure in ms named with a pNN."""
    series: dict[str, dict[str, float]] = {}
    for figure in figures:
        match = _PERCENTILE.search(figure.name)
        if figure.unit != "ms" or not match:
            continue
        what = _PERCENTILE.sub("", figure.name).strip()
        label = f"{figure.benchmark} {what}".strip()
        series.setdefault(label, {})[f"p{match.group(1)}"] = figure.value
    return series


def save_chart(figures: list[Figure], path: Path) -> bool:
    """Writes the chart to `path`; False (and no file) when no figure is a percentile."""
    series = latency_series(figures)
    if not series:
        return False
    percentiles = sorted({p for values in series.values() for p in values})
    labels = list(series)
    width = 0.8 / len(percentiles)
    fig, ax = plt.subplots(figsize=(max(8.0, 1.1 * len(labels)), 5.5))
    for index, percentile in enumerate(percentiles):
        positions = [n + index * width for n in range(len(labels))]
        values = [series[label].get(percentile, math.nan) for label in labels]  # nan: no bar
        ax.bar(positions, values, width, label=percentile)
    ax.set_xticks([n + width * (len(percentiles) - 1) / 2 for n in range(len(labels))])
    ax.set_xticklabels(
        [label.replace("_", " ") for label in labels], rotation=30, ha="right", fontsize=8
    )
    ax.set_yscale("log")
    ax.set_ylabel("latency (ms, log scale)")
    ax.set_title("make bench: latency percentiles")
    ax.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # matplotlib 3.5 (pinned by Rasa) calls pyparsing names deprecated since.
        warnings.simplefilter("ignore", DeprecationWarning)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
