"""The WhatsApp channel for Rasa: Meta's webhooks in, Graph API messages out.

This module wires the channel's parts together. Its routes, under /webhooks/whatsapp/, are
served by them (paths relative to connectors/):
- GET  /, /health, /metrics  health and metrics (whatsapp/ops_routes.py)
- GET  /webhook              Meta's verification handshake (whatsapp/webhook.py)
- POST /webhook              messages and statuses, signed with X-Hub-Signature-256 (ditto)
- POST /flow                 the WhatsApp Flows data endpoint (flows/endpoint.py)
- POST /stripe               Stripe's events (stripe/webhook.py)
- GET  /operator/handovers, POST /operator/handovers/<ref>/reply and …/resume
                             staff answering hand-overs (handover/operator_api.py)
- GET  /orders, POST /orders/<order_id>/ship, …/deliver and …/refund
                             the shop fulfilling paid orders (orders/api.py)
Once the server runs, five loops run in the background: the recovery sweep
(jobs/recovery.py), the outbox worker (jobs/outbox.py), the retention sweep
(jobs/retention.py), the hand-over sweep (handover/pause.py) and the checkout reminder
sweep (stripe/reminders.py).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
from collections.abc import Callable
from typing import Any

from rasa.core.channels.channel import InputChannel
from rasa.shared.utils.cli import print_error_and_exit
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from sanic_cors.core import SANIC_CORS_EVALUATED

from connectors import log_refs
from connectors.edge.limits import read_body_within
from connectors.flows.endpoint import MAX_BODY_BYTES as FLOW_MAX_BODY_BYTES
from connectors.flows.endpoint import FlowEndpoint
from connectors.handover.delivery import OutboxDelivery
from connectors.handover.desk import HandoverDesk
from connectors.handover.operator_api import MAX_BODY_BYTES as OPERATOR_MAX_BODY_BYTES
from connectors.handover.operator_api import OperatorApi
from connectors.handover.pause import HandoverPause
from connectors.handover.shop_webhook import ShopWebhook
from connectors.jobs import leases
from connectors.jobs.action_server import wait_for_actions
from connectors.jobs.customer_queue import CustomerQueues
from connectors.jobs.outbox import OutboxWorker
from connectors.jobs.recovery import Recovery, Replayable
from connectors.jobs.retention import expire_bodies_forever
from connectors.metrics import FLOW_RESPONSE_SECONDS, WEBHOOK_REQUESTS
from connectors.orders.api import orders_api
from connectors.orders.turns import FulfilmentTurns
from connectors.rasa_patches.install import install as install_rasa_patches
from connectors.settings import (
    FlowSettings,
    HandoverSettings,
    OrdersSettings,
    ServerSettings,
    WhatsAppSettings,
)
from connectors.storage.opening import open_store
from connectors.storage.schema import stripe_events
from connectors.storage.store import ConnectorStore
from connectors.stripe.reminders import ReminderSweep
from connectors.stripe.webhook import MAX_BODY_BYTES as STRIPE_MAX_BODY_BYTES
from connectors.stripe.webhook import StripeWebhook
from connectors.whatsapp.erasure import Erasure
from connectors.whatsapp.graph import GraphClient, GraphSettings
from connectors.whatsapp.ops_routes import OpsRoutes
from connectors.whatsapp.output import CHANNEL_NAME, Outputs, WhatsAppOutput
from connectors.whatsapp.startup_checks import check_server, refuse_unencrypted_tracker_store
from connectors.whatsapp.statuses import DeliveryStatuses
from connectors.whatsapp.wasender import WaSenderClient
from connectors.whatsapp.webhook import MAX_BODY_BYTES, MessagesWebhook, OnNewMessage
from shop_contract.env_settings import ConfigError, load_env_file

logger = logging.getLogger(__name__)


def skip_cors(request: Request) -> None:
    """Marks a server-to-server webhook so Rasa's CORS middleware leaves it alone.

    Meta and Stripe are not browsers; evaluating CORS for every webhook costs measurable
    CPU on the Flow endpoint's hot path and adds nothing.
    """
    setattr(request.ctx, SANIC_CORS_EVALUATED, "1")


def replayable_work(
    messages: MessagesWebhook, stripe: StripeWebhook, agent: Any, on_new_message: OnNewMessage
) -> list[Replayable]:
    """What the recovery sweep replays, in this order: customers' messages, Stripe events."""

    def reschedule_event(event_id: str, payload: str, claim: str, done: Callable[[], None]) -> None:
        logger.warning("replaying stripe event %s after an interruption", event_id)
        stripe.schedule(agent, json.loads(payload), claim, lambda _: done())

    return [
        messages.replayable(on_new_message),
        Replayable(stripe_events, "event_id", reschedule_event),
    ]


