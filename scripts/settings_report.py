"""Says, in one place, which settings a real WhatsApp/Stripe deployment still lacks.

`make run` prints this report before starting the servers. The bot still starts without
them (the REST channel and `rasa shell` work); each missing variable is named with where
to get its value. `.env.example` documents the same variables; a test keeps both in step.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from actions.settings import ActionServerSettings
from connectors.settings import RestSettings
from shop_contract.env_settings import ConfigError, in_sandbox, is_set

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Setting:
    """One environment variable the deployment reads."""

    name: str
    feature: str
    required: bool
    how_to_get: str


REST_TOKEN = "RASA_REST_TOKEN"  # noqa: S105 - the variable's name

SETTINGS: tuple[Setting, ...] = (
    Setting(
        "WHATSAPP_ACCESS_TOKEN",
        "WhatsApp",
        True,
        "Meta Business Suite > System users > generate a token with whatsapp_business_messaging",
    ),
    Setting(
        "WHATSAPP_PHONE_NUMBER_ID",
        "WhatsApp",
        True,
        "developers.facebook.com > your app > WhatsApp > API Setup > Phone number ID",
    ),
    Setting(
        "WHATSAPP_APP_SECRET",
        "WhatsApp",
        True,
        "developers.facebook.com > your app > App settings > Basic > App secret",
    ),
    Setting(
        "WHATSAPP_VERIFY_TOKEN",
        "WhatsApp",
        True,
        "any random string you choose; enter the same one in the app's Webhooks configuration",
    ),
    Setting(
        "WHATSAPP_FLOW_ID",
        "WhatsApp Flows",
        True,
        "WhatsApp Manager > Account tools > Flows > your published order Flow > Flow ID",
    ),
    Setting(
        "WHATSAPP_FLOW_PRIVATE_KEY",
        "WhatsApp Flows",
        True,
        "generate a key pair and upload the public key (see README, 'WhatsApp Flows keys')",
    ),
    Setting(
        "WHATSAPP_FLOW_PRIVATE_KEY_PASSPHRASE",
        "WhatsApp Flows",
        False,
        "the passphrase you chose when generating the key pair, if any",
    ),
    Setting(
        "WHATSAPP_CATALOG_ID",
        "WhatsApp",
        False,
        "Commerce Manager > your catalog > Settings > Catalog ID (the one connected to the WABA)",
    ),
    Setting(
        "WHATSAPP_API_BASE",
        "WhatsApp",
        False,
        "defaults to https://graph.facebook.com/v23.0",
    ),
    Setting(
        "STRIPE_SECRET_KEY",
        "Stripe",
        True,
        "dashboard.stripe.com > Developers > API keys > Secret key (sk_test_... while testing)",
    ),
    Setting(
        "STRIPE_WEBHOOK_SECRET",
        "Stripe",
        True,
        "dashboard.stripe.com > Developers > Webhooks > your endpoint > Signing secret (whsec_...)",
    ),
    Setting(
        "STRIPE_API_BASE",
        "Stripe",
        False,
        "defaults to https://api.stripe.com",
    ),
    Setting(
        REST_TOKEN,
        "Access",
        False,
        "any long random string (e.g. `openssl rand -hex 32`); only if tools must post to the "
        "REST channel while WhatsApp is on",
    ),
    Setting(
        "ACTION_SERVER_TOKEN",
        "Access",
        False,
        "any long random string; required when the action server listens beyond 127.0.0.1",
    ),
    Setting(
        "HANDOVER_WEBHOOK_URL",
        "Hand-over",
        False,
        "your inbox or chat tool's webhook URL that takes signed JSON (README, 'Hand-over')",
    ),
    Setting(
        "HANDOVER_WEBHOOK_SECRET",
        "Hand-over",
        False,
        "any long random string (`openssl rand -hex 32`); your receiver checks it",
    ),
    Setting(
        "HANDOVER_STAFF_WA_ID",
        "Hand-over",
        False,
        "a staff member's WhatsApp number, digits with country code, no + (with the URL)",
    ),
    Setting(
        "HANDOVER_TIMEOUT_MINUTES",
        "Hand-over",
        False,
        "minutes without a word from the shop before the bot answers again; defaults to 1440",
    ),
    Setting(
        "OPERATOR_API_TOKEN",
        "Access",
        False,
        "any long random string; the operator API (hand-over replies) is off without it",
    ),
    Setting(
        "DATABASE_URL",
        "Storage",
        False,
        "defaults to the SQLite file var/tracker.db; PostgreSQL when running several replicas",
    ),
    Setting(
        "TRACKER_ENCRYPTION_KEY",
        "Storage",
        False,
        "`make run` saves one in .env for the local SQLite file; otherwise `make privacy "
        "ARGS=keygen`",
    ),
    Setting(
        "RAW_BODY_RETENTION_DAYS",
        "Storage",
        False,
        "days raw webhook payloads and message bodies are kept; defaults to 30",
    ),
)


def missing_settings(environ: Mapping[str, str]) -> list[Setting]:
    """Returns the required settings that are unset or empty in `environ`."""
    return [s for s in SETTINGS if s.required and not is_set(environ, s.name)]


def render_report(missing: list[Setting]) -> str:
    """One block of text: nothing missing, or each missing variable with where to get it."""
    if not missing:
        return "All WhatsApp and Stripe settings are present."
    width = max(len(s.name) for s in missing)
    lines = [
        "Not connected to WhatsApp/Stripe yet: these settings are missing "
        "(put them in .env, see .env.example):"
    ]
    lines += [f"  {s.name:<{width}}  [{s.feature}] {s.how_to_get}" for s in missing]
    if any(s.feature == "WhatsApp" for s in missing):
        lines.append("Until then the WhatsApp channel stays off; the bot answers on the REST")
        lines.append("channel and in `make shell`.")
    return "\n".join(lines)


WHATSAPP_CHANNEL = "connectors.whatsapp.channel.WhatsAppInput"


def whatsapp_ready(environ: Mapping[str, str]) -> bool:
    """True when every required WhatsApp setting is present."""
    return not [s for s in missing_settings(environ) if s.feature == "WhatsApp"]


GUARDED_REST_CHANNEL = "connectors.rest_channel.TokenRestInput"


def channels_for(environ: Mapping[str, str], credentials: dict[str, object]) -> dict[str, object]:
    """credentials.yml's channels, without WhatsApp until its settings are complete. Next to
    WhatsApp, REST channels are left out (Rasa's plain `rest` always, ours without
    RASA_REST_TOKEN): anyone reaching the port could post as a customer."""
    if not whatsapp_ready(environ):
        return {name: value for name, value in credentials.items() if name != WHATSAPP_CHANNEL}
    rest_channels = (
        {"rest"} if RestSettings.from_env(environ).token else {"rest", GUARDED_REST_CHANNEL}
    )
    return {name: value for name, value in credentials.items() if name not in rest_channels}


def endpoints_for(
    environ: Mapping[str, str], endpoints: dict[str, Any], actions_port: int
) -> dict[str, Any]:
    """endpoints.yml with the action server on `actions_port`, and the shared token that
    scripts/action_server.py checks (ACTION_SERVER_TOKEN) sent as a bearer header."""
    action_endpoint = dict(endpoints.get("action_endpoint") or {})
    url = str(action_endpoint.get("url", "http://localhost:5055/webhook"))
    action_endpoint["url"] = re.sub(r"//localhost:\d+/", f"//localhost:{actions_port}/", url)
    token = ActionServerSettings.from_env(environ).token
    if token:
        headers = dict(action_endpoint.get("headers") or {})
        action_endpoint["headers"] = {**headers, "Authorization": f"Bearer {token}"}
    return {**endpoints, "action_endpoint": action_endpoint}


def write_private(path: Path, text: str) -> None:
    """Writes `text` to `path`, readable by its owner only (it may hold a token)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text, encoding="utf-8")


