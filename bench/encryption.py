"""What encryption at rest costs a conversation: message round trips through two identical
bots, one on Rasa's plain SQL tracker store (the baseline) and one on EncryptedTrackerStore.

The REST channel answers in the same HTTP response, so a round trip is one request. The two
bots run side by side and take turns, one whole conversation each, so machine noise falls on
both alike. Each conversation is a full order dialogue, its tracker growing turn by turn.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import requests

from bench.figures import Figure, percentile
from sandbox.launcher import LiveBot, start_bot

CONVERSATIONS = 40
SCRIPT = (
    "hi",
    "show me the catalog",
    "I'd like the pour-over kit",
    "what's the status of my order?",
    "cancel my order",
    "yes",
    "thanks",
    "bye",
)
STORES = {
    "plain": "connectors.storage.tracker_store.DatabaseTrackerStore",
    "encrypted": "connectors.storage.encrypted_tracker.EncryptedTrackerStore",
}


def converse(bot: LiveBot, customer: str, session: requests.Session) -> list[float]:
    """One conversation; the round trip of each message, in ms."""
    timings = []
    for text in SCRIPT:
        start = time.perf_counter()
        answer = session.post(
            f"{bot.rasa_url}/webhooks/rest/webhook",
            json={"sender": customer, "message": text},
            timeout=30,
        )
        timings.append((time.perf_counter() - start) * 1000)
        assert answer.status_code == 200 and answer.json(), (text, answer.status_code)
    return timings


def encryption_overhead() -> list[Figure]:
    with tempfile.TemporaryDirectory() as workdir:
        bots: dict[str, LiveBot] = {}
        try:
            for name, store in STORES.items():
                folder = Path(workdir) / name
                folder.mkdir()
                bots[name] = start_bot(
                    folder, {"LOG_LEVEL": "WARNING"}, {"rest": {}}, tracker_store={"type": store}
                )
            timings: dict[str, list[float]] = {name: [] for name in STORES}
            with requests.Session() as session:
                for name in STORES:  # warm-up: first turns load lazily
                    converse(bots[name], "warm-up", session)
                for number in range(CONVERSATIONS):
                    for name in STORES:
                        timings[name] += converse(bots[name], f"1555095{number:04d}", session)
        finally:
            for bot in bots.values():
                bot.stop()
    figures = []
    for label, fraction in (("p50", 0.50), ("p99", 0.99)):
        plain = percentile(timings["plain"], fraction)
        encrypted = percentile(timings["encrypted"], fraction)
        figures.append(
            Figure("tracker_encryption", f"round trip {label}", encrypted, "ms", baseline=plain)
        )
    return figures


if __name__ == "__main__":
    for figure in encryption_overhead():
        print(figure, f"ratio {figure.ratio:.3f}")
