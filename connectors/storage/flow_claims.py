"""Flow token claims: one order per WhatsApp Flow, whichever path its completion takes
(the Flow endpoint's last screen, or the nfm_reply on the messages webhook)."""

from __future__ import annotations

import time
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from connectors.storage.schema import flow_token_claims
from connectors.storage.sealing import digest

FlowClaim = Literal["ours", "done", "held"]
# A flow token's claim not renewed for this long was left by a process that died mid-turn.
FLOW_CLAIM_LEASE_SECONDS = 120.0


class FlowClaims:
    """Who holds each flow token's completion turn, and whether that turn made the order."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def claim(
        self, flow_token: str, claimer: str, lease_seconds: float = FLOW_CLAIM_LEASE_SECONDS
    ) -> FlowClaim:
        """Claims a flow token for the completion turn of `claimer` (the digest of the
        nfm_reply's message id, or a claim token of the Flow endpoint's turn).

        "ours": this claimer holds it now (first claim; its own again, as a replay after a
        crash; or another claimer's whose turn stopped renewing it for `lease_seconds`: that
        process died); "done": a turn made the order; "held": another claimer's turn still
        runs, so this completion must wait (be replayed) rather than be dropped.
        """
        stored = digest(flow_token)
        while True:
            try:
                with self.engine.begin() as connection:
                    connection.execute(
                        flow_token_claims.insert().values(
                            flow_token=stored, claimed_at=time.time(), claimer=claimer
                        )
                    )
                return "ours"
            except IntegrityError:
                pass
            with self.engine.connect() as connection:
                row = connection.execute(
                    sa.select(flow_token_claims).where(flow_token_claims.c.flow_token == stored)
                ).first()
            if row is None:
                continue  # released meanwhile: claim it again
            if row.done_at is not None:
                return "done"
            now = time.time()
            if row.claimer != claimer and row.claimed_at >= now - lease_seconds:
                return "held"
            with self.engine.begin() as connection:
                taken = connection.execute(
                    flow_token_claims.update()
                    .where(flow_token_claims.c.flow_token == stored)
                    .where(flow_token_claims.c.claimed_at == row.claimed_at)
                    .where(flow_token_claims.c.done_at.is_(None))
                    .values(claimer=claimer, claimed_at=now)
                ).rowcount
            if taken:
                return "ours"
            # changed meanwhile (renewed, finished, released): read it again

    def renew(self, flow_token: str, claimer: str) -> bool:
        """Renews the claimer's hold on a flow token while its turn runs; False once it is
        not held by it any more."""
        with self.engine.begin() as connection:
            renewed: int = connection.execute(
                flow_token_claims.update()
                .where(_held_by(flow_token, claimer))
                .values(claimed_at=time.time())
            ).rowcount
        return renewed == 1

    def finish(self, flow_token: str, claimer: str) -> None:
        """The claimer's completion turn made the order: the token is used up for good."""
        with self.engine.begin() as connection:
            connection.execute(
                flow_token_claims.update()
                .where(_held_by(flow_token, claimer))
                .values(done_at=time.time())
            )

    def is_done(self, flow_token: str) -> bool:
        """True once a completion turn of this flow token made the order."""
        with self.engine.connect() as connection:
            done = connection.execute(
                sa.select(flow_token_claims.c.done_at).where(
                    flow_token_claims.c.flow_token == digest(flow_token)
                )
            ).scalar()
        return done is not None

    def release(self, flow_token: str, claimer: str) -> None:
        """Gives a claimed flow token back, after the claimer's turn failed, so that a later
        completion of the same Flow (or its re-delivery) can still create the order."""
        with self.engine.begin() as connection:
            connection.execute(flow_token_claims.delete().where(_held_by(flow_token, claimer)))


def _held_by(flow_token: str, claimer: str) -> Any:
    """The WHERE clause of a flow token's unfinished claim held by `claimer`."""
    return (
        (flow_token_claims.c.flow_token == digest(flow_token))
        & (flow_token_claims.c.claimer == claimer)
        & flow_token_claims.c.done_at.is_(None)
    )
