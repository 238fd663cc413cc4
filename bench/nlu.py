"""NLU parse latency of the trained model (the cost every customer message pays first)."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from rasa.utils.log_utils import configure_structlog

from bench.figures import Figure, percentile

MODEL = Path(__file__).resolve().parent.parent / "models" / "shop.tar.gz"
MESSAGES = [
    "hello",
    "I'd like two bags of espresso beans please",
    "where is my order?",
    "cancel my order",
    "what do you sell",
    "yes",
]
ROUNDS = 100


def nlu_parse_latency() -> list[Figure]:
    from rasa.core.agent import Agent  # TensorFlow: loaded only by the benchmark that runs it

    configure_structlog(logging.WARNING)  # unconfigured, Rasa logs every parse at debug
    agent = Agent.load(str(MODEL))

    async def measure() -> list[float]:
        samples = []
        for _ in range(ROUNDS):
            for text in MESSAGES:
                start = time.perf_counter()
                await agent.parse_message(text)
                samples.append((time.perf_counter() - start) * 1000)
        return samples

    samples = asyncio.run(measure())
    return [
        Figure("nlu_parse", "p50", percentile(samples, 0.50), "ms"),
        Figure("nlu_parse", "p99", percentile(samples, 0.99), "ms"),
    ]
