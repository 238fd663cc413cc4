"""make bench's plumbing: the table, the latency chart and memory readings
(the benchmarks themselves run only under `make bench`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from actions.flow_screens import next_screen
from bench.__main__ import render, selected
from bench.chart import latency_series, save_chart
from bench.figures import Figure
from bench.flow import CART, EXPECTED_SCREENS, flow_steps
from bench.intent_scores import Prediction, score
from bench.memory import rss_mib
from shop_contract.catalog import default_catalog

FIGURES = [
    Figure("flow_data_exchange_8_customers", "p50", 115.0, "ms"),
    Figure("flow_data_exchange_8_customers", "p99", 240.0, "ms"),
    Figure("stripe_events_20_per_s_60_s", "ack p99", 8.0, "ms"),
    Figure("flow_ping_16_connections", "throughput", 2500.0, "req/s", 4000.0),
    Figure("rasa_train_force", "duration", 75.0, "s"),
]


def test_the_table_has_every_figure_and_its_ratio() -> None:
    table = render(FIGURES).splitlines()
    assert table[0].split() == ["benchmark", "figure", "value", "unit", "baseline", "ratio"]
    assert len(table) == 1 + len(FIGURES)
    assert table[4].split()[-2:] == ["4e+03", "0.62"]


def test_the_chart_shows_the_latency_percentiles(tmp_path: Path) -> None:
    assert latency_series(FIGURES) == {
        "flow_data_exchange_8_customers": {"p50": 115.0, "p99": 240.0},
        "stripe_events_20_per_s_60_s ack": {"p99": 8.0},
    }
    chart = tmp_path / "bench.png"
    assert save_chart(FIGURES, chart)
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 5_000
    assert not save_chart(FIGURES[3:], tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()


def test_memory_of_a_process_tree_and_benchmark_selection() -> None:
    assert 10 < rss_mib(os.getpid()) < 10_000
    assert [b.__name__ for b in selected(["training_time"])] == ["training_time"]
    with pytest.raises(SystemExit, match="unknown benchmark nope"):
        selected(["nope"])


def test_held_out_scores_count_a_fallback_as_wrong_and_find_the_weakest_intent() -> None:
    predictions = [
        Prediction("greet", "greet", ("greet", "thanks", "help")),
        Prediction("greet", "greet", ("greet", "help", "thanks")),
        Prediction("ask_delivery", "nlu_fallback", ("ask_product", "ask_delivery", "help")),
        Prediction("ask_delivery", "ask_delivery", ("ask_delivery", "help", "greet")),
        Prediction("order", "nlu_fallback", ("help", "greet", "thanks")),
        Prediction("order", "cancel_order", ("cancel_order", "order", "help")),
    ]
    scores = score(predictions)
    assert scores.accuracy == pytest.approx(3 / 6)
    assert scores.fallback_share == pytest.approx(2 / 6)
    assert scores.fallback_offers_it == pytest.approx(1 / 2)
    assert (scores.worst_intent, scores.worst_accuracy, scores.examples) == ("order", 0.0, 6)
    with pytest.raises(ValueError, match="no held-out examples"):
        score([])


def test_the_flow_bench_walks_a_three_line_cart_to_the_end() -> None:
    """The requests `make bench` sends (without reading the answers, for speed) are an order
    Flow the screens accept: each leads to the next screen, none to an error."""
    replies = [next_screen(default_catalog(), s, data, "t") for s, data in flow_steps()]
    assert [r["screen"] for r in replies] == EXPECTED_SCREENS
    assert not any("error_message" in r["data"] for r in replies)
    params = replies[-1]["data"]["extension_message_response"]["params"]
    assert params["cart"] == CART and len(CART.split(",")) == 3
