"""Operator tool for the notification outbox: `python -m scripts.outbox_cli list|retry`
(or `make outbox ARGS=…`): list entries by status, send dead letters again."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from connectors.jobs.outbox import STATUSES
from scripts.operator_store import open_store


def masked(customer_id: str) -> str:
    """Enough of a customer id to tell entries apart, not enough to identify anyone."""
    return "…" + customer_id[-4:]


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.outbox_cli", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="show notifications")
    listing.add_argument("--status", choices=STATUSES)
    retry = commands.add_parser("retry", help="send dead letters again")
    retry.add_argument("ids", nargs="*", type=int, help="entry ids (default: every dead letter)")
    args = parser.parse_args(argv)
    store = open_store("outbox")
    if args.command == "list":
        for entry in store.outbox.entries(args.status):
            customer = "unreadable" if entry.unreadable else masked(entry.customer_id)
            print(
                f"{entry.id:6d}  {entry.status:13s}  attempts={entry.attempts:<3d} "
                f"customer={customer}  {entry.last_error or ''}"
            )
        return 0
    changed = store.outbox.retry_dead(args.ids or None)
    print(f"{changed} notification(s) queued again")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
