"""Staff's side of a hand-over to a person: `python -m scripts.chat_cli <command>` (or
`make chat ARGS=…`).

    list                   the open hand-overs: reference, reason, since when
    reply <ref> <text…>    a message to the customer, sent by the running bot's outbox
    resume <ref>           the bot answers the customer again (and tells them)

It works on the bot's database (DATABASE_URL, TRACKER_ENCRYPTION_KEY and the HANDOVER_*
settings, ENV_FILE or `.env` included), so the bot need not be reachable: the running Rasa
server sends the reply within OUTBOX_POLL_SECONDS and gives the conversation back at its
next sweep (REPLAY_INTERVAL_SECONDS) or the customer's next message, whichever comes first.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

from connectors.handover.desk import MAX_REPLY_CHARACTERS, HandoverDesk, HandoverError
from connectors.settings import HandoverSettings
from scripts.operator_store import open_store
from shop_contract.entities import ENDED_BY_STAFF
from shop_contract.env_settings import ConfigError


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="chat", description=__doc__.split("\n")[0])
    commands = top.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the open hand-overs")
    reply = commands.add_parser("reply", help="send the customer a message")
    reply.add_argument("ref", help="the hand-over's reference, e.g. H-7KQ2M9XA")
    reply.add_argument("text", nargs="+", help="the message (the words are joined by spaces)")
    resume = commands.add_parser("resume", help="give the conversation back to the bot")
    resume.add_argument("ref", help="the hand-over's reference")
    return top


def since(timestamp: float, now: float) -> str:
    minutes = int((now - timestamp) // 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parser().parse_args(argv)
    store = open_store(f"chat {arguments.command}")
    try:
        desk = HandoverDesk(store, HandoverSettings.from_env(os.environ))
    except ConfigError as error:
        print(f"chat {arguments.command}: {error}", file=sys.stderr)
        return 2
    if arguments.command == "list":
        handovers = store.handovers.listing()
        now = time.time()
        for handover in handovers:
            replied = (
                f"staff replied {since(handover.staff_replied_at, now)} ago"
                if handover.staff_replied_at
                else "no reply yet"
            )
            print(
                f"{handover.ref}  {handover.reason:14s}  waiting "
                f"{since(handover.opened_at, now)}  {replied}"
            )
        print(f"{len(handovers)} open hand-over(s)")
        return 0
    try:
        if arguments.command == "reply":
            text = " ".join(arguments.text).strip()
            if not text or len(text) > MAX_REPLY_CHARACTERS:
                print(
                    f"chat reply: the text must have 1 to {MAX_REPLY_CHARACTERS} characters",
                    file=sys.stderr,
                )
                return 1
            desk.reply(arguments.ref, text)
            print(f"{arguments.ref}: reply queued; the bot sends it to the customer")
        else:
            desk.end(arguments.ref, ENDED_BY_STAFF)
            print(f"{arguments.ref}: ended; the bot answers this customer again")
    except HandoverError as error:
        print(f"chat {arguments.command}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
