"""Rasa's Redis lock store, with conversations named by the customer's pseudonym.

Rasa keys each conversation's ticket lock by its id (`lock:<WhatsApp id>`) and writes the
id into the lock's value; with this store both hold the keyed hash the tracker store files
the conversation under, so Redis never sees a phone number. endpoints.yml:

    lock_store:
      type: connectors.privacy.PseudonymousRedisLockStore
      url: REDIS-HOST
      port: 6379
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, RedisLockStore

from connectors.storage.keys import KeyRing


class PseudonymousRedisLockStore(RedisLockStore):
    """RedisLockStore whose every lock is taken under `KeyRing.pseudonym(conversation id)`."""

    def __init__(self, endpoint_config: Any) -> None:
        self.keys = KeyRing.from_env()
        super().__init__(host=endpoint_config.url or "localhost", **endpoint_config.kwargs)

    @asynccontextmanager
    async def lock(
        self,
        conversation_id: str,
        lock_lifetime: float = LOCK_LIFETIME,
        wait_time_in_seconds: float = 1,
    ) -> AsyncIterator[TicketLock]:
        pseudonym = self.keys.pseudonym(conversation_id)
        async with super().lock(pseudonym, lock_lifetime, wait_time_in_seconds) as ticket_lock:
            yield ticket_lock
