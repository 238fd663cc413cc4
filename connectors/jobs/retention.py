"""Raw webhook payloads and message bodies are kept no longer than RAW_BODY_RETENTION_DAYS."""

from __future__ import annotations

import asyncio
import logging

from connectors.privacy.rights import expire_raw_bodies
from connectors.storage.store import ConnectorStore

logger = logging.getLogger(__name__)

RETENTION_INTERVAL_SECONDS = 3600


async def expire_bodies_forever(store: ConnectorStore, retention_seconds: float) -> None:
    """Drops raw payloads and bodies older than `retention_seconds`, hourly."""
    while True:
        try:
            dropped = await asyncio.to_thread(expire_raw_bodies, store, retention_seconds)
            if any(dropped.values()):
                logger.info("retention: dropped raw bodies %s", dropped)
        except Exception:
            logger.exception("retention sweep failed; trying again later")
        await asyncio.sleep(RETENTION_INTERVAL_SECONDS)
