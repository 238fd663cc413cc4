"""Operator tooling for WhatsApp Flows: `python -m scripts.flow_cli COMMAND` (or `make flow-cli`).

  keygen       RSA-2048 key pair; the private key encrypted with a passphrase, the public printed
  upload-key   register the public key with Meta (/{phone-number-id}/whatsapp_business_encryption)
  key-status   show the registered key and its signature status
  send-flow    send the order Flow to a (test) number
  flow-request build an encrypted request exactly as WhatsApp does, send it, print the answer

Settings come from the environment (and ENV_FILE or `.env`), read as the bot reads them.
It builds the Flow message as the action server does and sends it as the connector does,
so it lives outside both.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from actions.flow_message import order_flow_message
from actions.settings import FlowMessageSettings
from connectors.edge.signatures import hub_signature
from connectors.flows.crypto import decrypt_response, encrypt_request
from connectors.settings import AppSecretSettings, FlowSettings, WhatsAppSettings
from connectors.whatsapp.graph import GraphApiError, GraphClient, GraphSettings
from connectors.whatsapp.messages import envelope, is_business_scoped
from shop_contract.catalog import default_catalog
from shop_contract.env_settings import ConfigError, load_env_file
from shop_contract.flow_tokens import issue_token


class CliError(Exception):
    """A problem the operator can fix; printed as one line."""


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def keygen(out: Path, passphrase: str) -> str:
    """Writes an encrypted PKCS#8 private key to `out` (mode 600); returns the public PEM."""
    if out.exists():
        raise CliError(f"{out} exists: refusing to overwrite a key")
    if len(passphrase) < 8:
        raise CliError("the passphrase must have at least 8 characters")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase.encode()),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    return public_pem(key)


def private_key() -> rsa.RSAPrivateKey:
    key = FlowSettings.from_env(os.environ).private_key
    if key is None:
        raise CliError("WHATSAPP_FLOW_PRIVATE_KEY: not set")
    return key


def graph_client() -> tuple[GraphClient, WhatsAppSettings]:
    settings = WhatsAppSettings.from_env(os.environ)
    graph = GraphClient(
        GraphSettings(settings.api_base, settings.phone_number_id, settings.access_token)
    )
    return graph, settings


async def upload_key() -> str:
    graph, _ = graph_client()
    try:
        await graph.upload_public_key(public_pem(private_key()))
        status = await graph.public_key_status()
    finally:
        await graph.close()
    return json.dumps(status, indent=2)


async def key_status() -> str:
    graph, _ = graph_client()
    try:
        status = await graph.public_key_status()
    finally:
        await graph.close()
    entries = status.get("data") or [{}]
    return str(entries[0].get("business_public_key_signature_status", "UNKNOWN"))


async def send_flow(to: str) -> str:
    graph, _ = graph_client()
    settings = FlowMessageSettings.from_env(os.environ)
    body = order_flow_message(default_catalog(), to, settings)
    try:
        return await graph.send_message(envelope(to, is_business_scoped(to), body))
    finally:
        await graph.close()


def flow_request(
    url: str, action: str, screen: str | None, data: dict[str, Any], token: str | None, to: str
) -> tuple[int, Any]:
    """One Flow request as WhatsApp makes it; returns (status, decrypted answer or None)."""
    secrets = AppSecretSettings.from_env(os.environ).app_secrets
    payload: dict[str, Any] = {"version": "3.0", "action": action}
    if action != "ping":
        payload["flow_token"] = token or issue_token(to, secrets)
    if screen:
        payload["screen"] = screen
        payload["data"] = data
    body, aes_key, iv = encrypt_request(payload, private_key().public_key())
    raw = json.dumps(body).encode()
    answer = requests.post(
        url, data=raw, headers={"X-Hub-Signature-256": hub_signature(raw, secrets[-1])}, timeout=15
    )
    if answer.status_code in (200, 427):
        return answer.status_code, decrypt_response(answer.text, aes_key, iv)
    return answer.status_code, None


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(
        prog="python -m scripts.flow_cli",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = cli.add_subparsers(dest="command", required=True)
    gen = commands.add_parser("keygen", help="create an encrypted RSA-2048 key pair")
    gen.add_argument("--out", type=Path, required=True, help="where to write the private key")
    gen.add_argument(
        "--passphrase-env",
        default="WHATSAPP_FLOW_PRIVATE_KEY_PASSPHRASE",
        help="variable holding the passphrase (asked for when unset)",
    )
    commands.add_parser("upload-key", help="register the public key with Meta")
    commands.add_parser("key-status", help="show the public key's signature status")
    send = commands.add_parser("send-flow", help="send the order Flow to a number")
    send.add_argument("--to", required=True, help="WhatsApp id (phone digits) or user id")
    request = commands.add_parser("flow-request", help="call a Flow endpoint as WhatsApp does")
    request.add_argument("--url", default="http://localhost:5005/webhooks/whatsapp/flow")
    request.add_argument(
        "--action", default="ping", choices=["ping", "INIT", "BACK", "data_exchange"]
    )
    request.add_argument("--screen")
    request.add_argument("--data", default="{}", help="screen data as JSON")
    request.add_argument("--token", help="flow token (default: a new one for --to)")
    request.add_argument("--to", default="operator-check", help="conversation for a new token")
    return cli


def run(argv: Sequence[str]) -> int:
    args = parser().parse_args(argv)
    try:
        load_env_file()
        if args.command == "keygen":
            passphrase = os.environ.get(args.passphrase_env) or getpass.getpass("Passphrase: ")
            print(keygen(args.out, passphrase), end="")
        elif args.command == "upload-key":
            print(asyncio.run(upload_key()))
        elif args.command == "key-status":
            print(asyncio.run(key_status()))
        elif args.command == "send-flow":
            print(f"sent: {asyncio.run(send_flow(args.to))}")
        else:
            status, answer = flow_request(
                args.url, args.action, args.screen, json.loads(args.data), args.token, args.to
            )
            print(f"HTTP {status}")
            if answer is not None:
                print(json.dumps(answer, indent=2, ensure_ascii=False))
            return 0 if status == 200 else 1
    except (
        CliError,
        ConfigError,
        GraphApiError,
        requests.RequestException,
        json.JSONDecodeError,
    ) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
