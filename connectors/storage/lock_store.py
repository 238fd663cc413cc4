"""Rasa's Redis lock store, with conversations named by the customer's pseudonym.

Rasa keys each conversation's ticket lock by its id (`lock:<WhatsApp id>`) and writes the
id into the lock's value; with this store both hold the keyed hash the tracker store files
the conversation under, so Redis never sees a phone number. endpoints.yml:

    lock_store:
      type: connectors.storage.lock_store.PseudonymousRedisLockStore
      url: REDIS-HOST
      port: 6379
      lock_lifetime: 60   # optional, seconds

`lock_lifetime` (else Rasa's TICKET_LOCK_LIFETIME, else 60 s) is the longest a turn holds a
conversation's lock: it is how long a replica that died holding one blocks the customer, and
a turn slower than it (a slow action server, say) lets the next message of that customer run
beside it, so keep it above the action server's timeout. Rasa reads TICKET_LOCK_LIFETIME
once, when its lock store module is imported, and binds it as a default argument; this store
reads its setting when it is created, so a process that imported Rasa earlier
(sandbox/warm_start.py) can still be given its own.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, RedisLockStore

from connectors.storage.keys import KeyRing
from shop_contract.env_settings import ConfigError


class PseudonymousRedisLockStore(RedisLockStore):
    """RedisLockStore whose every lock is taken under `KeyRing.pseudonym(conversation id)`."""

    def __init__(self, endpoint_config: Any) -> None:
        self.keys = KeyRing.from_env()
        options = dict(endpoint_config.kwargs)
        self.lock_lifetime = lock_lifetime(options.pop("lock_lifetime", None))
        super().__init__(host=endpoint_config.url or "localhost", **options)

    @asynccontextmanager
    async def lock(
        self,
        conversation_id: str,
        lock_lifetime: float | None = None,
        wait_time_in_seconds: float = 1,
    ) -> AsyncIterator[TicketLock]:
        pseudonym = self.keys.pseudonym(conversation_id)
        lifetime = self.lock_lifetime if lock_lifetime is None else lock_lifetime
        async with super().lock(pseudonym, lifetime, wait_time_in_seconds) as ticket_lock:
            yield ticket_lock


def lock_lifetime(configured: object) -> float:
    """Seconds from endpoints.yml's `lock_lifetime` (a finite number above 0, or such a
    number as text, as `${VAR}` gives), else Rasa's."""
    if configured is None:
        return float(LOCK_LIFETIME)
    try:
        if isinstance(configured, bool):
            raise ValueError
        seconds = float(configured)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(
            f"lock_store: lock_lifetime must be a number of seconds above 0, not {configured!r}"
        )
    return seconds
