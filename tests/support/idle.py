"""Waiting until the live bot has finished its work, instead of sleeping "long enough".

A test that checks that nothing more arrives (no duplicate confirmation, no answer to a
refused post) waits until every running replica's health route shows no turn in flight and
no message, Stripe event or notification pending, and the emulators have no delivery under
way, for IDLE_SECONDS in a row. Whatever the bot would still send has been sent then, on a
slow machine as on a fast one.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import requests

from sandbox.loopback import LoopbackServer

WAIT_SECONDS = 30.0
IDLE_SECONDS = 0.5
POLL_SECONDS = 0.1
# The health route's counts of work the bot accepted and has not finished.
BACKLOG = ("in_flight", "pending_messages", "pending_stripe_events", "pending_notifications")


def backlog(rasa_url: str) -> int | None:
    """The work a Rasa server has accepted and not finished (its own turns in flight, and the
    shared database's pending messages, events and notifications); None when it is down."""
    try:
        answer = requests.get(f"{rasa_url}/webhooks/whatsapp/", timeout=5)
    except requests.ConnectionError:
        return None
    if not answer.ok:  # 503: its database is unreachable
        return None
    health = answer.json()
    return sum(int(health.get(name, 0)) for name in BACKLOG)


def wait_until_idle(rasa_urls: Sequence[str], emulators: Sequence[LoopbackServer] = ()) -> None:
    """Returns once the bot's replicas at `rasa_urls` (those running) and `emulators` have
    been idle for IDLE_SECONDS; fails after WAIT_SECONDS of work."""
    deadline = time.monotonic() + WAIT_SECONDS
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < IDLE_SECONDS:
        counts = [backlog(url) for url in rasa_urls]
        running = [count for count in counts if count is not None]
        assert running, "no replica answers its health route"
        busy = [type(emulator).__name__ for emulator in emulators if emulator.busy]
        if any(running) or busy:
            assert time.monotonic() < deadline, (
                f"still busy after {WAIT_SECONDS} s: {counts} {busy}"
            )
            quiet_since = time.monotonic()
        time.sleep(POLL_SECONDS)
