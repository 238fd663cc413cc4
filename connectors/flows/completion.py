"""A Flow's completion, once per flow token, whichever way it arrives first.

The last screen of the order Flow reaches the connector twice: as the endpoint's answer
(connectors/flows/endpoint.py) and as the `nfm_reply` WhatsApp posts to the messages
webhook. Both hand their completion turn to `complete_once`, which runs it for one of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from connectors.jobs.leases import heartbeat, renewal_interval
from connectors.rasa_patches.action_failures import watch_actions
from connectors.storage.flow_claims import FLOW_CLAIM_LEASE_SECONDS, FlowClaim
from connectors.storage.store import ConnectorStore


async def complete_once(
    store: ConnectorStore,
    flow_token: str,
    claimer: str,
    turn: Callable[[], Awaitable[Any]],
    lease_seconds: float = FLOW_CLAIM_LEASE_SECONDS,
) -> FlowClaim:
    """Runs a Flow's completion turn once per flow token, under the claim of `claimer`;
    "ours" when it ran now, else what stopped it ("done": the order exists; "held":
    another completion's turn runs).

    The token is claimed before the turn, renewed while it runs, marked done when the turn
    succeeded, and given back when it failed — a custom action failed (Rasa swallows that;
    watch_actions notices) or the turn raised — so that a later completion, or WhatsApp's
    re-delivery of the nfm_reply, can still make the order. A claim left by a crash goes
    to the replay of the same nfm_reply, or to any completion once its lease ran out.
    """
    claim = await asyncio.to_thread(store.flow_claims.claim, flow_token, claimer, lease_seconds)
    if claim != "ours":
        return claim
    renewing = heartbeat(
        lambda: store.flow_claims.renew(flow_token, claimer),
        renewal_interval(lease_seconds),
        "a flow token's claim",
    )
    try:
        async with renewing, watch_actions():
            await turn()
    except Exception:
        await asyncio.to_thread(store.flow_claims.release, flow_token, claimer)
        raise
    await asyncio.to_thread(store.flow_claims.finish, flow_token, claimer)
    return claim