class WhatsAppInput(InputChannel):
    """Receives WhatsApp Cloud API webhooks and hands customers' messages to Rasa."""

    @classmethod
    def name(cls) -> str:
        return CHANNEL_NAME

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
            store = open_store(server.database.url, keys=server.keys)
        except ConfigError as error:
            print_error_and_exit(f"WhatsApp channel: {error}")
        if server.flow.private_key is None:
            logger.warning("Flow endpoint off: WHATSAPP_FLOW_PRIVATE_KEY is not set")
        if not server.stripe.secrets:
            logger.warning("Stripe webhook off: STRIPE_WEBHOOK_SECRET is not set")
        if not server.handover.notifies:
            logger.warning(
                "hand-over to a person off: HANDOVER_WEBHOOK_URL is not set, and only it carries "
                "the customer's messages to the shop (HANDOVER_STAFF_WA_ID alone is not enough); "
                "customers are told how to reach the shop"
            )
        return cls(
            server.whatsapp,
            store,
            server.flow,
            server.stripe.secrets,
            server.handover,
            server.orders,
        )

    def __init__(
        self,
        settings: WhatsAppSettings,
        store: ConnectorStore,
        flow_settings: FlowSettings,
        stripe_secrets: tuple[str, ...] = (),
        handover: HandoverSettings | None = None,
        orders: OrdersSettings | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        log_refs.configure(settings.app_secrets[-1])
        self.graph = GraphClient(
            GraphSettings(settings.api_base, settings.phone_number_id, settings.access_token)
        )
        wasender = (
            WaSenderClient(settings.wasender_api_base, settings.wasender_api_key)
            if settings.wasender_api_key
            else None
        )
        self.queues = CustomerQueues()
        handover = handover or HandoverSettings()
        shop_webhook = (
            ShopWebhook(handover.webhook_url, handover.webhook_secrets)
            if handover.webhook_url
            else None
        )
        self.outbox_worker = OutboxWorker(
            store,
            OutboxDelivery(
                lambda customer, body: self.outputs.output(notifications=True).deliver(
                    customer, body
                ),
                shop_webhook,
                handover.staff_wa_id,
            ),
            settings.outbox_base_delay_seconds,
            settings.outbox_poll_seconds,
        )
        self.outputs = Outputs(settings, self.graph, store, wasender, self.outbox_worker.wake)
        desk = HandoverDesk(store, handover)
        self.handover = HandoverPause(
            desk,
            self.queues,
            self.outputs.notification_output,
            self.outbox_worker.wake,
            self.outbox_worker.flush,
            settings.replay_lease_seconds,
            settings.replay_interval_seconds,
        )
        self.operator = OperatorApi(handover.operator_token, desk, self.handover)
        hold = functools.partial(leases.hold, store, settings.replay_lease_seconds)
        self.messages = MessagesWebhook(
            settings,
            store,
            self.graph,
            self.queues,
            self.outputs,
            hold,
            DeliveryStatuses(store, self.outbox_worker.wake),
            Erasure(store, self.graph, self.outputs),
            self.handover,
        )
        self.flow = FlowEndpoint(
            flow_settings,
            settings.app_secrets,
            store,
            self.queues,
            lambda: self.outputs.output(notifications=False),
            settings.replay_lease_seconds,
        )
        self.stripe = StripeWebhook(
            stripe_secrets,
            store,
            self.queues,
            self.outputs.notification_output,
            hold,
            self.handover.person_has,
        )
        self.ops = OpsRoutes(store, self.queues, self.stripe.outcomes, settings.verify_token)
        self.recovery = Recovery(
            store, settings.replay_lease_seconds, settings.replay_interval_seconds
        )
        self.fulfilment = FulfilmentTurns(
            self.queues,
            self.outputs.notification_output,
            store,
            self.outputs.notification_refusal,
        )
        self.orders = orders_api(
            orders or OrdersSettings(), store, self.fulfilment.trigger, self.fulfilment.reconfirm
        )
        self.reminders = ReminderSweep(
            store,
            self.queues,
            self.outputs.notification_output,
            settings.replay_lease_seconds,
            settings.replay_interval_seconds,
            self.handover.person_has,
        )

    def get_output_channel(self) -> WhatsAppOutput:
        """The channel for bot-initiated messages (external events): order notifications."""
        return self.outputs.output(notifications=True)

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
        webhook = Blueprint("whatsapp_webhook", __name__)

        async def health(_: Request) -> HTTPResponse:
            return await self.ops.health()

        async def metrics(_: Request) -> HTTPResponse:
            return await self.ops.metrics()

        async def verify(request: Request) -> HTTPResponse:
            return self.ops.verify_subscription(request)

        # The POST routes stream: each reads its body itself, within its own limit.
        async def receive(request: Request) -> HTTPResponse:
            skip_cors(request)
            if await read_body_within(request, MAX_BODY_BYTES):
                answer = await self.messages.receive_notification(request, on_new_message)
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

        async def handovers(request: Request) -> HTTPResponse:
            return self.operator.refusal(request) or await self.operator.handovers()

        async def reply(request: Request, ref: str) -> HTTPResponse:
            if refusal := self.operator.refusal(request):
                return refusal
            if not await read_body_within(request, OPERATOR_MAX_BODY_BYTES):
                return response.json({"error": "body too large"}, status=413)
            return await self.operator.reply(request, ref)

        async def resume(request: Request, ref: str) -> HTTPResponse:
            return self.operator.refusal(request) or await self.operator.resume(ref)

        async def orders(request: Request) -> HTTPResponse:
            return await self.orders.get(request)

        async def order_action(request: Request, order_id: str, action: str) -> HTTPResponse:
            return await self.orders.post(request, order_id, action)

        async def refuse_unsafe_server(app: Any, _: Any) -> None:
            check_server(app, MAX_BODY_BYTES)  # the messages webhook's is the largest body

        async def start_background_work(app: Any, _: Any) -> None:
            refuse_unencrypted_tracker_store(app.ctx.agent)
            self.messages.agent = self.handover.agent = self.reminders.agent = app.ctx.agent
            self.fulfilment.agent = app.ctx.agent
            work = replayable_work(self.messages, self.stripe, app.ctx.agent, on_new_message)
            retention = self.settings.raw_body_retention_seconds
            actions = getattr(app.ctx.agent.action_endpoint, "url", None)

            async def replays() -> None:  # the turns replayed need the action server
                await wait_for_actions(actions)
                await asyncio.gather(
                    self.recovery.recover_forever(work), self.reminders.sweep_forever()
                )

            self.background = [
                asyncio.create_task(replays()),
                asyncio.create_task(self.outbox_worker.run_forever()),
                asyncio.create_task(expire_bodies_forever(self.store, retention)),
                asyncio.create_task(self.handover.sweep_forever()),
            ]

        webhook.listener(refuse_unsafe_server, "before_server_start")
        webhook.listener(start_background_work, "after_server_start")
        webhook.add_route(health, "/", methods=["GET"])
        webhook.add_route(health, "/health", methods=["GET"], name="health_alias")
        webhook.add_route(metrics, "/metrics", methods=["GET"])
        webhook.add_route(stripe_events, "/stripe", methods=["POST"], stream=True)
        webhook.add_route(flow, "/flow", methods=["POST"], stream=True)
        webhook.add_route(verify, "/webhook", methods=["GET"])
        webhook.add_route(receive, "/webhook", methods=["POST"], stream=True)
        webhook.add_route(handovers, "/operator/handovers", methods=["GET"])
        webhook.add_route(reply, "/operator/handovers/<ref>/reply", methods=["POST"], stream=True)
        webhook.add_route(resume, "/operator/handovers/<ref>/resume", methods=["POST"])
        webhook.add_route(orders, "/orders", methods=["GET"])
        webhook.add_route(
            order_action, "/orders/<order_id>/<action>", methods=["POST"], stream=True
        )
        return webhook
