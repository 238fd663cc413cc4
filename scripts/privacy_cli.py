"""Privacy tooling: `python -m scripts.privacy_cli <command>` (or `make privacy ARGS=…`).

    keygen [--id k2]                  a new key entry for TRACKER_ENCRYPTION_KEY
    export --customer <wa_id>         all we hold about a customer, as JSON on stdout
    erase --customer <wa_id> --yes    delete it: conversation, messages, payments, outbox
    purge --older-than 90d            delete conversations idle that long and older rows
    expire-bodies [--days 30]         drop raw payloads and bodies past retention
    reencrypt                         rewrite everything under the newest key, bound to its row

It reads DATABASE_URL, TRACKER_ENCRYPTION_KEY and RAW_BODY_RETENTION_DAYS like the bot
(ENV_FILE or `.env` included). The Stripe side (Customer, payments, subscriptions) is not
erased here, nor a subscription cancelled: `erase` names the customer's Stripe Customers
(`stripe_customers`) and says how to remove them at Stripe.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

_AGE = re.compile(r"(\d+)([dh])")


def parse_age(text: str) -> float:
    """'90d' or '12h' in seconds."""
    match = _AGE.fullmatch(text.strip())
    if not match:
        raise argparse.ArgumentTypeError("give an age like 90d (days) or 12h (hours)")
    return int(match[1]) * (86400 if match[2] == "d" else 3600)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="privacy", description=__doc__.split("\n")[0])
    commands = top.add_subparsers(dest="command", required=True)
    keygen = commands.add_parser("keygen", help="print a new key entry")
    keygen.add_argument("--id", default="k1", help="key id (default k1; use k2, k3 … to rotate)")
    for name in ("export", "erase"):
        command = commands.add_parser(name, help=f"{name} one customer's data")
        command.add_argument("--customer", required=True, help="the WhatsApp id (wa_id)")
    commands.choices["erase"].add_argument("--yes", action="store_true", help="do not ask")
    purge = commands.add_parser("purge", help="delete data older than an age")
    purge.add_argument("--older-than", type=parse_age, required=True, metavar="AGE")
    expire = commands.add_parser("expire-bodies", help="drop raw payloads past retention")
    expire.add_argument("--days", type=float, default=None, help="default RAW_BODY_RETENTION_DAYS")
    commands.add_parser("reencrypt", help="rewrite everything under the newest key")
    return top


def main(argv: list[str] | None = None) -> int:
    arguments = parser().parse_args(argv)
    if arguments.command == "keygen":
        from connectors.storage.keys import ENV_VAR, new_key_line

        print(f"{ENV_VAR}={new_key_line(arguments.id)}")
        return 0
    from connectors.privacy import rights
    from connectors.privacy.reencrypt import reencrypt
    from connectors.settings import RetentionSettings
    from connectors.storage.keys import UnreadableError
    from scripts.operator_store import open_store
    from shop_contract.env_settings import ConfigError

    store = open_store(f"privacy {arguments.command}", verify=arguments.command != "reencrypt")
    try:
        if arguments.command == "export":
            print(json.dumps(rights.export_customer(store, arguments.customer), indent=2))
            return 0
        if arguments.command == "erase":
            if (
                not arguments.yes
                and input("Erase everything held about this customer? [y/N] ") != "y"
            ):
                print("nothing erased")
                return 1
            at_stripe, unreadable = rights.stripe_customers_of(store, arguments.customer)
            result = rights.erase_customer(store, arguments.customer)
            if not any(result.values()):
                print(
                    "privacy erase: nothing is held under this id — give the WhatsApp id as "
                    "its digits (no '+', spaces or leading zeros), as in the export",
                    file=sys.stderr,
                )
                return 1
            print(
                json.dumps(
                    {
                        "command": "erase",
                        "rows": result,
                        "stripe_customers": at_stripe,
                        "rows_not_read_for_stripe_customers": unreadable,
                        "kept_by_stripe": rights.KEPT_BY_STRIPE,
                    }
                )
            )
            return 0
        elif arguments.command == "purge":
            result = rights.purge_older_than(store, arguments.older_than)
        elif arguments.command == "expire-bodies":
            days = arguments.days
            seconds = (
                days * 86400 if days is not None else RetentionSettings.from_env(os.environ).seconds
            )
            result = rights.expire_raw_bodies(store, seconds)
        else:
            result = reencrypt(store)
    except (UnreadableError, ConfigError) as error:  # StoredDataError is a ConfigError
        print(f"privacy {arguments.command}: {error}", file=sys.stderr)
        return 2
    print(json.dumps({"command": arguments.command, "rows": result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