PLATFORMS = ("WhatsApp", "Stripe")


def configured_platforms(environ: Mapping[str, str]) -> str:
    """`none` when no required WhatsApp or Stripe setting is set (make run starts the
    sandbox), `all` when every one is, else `partial`."""
    required = [s for s in SETTINGS if s.required and s.feature.startswith(PLATFORMS)]
    present = [s for s in required if is_set(environ, s.name)]
    if not present:
        return "none"
    return "all" if len(present) == len(required) else "partial"


def main() -> int:
    """Prints the report for the current environment (run.sh has loaded `.env` into it) and
    writes the credentials file `make run` starts Rasa with."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--credentials-out", type=Path, help="where to write the channels")
    parser.add_argument("--endpoints-out", type=Path, help="where to write the endpoints")
    parser.add_argument("--actions-port", type=int, default=5055, help="the action server's")
    parser.add_argument(
        "--platforms", action="store_true", help="print none, partial or all, and exit"
    )
    args = parser.parse_args()
    if args.platforms:
        print(configured_platforms(os.environ))
        return 0
    if in_sandbox(os.environ):
        print("Sandbox: the WhatsApp and Stripe settings point at the emulators.", file=sys.stderr)
    else:
        print(render_report(missing_settings(os.environ)), file=sys.stderr)
    try:
        if args.credentials_out:
            source = yaml.safe_load((PROJECT_ROOT / "credentials.yml").read_text(encoding="utf-8"))
            channels = channels_for(os.environ, source or {})
            args.credentials_out.parent.mkdir(parents=True, exist_ok=True)
            args.credentials_out.write_text(yaml.safe_dump(channels), encoding="utf-8")
        if args.endpoints_out:
            source = yaml.safe_load((PROJECT_ROOT / "endpoints.yml").read_text(encoding="utf-8"))
            endpoints = endpoints_for(os.environ, source or {}, args.actions_port)
            write_private(args.endpoints_out, yaml.safe_dump(endpoints, sort_keys=False))
    except ConfigError as error:
        print(f"settings: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
