"""The sandbox's servers together: Graph API emulator, Stripe emulator, the shop's inbox for
hand-overs and the chat simulator, sharing one set of throw-away secrets. `connect` points
them at a running bot."""

from __future__ import annotations

import secrets

import requests

from sandbox.graph_api import GraphApiEmulator, order_flow
from sandbox.settings import FLOW_ID, NOTIFICATION_TEMPLATE, Ports, SandboxSecrets, bot_env
from sandbox.shop_inbox import ShopInbox
from sandbox.simulator import ChatSimulator
from sandbox.stripe_api import StripeEmulator


class Emulators:
    """Starts and stops the four servers; `bot_env()` is what the bot needs to use them."""

    def __init__(self, keys: SandboxSecrets, ports: Ports) -> None:
        self.keys = keys
        self.graph = GraphApiEmulator(
            ports.graph,
            keys.access_token,
            {FLOW_ID: order_flow()},
            {NOTIFICATION_TEMPLATE: 1},  # the product's default: the whole text as one variable
            message_id_prefix=f"SANDBOX{secrets.token_hex(4)}.",
        )
        self.stripe = StripeEmulator(keys.stripe_secret_key, port=ports.stripe)
        self.inbox = ShopInbox(  # any free port
            keys.handover_secret, keys.operator_token, keys.orders_token
        )
        self.simulator = ChatSimulator(self.graph, keys.app_secret, ports.page)
        self.simulator.staff = self.inbox

    @property
    def page_url(self) -> str:
        return f"http://localhost:{self.simulator.port}/"

    def start(self) -> None:
        """Starts the servers and registers the Flow public key, as a developer does once
        with `make flow-cli ARGS=upload-key`. Stops what started if one cannot start."""
        started = []
        try:
            for server in (self.graph, self.stripe, self.inbox, self.simulator):
                server.start()
                started.append(server)
            answer = requests.post(
                f"{self.graph.base_url}/{self.graph.phone_number_id}/whatsapp_business_encryption",
                data={"business_public_key": self.keys.flow_public_pem()},
                headers={"Authorization": f"Bearer {self.keys.access_token}"},
                timeout=5,
            )
            answer.raise_for_status()
        except BaseException:
            for server in reversed(started):
                server.stop()
            raise

    def bot_env(self) -> dict[str, str]:
        return bot_env(
            self.keys, self.graph.base_url, self.stripe.base_url, self.page_url, self.inbox.url
        )

    def connect(self, rasa_url: str) -> None:
        """Sends statuses, Stripe events, the customers' messages and the staff panel's
        calls to the bot at `rasa_url`."""
        self.graph.deliver_statuses_to(
            f"{rasa_url}/webhooks/whatsapp/webhook", self.keys.app_secret
        )
        self.stripe.send_events_to(
            f"{rasa_url}/webhooks/whatsapp/stripe", self.keys.stripe_webhook_secret
        )
        self.simulator.bot_url = self.inbox.bot_url = rasa_url

    def stop(self) -> None:
        for server in (self.simulator, self.inbox, self.stripe, self.graph):
            server.stop()
