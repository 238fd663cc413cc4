"""The shop's side of a hand-over in the live tests: its inbox (the hand-over webhook's
receiver, sandbox/shop_inbox.py), the operator API over HTTP, and the bot's database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa

from connectors.storage.handovers import Handover
from connectors.storage.opening import open_store
from connectors.storage.schema import handovers
from sandbox.launcher import LiveBot
from sandbox.processes import ROOT
from sandbox.shop_inbox import ShopInbox
from tests.support.idle import POLL_SECONDS, WAIT_SECONDS

OPERATOR_PATH = "/webhooks/whatsapp/operator/handovers"


@dataclass
class Staff:
    """The shop's staff: what their inbox received, and their calls to the operator API."""

    bot: LiveBot
    inbox: ShopInbox
    token: str
    database: Path  # the bot's SQLite file
    settings: dict[str, str]  # the bot's HANDOVER_* settings, for `make chat`

    def call(self, path: str, body: Any = None, token: str | None = None) -> requests.Response:
        """POST (GET without a body) to the operator API, with the staff's token by default."""
        url = f"{self.bot.rasa_url}{OPERATOR_PATH}{path}"
        headers = {"Authorization": f"Bearer {token or self.token}"}
        if body is None and not path.endswith("resume"):
            return requests.get(url, headers=headers, timeout=10)
        data = body if isinstance(body, bytes) else None
        json_body = None if isinstance(body, bytes) else body
        return requests.post(url, data=data, json=json_body, headers=headers, timeout=10)

    def chat_cli(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """`make chat ARGS=…` on the bot's database (from a folder without a `.env`)."""
        env = {**os.environ, **self.settings, "DATABASE_URL": f"sqlite:///{self.database}"}
        env["PYTHONPATH"] = str(ROOT)
        env.pop("ENV_FILE", None)
        return subprocess.run(
            [sys.executable, "-m", "scripts.chat_cli", *argv],
            cwd=self.database.parent,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def handover_of(self, customer: str) -> Handover:
        """The customer's current hand-over, as the bot stored it."""
        store = open_store(f"sqlite:///{self.database}")
        try:
            found = store.handovers.current(customer)
        finally:
            store.engine.dispose()
        assert found is not None, "no hand-over for this customer"
        return found

    def recorded(self, message_id: str, customer: str) -> bool:
        """Whether the bot recorded the customer's message (a second record is refused)."""
        store = open_store(f"sqlite:///{self.database}")
        try:
            return not store.messages.record_inbound(message_id, customer)
        finally:
            store.engine.dispose()

    def events(self, ref: str, kind: str, count: int = 1) -> list[dict[str, Any]]:
        """The inbox's events of this hand-over and type, once there are `count`."""
        deadline = time.monotonic() + WAIT_SECONDS
        while len(found := self.inbox.received(kind, ref)) < count:
            assert time.monotonic() < deadline, (kind, self.inbox.received(ref=ref))
            time.sleep(POLL_SECONDS)
        return found

    def pass_time(self, ref: str, minutes: float) -> None:
        """As if the hand-over had been opened `minutes` earlier (nobody wrote since)."""
        engine = sa.create_engine(f"sqlite:///{self.database}")
        try:
            with engine.begin() as connection:
                connection.execute(
                    handovers.update()
                    .where(handovers.c.ref == ref)
                    .values(opened_at=handovers.c.opened_at - minutes * 60)
                )
        finally:
            engine.dispose()
