"""The sandbox's throw-away secrets, its ports, and the bot's environment that points the
bot at the emulators: one place, used by `python -m sandbox` and the end-to-end tests.

Nothing here is written to disk or logged: every start makes new secrets.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.storage.keys import new_key_line
from sandbox.meta import CATALOG_ID, PHONE_NUMBER_ID

FLOW_ID = "1000000000000001"  # the order Flow, as the Graph emulator publishes it
NOTIFICATION_TEMPLATE = "order_update"
DEFAULT_PORTS = {"SANDBOX_PAGE_PORT": 5080, "SANDBOX_GRAPH_PORT": 5081, "SANDBOX_STRIPE_PORT": 5082}


@dataclass(frozen=True)
class SandboxSecrets:
    """Everything a real deployment gets from Meta and Stripe, made up for one run."""

    app_secret: str
    verify_token: str
    access_token: str
    stripe_secret_key: str
    stripe_webhook_secret: str
    flow_private_key: rsa.RSAPrivateKey
    tracker_key: str  # TRACKER_ENCRYPTION_KEY for the sandbox's own, fresh database
    handover_secret: str  # signs the hand-over webhook to the sandbox's shop inbox
    operator_token: str  # the staff panel's token for the bot's operator API
    orders_token: str  # the staff panel's token for the bot's orders API (ship, refund)

    @classmethod
    def generate(cls) -> SandboxSecrets:
        return cls(
            app_secret=secrets.token_hex(16),
            verify_token=secrets.token_urlsafe(16),
            access_token="EAA" + secrets.token_urlsafe(48),
            stripe_secret_key="sk_test_" + secrets.token_urlsafe(32),
            stripe_webhook_secret="whsec_" + secrets.token_urlsafe(32),
            flow_private_key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
            tracker_key=new_key_line("sandbox"),
            handover_secret=secrets.token_urlsafe(32),
            operator_token=secrets.token_urlsafe(32),
            orders_token=secrets.token_urlsafe(32),
        )

    def flow_private_pem(self) -> str:
        return self.flow_private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")

    def flow_public_pem(self) -> str:
        return (
            self.flow_private_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode("ascii")
        )


@dataclass(frozen=True)
class Ports:
    """Where the page and the emulators listen (0: any free port)."""

    page: int
    graph: int
    stripe: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Ports:
        """The defaults (5080–5082), each overridable by its SANDBOX_*_PORT variable."""
        values = []
        for name, default in DEFAULT_PORTS.items():
            raw = environ.get(name, "").strip() or str(default)
            if not raw.isdigit() or not 0 < int(raw) < 65536:
                raise ValueError(f"{name}: not a port number: {raw!r}")
            values.append(int(raw))
        return cls(*values)


def bot_env(
    keys: SandboxSecrets, graph_base: str, stripe_base: str, page_url: str, inbox_url: str
) -> dict[str, str]:
    """The WhatsApp and Stripe settings of a bot that talks to the emulators, and its
    hand-over settings: events to the sandbox's shop inbox, the staff panel's token.

    Every setting a `.env` could add is given here (empty where unused), so a real key in a
    developer's `.env` can never make the sandbox send a real message or charge a card.
    """
    return {
        "SANDBOX": "1",
        "WHATSAPP_ACCESS_TOKEN": keys.access_token,
        "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
        "WHATSAPP_APP_SECRET": keys.app_secret,
        "WHATSAPP_VERIFY_TOKEN": keys.verify_token,
        "WHATSAPP_API_BASE": graph_base,
        "WHATSAPP_FLOW_ID": FLOW_ID,
        "WHATSAPP_FLOW_PRIVATE_KEY": keys.flow_private_pem(),
        "WHATSAPP_FLOW_PRIVATE_KEY_PASSPHRASE": "",
        "WHATSAPP_CATALOG_ID": CATALOG_ID,  # the Graph emulator's catalog: data/catalog.yml
        "WHATSAPP_NOTIFICATION_TEMPLATE": NOTIFICATION_TEMPLATE,
        "WHATSAPP_TEMPLATE_LANGUAGE": "en",
        "WHATSAPP_TEMPLATE_PARAMS": "text",  # one variable, as the emulator approved it
        "WHATSAPP_NOTIFICATION_TRANSPORT": "graph",
        "WASENDER_API_KEY": "",
        "WASENDER_API_BASE": "",
        "STRIPE_SECRET_KEY": keys.stripe_secret_key,
        "STRIPE_WEBHOOK_SECRET": keys.stripe_webhook_secret,
        "STRIPE_API_BASE": stripe_base,
        "CHECKOUT_SUCCESS_URL": page_url,
        "CHECKOUT_CANCEL_URL": page_url,
        "HANDOVER_WEBHOOK_URL": inbox_url,
        "HANDOVER_WEBHOOK_SECRET": keys.handover_secret,
        "HANDOVER_STAFF_WA_ID": "",
        "HANDOVER_TIMEOUT_MINUTES": "",
        "OPERATOR_API_TOKEN": keys.operator_token,
        "ORDERS_API_TOKEN": keys.orders_token,
    }
