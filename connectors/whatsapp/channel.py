"""The WhatsApp channel for Rasa: Meta's webhooks in, Graph API messages out.

Routes under /webhooks/whatsapp/:
- GET  /            health (also /health)
- GET  /webhook     Meta's verification handshake
- POST /webhook     messages and statuses, signed with X-Hub-Signature-256
- POST /flow        the WhatsApp Flows data endpoint (connectors/flows/endpoint.py)
- POST /stripe      Stripe's events (connectors/stripe/webhook.py)

A POST is verified over its raw bytes, its message ids are recorded (Meta re-delivers), and
it is answered at once; the messages are handled in the background, in order per customer.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any, AsyncContextManager

import sqlalchemy as sa
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.shared.utils.cli import print_error_and_exit
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from sanic_cors.core import SANIC_CORS_EVALUATED

from connectors import log_refs
from connectors.edge.json_body import parse_json
from connectors.edge.limits import cap_request_size, read_body_within, refuse_open_api
from connectors.edge.signatures import verify_hub_signature
from connectors.flows.endpoint import EXPIRED_MESSAGE, FlowEndpoint, complete_once
from connectors.flows.endpoint import MAX_BODY_BYTES as FLOW_MAX_BODY_BYTES
from connectors.jobs.customer_queue import CustomerQueues
from connectors.jobs.leases import heartbeat, renewal_interval
from connectors.jobs.outbox import OutboxWorker, OutboxWriter
from connectors.log_refs import customer_ref, message_ref
from connectors.metrics import (
    FLOW_RESPONSE_SECONDS,
    OUTBOX_DEAD,
    OUTBOX_PENDING,
    OUTBOX_UNDELIVERABLE,
    REGISTRY,
    WEBHOOK_REQUESTS,
)
from connectors.privacy.rights import erase_customer, expire_raw_bodies
from connectors.rasa_patches.install import install as install_rasa_patches
from connectors.rest_channel import refuse_open_rest_channels
from connectors.settings import FlowSettings, ServerSettings, WhatsAppSettings
from connectors.storage.encrypted_tracker import EncryptedTrackerStore
from connectors.storage.store import (
    ConnectorStore,
    digest,
    inbound_messages,
    new_claim,
    stripe_events,
)
from connectors.stripe.webhook import MAX_BODY_BYTES as STRIPE_MAX_BODY_BYTES
from connectors.stripe.webhook import StripeWebhook
from connectors.whatsapp.graph import GraphApiError, GraphClient, GraphSettings
from connectors.whatsapp.intents import (
    completion_token,
    flow_completed_text,
    intent_message,
    is_order_completion,
    message_metadata,
    rasa_text,
)
from connectors.whatsapp.messages import envelope, is_business_scoped, text_bodies
from connectors.whatsapp.output import WhatsAppOutput, outside_window_body
from connectors.whatsapp.payloads import (
    InboundMessage,
    PayloadError,
    StatusUpdate,
    message_from_json,
    message_to_json,
    parse_notification,
)
from connectors.whatsapp.wasender import WaSenderClient
from shop_contract.env_settings import ConfigError, load_env_file
from shop_contract.flow_tokens import FlowTokenError, read_token_for
from shop_contract.intents import UNREADABLE_MESSAGE

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
RE_ENGAGEMENT_ERROR = 131047  # "more than 24 hours since the customer last replied"

OnNewMessage = Callable[[UserMessage], Awaitable[Any]]


def skip_cors(request: Request) -> None:
    """Marks a server-to-server webhook so Rasa's CORS middleware leaves it alone.

    Meta and Stripe are not browsers; evaluating CORS for every webhook costs measurable
    CPU on the Flow endpoint's hot path and adds nothing.
    """
    setattr(request.ctx, SANIC_CORS_EVALUATED, "1")


RETENTION_INTERVAL_SECONDS = 3600


def refuse_unencrypted_tracker_store(agent: Any) -> None:
    """Stops the server when conversations would not be encrypted at rest.

    Rasa replaces a tracker store it cannot import with an in-memory one and only warns;
    a shop would then lose every conversation at the next restart, unnoticed.
    """
    store = agent.tracker_store if agent is not None else None
    while store is not None and not isinstance(store, EncryptedTrackerStore):
        store = getattr(store, "_tracker_store", None)  # Rasa's wrappers keep the real one here
    if store is None:
        print_error_and_exit(
            "tracker store: conversations would not be encrypted at rest — endpoints.yml must "
            "name `type: connectors.privacy.EncryptedTrackerStore` and it must import (see the "
            "warning above for why it did not)"
        )


class WhatsAppInput(InputChannel):
    """Receives WhatsApp Cloud API webhooks and hands customers' messages to Rasa."""

    @classmethod
    def name(cls) -> str:
        return "whatsapp"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> WhatsAppInput:
        """Installs rasa_patches and reads every setting once (ENV_FILE or the bot's `.env`
        fills in unset ones, see shop_contract/env_settings.py); stops start-up with one
        line when one is missing or malformed, or the database does not open with the key."""
        # Rasa sets the level of its own loggers only (LOG_LEVEL, --log-level); ours follow
        # it, or the root logger's default would silence the connector's INFO lines.
        logging.getLogger("connectors").setLevel(logging.getLogger("rasa").getEffectiveLevel())
        try:
            load_env_file()
            install_rasa_patches()
            server = ServerSettings.from_env(os.environ)
            store = ConnectorStore(server.database.url, keys=server.keys)
        except ConfigError as error:
            print_error_and_exit(f"WhatsApp channel: {error}")
        if server.flow.private_key is None:
            logger.warning("Flow endpoint off: WHATSAPP_FLOW_PRIVATE_KEY is not set")
        if not server.stripe.secrets:
            logger.warning("Stripe webhook off: STRIPE_WEBHOOK_SECRET is not set")
        return cls(server.whatsapp, store, server.flow, server.stripe.secrets)

    def __init__(
        self,
        settings: WhatsAppSettings,
        store: ConnectorStore,
        flow_settings: FlowSettings,
        stripe_secrets: tuple[str, ...] = (),
    ) -> None:
        self.settings = settings
        self.store = store
        self.agent: Any = None  # Rasa's agent, once the server has started
        log_refs.configure(settings.app_secrets[-1])
        self.graph = GraphClient(
            GraphSettings(settings.api_base, settings.phone_number_id, settings.access_token)
        )
        self.wasender = (
            WaSenderClient(settings.wasender_api_base, settings.wasender_api_key)
            if settings.wasender_api_key
            else None
        )
        self.queues = CustomerQueues()
        self.replaying: set[str] = set()  # ids of replayed work queued in this process
        self.flow = FlowEndpoint(
            flow_settings,
            settings.app_secrets,
            store,
            self.queues,
            lambda: self.output(notifications=False),
            settings.replay_lease_seconds,
        )
        self.outbox_worker = OutboxWorker(
            store,
            lambda customer, body: self.output(notifications=True).deliver(customer, body),
            settings.outbox_base_delay_seconds,
            settings.outbox_poll_seconds,
        )
        self.stripe = StripeWebhook(
            stripe_secrets, store, self.queues, self.notification_output, self.hold
        )

    def hold(self, table: sa.Table, work_id: str, claim: str) -> AsyncContextManager[None]:
        """A heartbeat that keeps recorded work (a message, a Stripe event) held under
        `claim` while it waits and runs, so no replica's recovery sweep runs it again."""
        return heartbeat(
            lambda: self.store.renew_claim(table, work_id, claim),
            renewal_interval(self.settings.replay_lease_seconds),
            f"{table.name} {message_ref(work_id) if table is inbound_messages else work_id}",
        )

    def output(self, notifications: bool) -> WhatsAppOutput:
        return WhatsAppOutput(self.settings, self.graph, self.store, notifications, self.wasender)

    def notification_output(self, origin: str) -> WhatsAppOutput:
        """The channel of a turn an event started: its messages go through the outbox."""
        writer = OutboxWriter(self.store, origin, self.outbox_worker.wake)
        return WhatsAppOutput(
            self.settings, self.graph, self.store, True, self.wasender, outbox=writer
        )

    def get_output_channel(self) -> WhatsAppOutput:
        """The channel for bot-initiated messages (external events): order notifications."""
        return self.output(notifications=True)

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
        webhook = Blueprint("whatsapp_webhook", __name__)

        async def health(_: Request) -> HTTPResponse:
            return await self.health()

        async def metrics(_: Request) -> HTTPResponse:
            return await self.metrics()

        async def verify(request: Request) -> HTTPResponse:
            return self.verify_subscription(request)

        # The POST routes stream: each reads its body itself, within its own limit.
        async def receive(request: Request) -> HTTPResponse:
            skip_cors(request)
            if await read_body_within(request, MAX_BODY_BYTES):
                answer = await self.receive_notification(request, on_new_message)
            else:
                answer = response.json({"error": "body too large"}, status=413)
            WEBHOOK_REQUESTS.labels("messages", answer.status).inc()
            return answer

        async def flow(request: Request) -> HTTPResponse:
            skip_cors(request)
            with FLOW_RESPONSE_SECONDS.time():
                if await read_body_within(request, FLOW_MAX_BODY_BYTES):
                    answer = await self.flow.handle(request, on_new_message)
                else:
                    answer = response.text("", status=413)
            WEBHOOK_REQUESTS.labels("flow", answer.status).inc()
            return answer

        async def stripe_events(request: Request) -> HTTPResponse:
            skip_cors(request)
            if await read_body_within(request, STRIPE_MAX_BODY_BYTES):
                answer = await self.stripe.handle(request)
            else:
                answer = response.json({"error": "body too large"}, status=413)
            WEBHOOK_REQUESTS.labels("stripe", answer.status).inc()
            return answer

        async def check_server(app: Any, _: Any) -> None:
            """Refuses to serve next to an open REST channel or HTTP API; caps body sizes."""
            refuse_open_rest_channels(getattr(app.ctx, "input_channels", ()))
            refuse_open_api(app)
            cap_request_size(app, MAX_BODY_BYTES)

        async def start_background_work(app: Any, _: Any) -> None:
            refuse_unencrypted_tracker_store(app.ctx.agent)
            self.agent = app.ctx.agent
            self.background = [
                asyncio.create_task(self.recover_forever(app.ctx.agent, on_new_message)),
                asyncio.create_task(self.outbox_worker.run_forever()),
                asyncio.create_task(self.expire_bodies_forever()),
            ]

        webhook.listener(check_server, "before_server_start")
        webhook.listener(start_background_work, "after_server_start")
        webhook.add_route(health, "/", methods=["GET"])
        webhook.add_route(health, "/health", methods=["GET"], name="health_alias")
        webhook.add_route(metrics, "/metrics", methods=["GET"])
        webhook.add_route(stripe_events, "/stripe", methods=["POST"], stream=True)
        webhook.add_route(flow, "/flow", methods=["POST"], stream=True)
        webhook.add_route(verify, "/webhook", methods=["GET"])
        webhook.add_route(receive, "/webhook", methods=["POST"], stream=True)
        return webhook

    async def health(self) -> HTTPResponse:
        """Database reachability and the backlog of unfinished work; 503 when degraded."""
        try:
            figures = await asyncio.to_thread(self.store.health)
        except Exception:
            logger.exception("health check: database unreachable")
            return response.json({"status": "degraded", "database": "unreachable"}, status=503)
        stripe = {f"stripe_{k}": v for k, v in sorted(self.stripe.outcomes.items())}
        return response.json(
            {
                "status": "ok",
                "database": "ok",
                "in_flight": self.queues.pending,
                **figures,
                **stripe,
            }
        )

    async def metrics(self) -> HTTPResponse:
        """Prometheus exposition of the connector's metrics."""
        try:
            figures = await asyncio.to_thread(self.store.health)
            OUTBOX_PENDING.set(figures["pending_notifications"])
            OUTBOX_DEAD.set(figures["dead_notifications"])
            OUTBOX_UNDELIVERABLE.set(figures["undeliverable_notifications"])
        except Exception:
            logger.exception("metrics: database unreachable")
        return response.raw(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)

    def verify_subscription(self, request: Request) -> HTTPResponse:
        """Meta's handshake: echo hub.challenge when mode and token match, else 403."""
        mode = request.args.get("hub.mode")
        token = request.args.get("hub.verify_token") or ""
        challenge = request.args.get("hub.challenge") or ""
        if mode == "subscribe" and hmac.compare_digest(
            token.encode(), self.settings.verify_token.encode()
        ):
            return response.text(challenge)
        logger.warning("webhook verification refused")
        return response.text("forbidden", status=403)

    async def receive_notification(
        self, request: Request, on_new_message: OnNewMessage
    ) -> HTTPResponse:
        body = request.body or b""
        if len(body) > MAX_BODY_BYTES:
            return response.json({"error": "body too large"}, status=413)
        signature = request.headers.get("X-Hub-Signature-256")
        if not signature:
            logger.warning("webhook without signature refused")
            return response.json({"error": "missing X-Hub-Signature-256"}, status=401)
        if not verify_hub_signature(body, signature, self.settings.app_secrets):
            logger.warning("webhook with a wrong signature refused")
            return response.json({"error": "invalid signature"}, status=403)
        try:
            notification = parse_notification(parse_json(body))
        except (ValueError, PayloadError) as error:
            logger.warning("webhook body refused: %s", type(error).__name__)
            return response.json({"error": "not a WhatsApp notification"}, status=400)
        fresh: list[tuple[InboundMessage, str]] = []
        try:
            for message in notification.messages:
                claim = new_claim()
                if await asyncio.to_thread(
                    self.store.record_inbound,
                    message.id,
                    message.customer.key,
                    None,
                    message_to_json(message),
                    claim,
                ):
                    fresh.append((message, claim))
                else:
                    logger.info("duplicate delivery ignored: message=%s", message_ref(message.id))
        except Exception:
            logger.exception("could not record the notification; Meta will retry")
            return response.json({"error": "storage unavailable"}, status=503)
        for message, claim in fresh:
            self.queues.submit(
                message.customer.key,
                lambda m=message: self.handle_message(m, on_new_message),  # type: ignore[misc]
                f"message {message_ref(message.id)}",
                self.hold(inbound_messages, message.id, claim),
            )
        for status in notification.statuses:
            self.queues.submit(
                f"status:{status.message_id}",
                lambda s=status: self.handle_status(s),  # type: ignore[misc]
                f"status of {message_ref(status.message_id)}",
            )
        return response.json({"status": "received"})

    async def expire_bodies_forever(self) -> None:
        """Drops raw payloads and bodies past RAW_BODY_RETENTION_DAYS, hourly."""
        while True:
            try:
                dropped = await asyncio.to_thread(
                    expire_raw_bodies, self.store, self.settings.raw_body_retention_seconds
                )
                if any(dropped.values()):
                    logger.info("retention: dropped raw bodies %s", dropped)
            except Exception:
                logger.exception("retention sweep failed; trying again later")
            await asyncio.sleep(RETENTION_INTERVAL_SECONDS)

    async def recover_forever(self, agent: Any, on_new_message: OnNewMessage) -> None:
        """Replays, now and then every interval, work a crashed process left unfinished."""
        while True:
            try:
                await self.recover(agent, on_new_message)
            except Exception:
                logger.exception("replay sweep failed; trying again later")
            await asyncio.sleep(self.settings.replay_interval_seconds)

    async def recover(self, agent: Any, on_new_message: OnNewMessage) -> int:
        """One sweep: schedules abandoned messages and Stripe events again; returns how many."""
        lease = self.settings.replay_lease_seconds
        messages = await asyncio.to_thread(
            self.store.claim_abandoned, inbound_messages, "message_id", lease
        )
        for _, payload, claim in messages:
            message = message_from_json(payload)
            if message.id in self.replaying:
                continue  # already queued here, still waiting (e.g. for a dead replica's lock)
            logger.warning(
                "replaying message %s of %s after an interruption",
                message_ref(message.id),
                customer_ref(message.customer.key),
            )
            self.replaying.add(message.id)
            self.queues.submit(
                message.customer.key,
                lambda m=message, c=claim: self.replay(m, c, on_new_message),  # type: ignore[misc]
                f"replayed message {message_ref(message.id)}",
                self.hold(inbound_messages, message.id, claim),
            )
        events = await asyncio.to_thread(
            self.store.claim_abandoned, stripe_events, "event_id", lease
        )
        for event_id, payload, claim in events:
            if event_id in self.replaying:
                continue
            logger.warning("replaying stripe event %s after an interruption", event_id)
            self.replaying.add(event_id)
            self.stripe.schedule(agent, json.loads(payload), claim, self.replay_done)
        return len(messages) + len(events)

    async def replay(
        self, message: InboundMessage, claim: str, on_new_message: OnNewMessage
    ) -> None:
        """Runs a replayed message unless, while it waited, it was finished or taken over."""
        try:
            if await asyncio.to_thread(self.store.holds, inbound_messages, message.id, claim):
                await self.handle_message(message, on_new_message)
            else:
                logger.info("replay of message %s skipped: no longer ours", message_ref(message.id))
        finally:
            self.replay_done(message.id)

    def replay_done(self, work_id: str) -> None:
        self.replaying.discard(work_id)

    async def handle_message(self, message: InboundMessage, on_new_message: OnNewMessage) -> None:
        """One customer message through Rasa, with read receipt and typing indicator."""
        key = message.customer.key
        await asyncio.to_thread(self.store.touch_customer, key, message.timestamp or time.time())
        with contextlib.suppress(GraphApiError):  # a courtesy; the client logged the failure
            await self.graph.mark_read(message.id)
        output = self.output(notifications=False)
        text, flow_token = await self.text_for(message, output)
        if text is not None:
            turn = UserMessage(
                text=text,
                output_channel=output,
                sender_id=key,
                input_channel=self.name(),
                message_id=message.id,
                metadata=message_metadata(message),
            )
            if flow_token is None:
                await on_new_message(turn)
            elif not await self.complete(message, flow_token, lambda: on_new_message(turn)):
                return  # left unprocessed: the recovery sweep replays it later
        if output.erase_request is not None:
            if not await self.erase(key, output.erase_request):
                await asyncio.to_thread(self.store.mark_processed, message.id)  # no replay
            return
        await asyncio.to_thread(self.store.mark_processed, message.id)

    async def complete(
        self, message: InboundMessage, flow_token: str, turn: Callable[[], Awaitable[Any]]
    ) -> bool:
        """The completion turn of an nfm_reply, claimed under its message id digest so that
        its replay after a crash takes its own claim again; False when another completion's
        turn holds the token: the message waits for a replay instead of being dropped."""
        claim = await complete_once(
            self.store, flow_token, digest(message.id), turn, self.settings.replay_lease_seconds
        )
        if claim == "held":
            logger.info(
                "flow completion waits: another turn holds its token; message=%s",
                message_ref(message.id),
            )
            return False
        if claim == "done":
            logger.info("flow completion already handled: message=%s", message_ref(message.id))
        return True

    async def erase(self, customer_key: str, texts: dict[str, str]) -> bool:
        """Erases everything held about the customer, on their confirmed request, and tells
        them; False when it failed. The last message is sent without a record, so that
        nothing of theirs stays.

        The turn that asked for it is saved by now. The conversation's lock keeps any other
        turn (another replica, a Stripe event) from saving the tracker it loaded before the
        erasure: Rasa's store would write every event back into an empty conversation.
        """
        lock = (
            self.agent.lock_store.lock(customer_key)
            if self.agent is not None
            else contextlib.nullcontext()
        )
        try:
            async with lock:
                counts = await asyncio.to_thread(erase_customer, self.store, customer_key)
        except Exception:
            logger.exception("erasure failed for %s", customer_ref(customer_key))
            await self.output(notifications=False).send_text_message(
                customer_key, texts.get("failed", "")
            )
            return False
        logger.info(
            "erased on request: %s (%s rows)", customer_ref(customer_key), sum(counts.values())
        )
        for body in text_bodies(texts.get("done", "")):
            request = envelope(customer_key, is_business_scoped(customer_key), body)
            with contextlib.suppress(GraphApiError):  # the client logged the failure
                await self.graph.send_message(request)
        return True

    async def text_for(
        self, message: InboundMessage, output: WhatsAppOutput
    ) -> tuple[str | None, str | None]:
        """Rasa's input for a message, and the flow token of a Flow completion; no input for
        the 'continue in the chat' hand-over, nor for a completion whose token is refused."""
        if message.kind != "nfm_reply":
            text = rasa_text(message)
            if text == intent_message(UNREADABLE_MESSAGE) and not self.knows(UNREADABLE_MESSAGE):
                logger.info(
                    "%s message not handed to the bot: its domain has no intent %s",
                    message.raw_type,
                    UNREADABLE_MESSAGE,
                )
                return None, None
            return text, None
        response_json = message.flow_response or {}
        if not is_order_completion(response_json):
            return None, None  # the 'continue in the chat' hand-over: the turn already runs
        token = completion_token(response_json)
        if isinstance(token, str) and await asyncio.to_thread(self.store.flow_token_done, token):
            # a re-delivery or replay once the order exists: nothing to do, nothing to say
            logger.info("flow completion already handled: message=%s", message_ref(message.id))
            return None, None
        try:
            read_token_for(token, message.customer.key, self.settings.app_secrets)
        except FlowTokenError as error:
            logger.warning(
                "flow completion refused: %s; message=%s customer=%s",
                error,
                message_ref(message.id),
                customer_ref(message.customer.key),
            )
            await output.send_text_message(message.customer.key, EXPIRED_MESSAGE)
            return None, None
        return flow_completed_text(response_json), str(token)  # a verified token

    def knows(self, intent: str) -> bool:
        """Whether the bot's domain has `intent` (True until the agent is loaded).

        Another bot need not declare the intent for messages it cannot read (stickers,
        reactions, …): its NLU would guess an intent from that intent's name instead.
        """
        domain = getattr(self.agent, "domain", None)
        return domain is None or intent in domain.intents

    async def handle_status(self, status: StatusUpdate) -> None:
        """Records a delivery status; a notification that failed for the window is resent."""
        record = await asyncio.to_thread(
            self.store.record_status,
            status.message_id,
            status.status,
            float(status.timestamp or time.time()),
            status.error_code,
            status.error_title,
        )
        if record is None or status.status != "failed":
            return
        logger.warning(
            "message failed: kind=%s code=%s title=%s",
            record.kind,
            status.error_code,
            status.error_title,
        )
        if (
            record.kind == "notification"
            and record.body
            and status.error_code == RE_ENGAGEMENT_ERROR
        ):
            await self.queue_fallback(status.message_id, record.customer_key, record.body)

    async def queue_fallback(self, message_id: str, customer_key: str, text: str) -> None:
        """Queues the outside-window form (template or WASender) of a notification Meta
        refused for the 24-hour window: the outbox retries it, makes it a dead letter or
        'undeliverable', as for any notification. Keyed by the refused message, so it is
        queued once however many times its 'failed' status arrives."""
        key = f"fallback:{digest(message_id)}"
        body = json.dumps(outside_window_body(text))
        if await asyncio.to_thread(self.store.enqueue_notification, key, customer_key, body):
            self.outbox_worker.wake.set()
