"""Flow endpoint figures: ping throughput against this machine's RSA-2048 rate, and
data_exchange latency through Rasa and the action server.

The bot runs as in production (`rasa run` + `rasa run actions`, one process each) with a
fake Graph API; this process is the client, on the other core.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bench.figures import Figure, percentile
from bench.http_load import post_request, run_load
from bench.memory import rss_mib
from connectors.edge.signatures import hub_signature
from connectors.flows.crypto import OAEP, decrypt_response, encrypt_request
from sandbox.graph_api import GraphApiEmulator
from sandbox.launcher import LiveBot, start_bot
from shop_contract.flow_tokens import issue_token

PING_CONNECTIONS = 16
PING_SECONDS = 10.0
LATENCY_SECONDS = 8.0
CONCURRENCY_LEVELS = (1, 8, 32)
APP_SECRET = secrets.token_hex(16)


def rsa_private_ops_per_second() -> float:
    """One core's RSA-2048 private-key operations per second (openssl speed, else Python)."""
    openssl = shutil.which("openssl")
    if openssl:
        output = subprocess.run(
            [openssl, "speed", "-seconds", "3", "rsa2048"],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
        match = re.search(r"rsa 2048 bits\s+\S+\s+\S+\s+([\d.]+)", output)
        if match:
            return float(match.group(1))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    data = key.public_key().encrypt(b"0123456789abcdef", OAEP)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < 3:
        key.decrypt(data, OAEP)
        count += 1
    return count / (time.perf_counter() - start)


def flow_post(bot: LiveBot, key: rsa.RSAPrivateKey, payload: dict[str, object]) -> bytes:
    host, port = bot.rasa_url.removeprefix("http://").split(":")
    body, _, _ = encrypt_request(payload, key.public_key())
    raw = json.dumps(body).encode()
    return post_request(
        host,
        int(port),
        "/webhooks/whatsapp/flow",
        raw,
        {"Content-Type": "application/json", "X-Hub-Signature-256": hub_signature(raw, APP_SECRET)},
    )


def start_flow_bot(workdir: Path, graph: GraphApiEmulator, key: rsa.RSAPrivateKey) -> LiveBot:
    key_file = workdir / "flow.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    env = {
        "WHATSAPP_ACCESS_TOKEN": graph.access_token,
        "WHATSAPP_PHONE_NUMBER_ID": graph.phone_number_id,
        "WHATSAPP_APP_SECRET": APP_SECRET,
        "WHATSAPP_VERIFY_TOKEN": "bench",
        "WHATSAPP_API_BASE": graph.base_url,
        "WHATSAPP_FLOW_PRIVATE_KEY": str(key_file),
        "LOG_LEVEL": "WARNING",
    }
    # Started as a program of its own, not forked with Rasa imported: its memory is measured.
    return start_bot(workdir, env, {"connectors.whatsapp.channel.WhatsAppInput": {}}, forked=False)


def address(bot: LiveBot) -> tuple[str, int]:
    host, port = bot.rasa_url.removeprefix("http://").split(":")
    return host, int(port)


def ping_figures(bot: LiveBot, key: rsa.RSAPrivateKey, rsa_rate: float) -> list[Figure]:
    host, port = address(bot)
    requests = [
        [flow_post(bot, key, {"version": "3.0", "action": "ping"}) for _ in range(4)]
        for _ in range(PING_CONNECTIONS)
    ]
    asyncio.run(run_load(host, port, requests, 2.0))  # warm-up
    result, _ = asyncio.run(run_load(host, port, requests, PING_SECONDS))
    assert set(result.statuses) == {200}, result.statuses
    return [
        Figure("flow_ping_16_connections", "throughput", result.rate, "req/s", rsa_rate),
        Figure("flow_ping_16_connections", "p99", percentile(result.latencies_ms, 0.99), "ms"),
    ]


ADDRESS = {
    "name": "Bench Customer",
    "street": "Main St 1",
    "postal_code": "1000",
    "city": "Town",
    "country": "DE",
}
FLOWS_PER_CUSTOMER = 40
# A three-line cart, as the order Flow carries it from screen to screen.
CART_STEPS = (
    ("", "espresso-beans", "2", "add"),
    ("espresso-beans:2", "filter-coffee", "1", "add"),
    ("espresso-beans:2,filter-coffee:1", "green-tea", "1", "checkout"),
)
CART = "espresso-beans:2,filter-coffee:1,green-tea:1"
EXPECTED_SCREENS = ["PRODUCT", "PRODUCT", "DELIVERY", "SUMMARY", "SUCCESS"]


def flow_steps() -> list[tuple[str, dict[str, str]]]:
    """(screen, data) of each data_exchange of one order of three products: each product
    added on the cart screen (the last one checks out), then the address, then the summary."""
    steps: list[tuple[str, dict[str, str]]] = [
        ("PRODUCT", {"cart": cart, "product": product, "quantity": quantity, "then": then})
        for cart, product, quantity, then in CART_STEPS
    ]
    return [*steps, ("DELIVERY", {"cart": CART, **ADDRESS}), ("SUMMARY", {"cart": CART, **ADDRESS})]


def exchange_payload(token: str, screen: str, data: dict[str, str]) -> dict[str, object]:
    return {
        "version": "3.0",
        "action": "data_exchange",
        "screen": screen,
        "flow_token": token,
        "data": data,
    }


def one_order_flow(bot: LiveBot, key: rsa.RSAPrivateKey, conversation: str) -> list[bytes]:
    """The requests of one order Flow, as one customer's WhatsApp sends them."""
    token = issue_token(conversation, (APP_SECRET,))
    return [
        flow_post(bot, key, exchange_payload(token, screen, data)) for screen, data in flow_steps()
    ]


def check_one_flow(bot: LiveBot, key: rsa.RSAPrivateKey) -> None:
    """One order Flow sent in order and every answer read: the load below then measures the
    screens a customer goes through, not error screens (it only sees status codes)."""
    token = issue_token(f"bench-check-{secrets.token_hex(3)}", (APP_SECRET,))
    screens = []
    for screen, data in flow_steps():
        body, aes_key, iv = encrypt_request(exchange_payload(token, screen, data), key.public_key())
        raw = json.dumps(body).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": hub_signature(raw, APP_SECRET),
        }
        response = requests.post(
            f"{bot.rasa_url}/webhooks/whatsapp/flow", data=raw, headers=headers, timeout=10
        )
        assert response.status_code == 200, response.status_code
        answer = decrypt_response(response.text, aes_key, iv)
        assert "error_message" not in answer.get("data", {}), answer
        screens.append(answer["screen"])
    assert screens == EXPECTED_SCREENS, screens


def data_exchange_figures(bot: LiveBot, key: rsa.RSAPrivateKey) -> list[Figure]:
    """Each connection is a line of customers, each going through a whole order Flow of a
    three-line cart (every fifth request closes the Flow, which also places the order in the
    chat)."""
    host, port = address(bot)
    check_one_flow(bot, key)
    figures = []
    for customers in CONCURRENCY_LEVELS:
        requests = []
        for n in range(customers):
            # Each connection is a stream of customers, one order Flow each: a conversation
            # that ordered 40 times in a few seconds would measure tracker growth instead.
            flows = [
                one_order_flow(bot, key, f"bench-{customers}-{n}-{f}-{secrets.token_hex(3)}")
                for f in range(FLOWS_PER_CUSTOMER)
            ]
            requests.append([request for flow in flows for request in flow])
        result, _ = asyncio.run(run_load(host, port, requests, LATENCY_SECONDS))
        assert set(result.statuses) == {200}, result.statuses
        name = f"flow_data_exchange_{customers}_customers"
        figures += [
            Figure(name, "p50", percentile(result.latencies_ms, 0.50), "ms"),
            Figure(name, "p99", percentile(result.latencies_ms, 0.99), "ms"),
            Figure(name, "throughput", result.rate, "req/s"),
        ]
    return figures


def flow_endpoint() -> list[Figure]:
    rsa_rate = rsa_private_ops_per_second()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    graph = GraphApiEmulator()
    graph.start()
    with tempfile.TemporaryDirectory() as workdir:
        bot = start_flow_bot(Path(workdir), graph, key)
        try:
            figures = [
                Figure("rsa2048_one_core", "private ops", rsa_rate, "ops/s"),
                *ping_figures(bot, key, rsa_rate),
                *data_exchange_figures(bot, key),
            ]
            rasa_pid = bot.processes[1].pid
            return [
                *figures,
                Figure("rasa_server", "RSS after the Flow bench", rss_mib(rasa_pid), "MiB"),
            ]
        finally:
            bot.stop()
            graph.stop()
