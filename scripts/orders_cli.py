"""The shop's side of paid orders: `python -m scripts.orders_cli <command>` (or
`make orders ARGS=…`).

    list [--status paid]                     waiting to ship (or shipped, delivered,
                                             refunded, all, unconfirmed): order, amount,
                                             state, age
    ship <order> --carrier DHL --tracking-url https://…
    deliver <order>
    refund <order> [--amount 500] [--key K]  all that is left, or AMOUNT in minor units
                                             (500 = 5.00), under a new random key (printed
                                             when the outcome is unclear); --key K repeats
                                             the refund made under K, never a second one

A client of the running bot's orders API (ORDERS_API_URL, default the local Rasa server;
ORDERS_API_TOKEN; ENV_FILE or `.env` included): shipping and delivery must run a turn in the
customer's conversation, and a refund is the bot's call to Stripe, so both need the bot.
Exit status 0 when done; 1 when refused or when the customer could not be told (the API's
reason is printed; repeating a shipment or delivery tells them once); 2 when not set up
(settings, token); 3 when the outcome is unclear (no answer in time, the bot unreachable, an
answer that is not the API's, or the API failing with a 5xx): a refund's key is printed
before the call, and repeating with `--key K` never refunds twice.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Sequence
from typing import Any

from actions.orders.money import format_amount
from connectors.orders.refunds import REFUND_WORST_CASE_SECONDS
from connectors.settings import OrdersSettings
from shop_contract.env_settings import ConfigError, load_env_file

# A refund waits for Stripe, with its retries: longer than the server can take, so the answer
# is not lost to a timeout while the refund goes through.
TIMEOUT_SECONDS = REFUND_WORST_CASE_SECONDS + 15.0


class NoRedirects(urllib.request.HTTPRedirectHandler):
    """Refuses to follow redirects: urllib would send the bearer token to wherever a
    Location header points. A 3xx comes back as an HTTPError, reported as an error."""

    def redirect_request(self, *_: Any) -> None:
        return None


OPENER = urllib.request.build_opener(NoRedirects)
UNCLEAR = 3  # exit status when the request may or may not have been done


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="orders", description=__doc__.split("\n")[0])
    commands = top.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="paid orders, oldest first")
    listing.add_argument(
        "--status",
        default="paid",
        choices=("paid", "shipped", "delivered", "refunded", "all", "unconfirmed"),
        help="paid: waiting to ship (the default); unconfirmed: paid at Stripe, never "
        "confirmed by the bot (look at them in the Stripe dashboard)",
    )
    ship = commands.add_parser("ship", help="mark an order shipped and tell the customer")
    ship.add_argument("order", help="the order id, e.g. ORD-7KQ2M9XA")
    ship.add_argument("--carrier", required=True, help="e.g. DHL")
    ship.add_argument("--tracking-url", required=True, help="the carrier's https tracking link")
    deliver = commands.add_parser("deliver", help="mark an order delivered and tell the customer")
    deliver.add_argument("order")
    refund = commands.add_parser("refund", help="refund an order through Stripe")
    refund.add_argument("order")
    refund.add_argument(
        "--amount",
        type=minor_units,
        help="minor units, as Stripe counts them: 500 is 5.00 EUR (default: all that is left)",
    )
    refund.add_argument("--key", help="an idempotency key: the same key is the same refund")
    return top


def minor_units(text: str) -> int:
    if not text.isdigit() or int(text) <= 0:
        raise argparse.ArgumentTypeError(
            f"'{text}': a whole number of minor units above 0 (500 is 5.00), no decimal point"
        )
    return int(text)


def since(timestamp: float, now: float) -> str:
    minutes = int((now - timestamp) // 60)
    if minutes >= 24 * 60:
        return f"{minutes // (24 * 60)} d {minutes % (24 * 60) // 60} h"
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def state_of(order: dict[str, Any]) -> str:
    if order["amount"] > 0 and order["amount_refunded"] >= order["amount"]:
        return "refunded"
    state = str(order["fulfilment"])
    if order["amount_refunded"]:
        refunded = format_amount(order["amount_refunded"], order["currency"])
        state += f" (refunded {refunded})"
    return state


def line(order: dict[str, Any], now: float) -> str:
    amount = format_amount(order["amount"], order["currency"])
    age = since(order["paid_at"], now)
    row = f"{order['order_id']}  {amount:>10}  {state_of(order):24s}  paid {age} ago"
    row += f"  {order['customer']}"
    if order.get("tracking_url"):
        row += f"  {order['carrier']} {order['tracking_url']}"
    return row


def call(
    settings: OrdersSettings, method: str, path: str, body: dict[str, Any] | None, key: str | None
) -> tuple[int, dict[str, Any]]:
    """One request to the orders API: (status, JSON answer)."""
    headers = {"Authorization": f"Bearer {settings.token}", "Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 - the operator's configured http(s) URL
        settings.api_url + path, data=data, headers=headers, method=method
    )
    try:
        with OPENER.open(request, timeout=TIMEOUT_SECONDS) as answer:
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as error:
        if 300 <= error.code < 400:
            return error.code, {"error": "the orders API answered with a redirect (not followed)"}
        try:
            return error.code, json.loads(error.read() or b"{}")
        except ValueError:
            return error.code, {"error": error.reason}


def request_of(arguments: argparse.Namespace) -> tuple[str, str, dict[str, Any] | None, str | None]:
    """(method, path, body, idempotency key) of a command."""
    if arguments.command == "list":
        return "GET", "?" + urllib.parse.urlencode({"status": arguments.status}), None, None
    path = f"/{urllib.parse.quote(arguments.order, safe='')}/{arguments.command}"
    if arguments.command == "ship":
        body = {"carrier": arguments.carrier, "tracking_url": arguments.tracking_url}
        return "POST", path, body, None
    if arguments.command == "refund":
        body = {} if arguments.amount is None else {"amount": arguments.amount}
        return "POST", path, body, arguments.key or str(uuid.uuid4())
    return "POST", path, {}, None


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parser().parse_args(argv)
    name = f"orders {arguments.command}"
    try:
        load_env_file()
        settings = OrdersSettings.from_env(os.environ)
    except ConfigError as error:
        print(f"{name}: {error}", file=sys.stderr)
        return 2
    if settings.token is None:
        print(
            f"{name}: ORDERS_API_TOKEN is not set (the bot's orders API is off without it)",
            file=sys.stderr,
        )
        return 2
    method, path, body, key = request_of(arguments)
    retry = f"; repeat with --key {key} to retry safely" if arguments.command == "refund" else ""
    if key is not None:  # before the call: whatever happens next, the key is not lost
        print(f"{name}: idempotency key {key}", file=sys.stderr)
    try:
        status, answer = call(settings, method, path, body, key)
        if not isinstance(answer, dict):
            raise ValueError("not a JSON object")
    except (OSError, http.client.HTTPException, ValueError) as error:
        if isinstance(getattr(error, "reason", error), TimeoutError):
            said = f"no answer within {TIMEOUT_SECONDS:.0f} s: it may have been done"
        elif isinstance(error, OSError):
            said = f"cannot reach the bot at {settings.api_url} ({error}); is it running?"
        else:
            said = f"the answer was not the orders API's ({type(error).__name__}): it may have "
            said += "been done"
        print(f"{name}: {said}{retry}", file=sys.stderr)
        return UNCLEAR
    if status >= 300:
        unclear = status >= 500  # the bot or Stripe failed: it may have been done
        said = answer.get("error", answer)
        print(f"{name}: refused ({status}): {said}{retry if unclear else ''}", file=sys.stderr)
        return UNCLEAR if unclear else 1
    now = time.time()
    if arguments.command == "list":
        for order in answer["orders"]:
            print(line(order, now))
        print(f"{len(answer['orders'])} order(s) {arguments.status}")
        if answer.get("more"):
            print("more are waiting: these are the oldest; deal with them and list again")
    elif arguments.command == "refund":
        refund = answer["refund"]
        print(
            f"{arguments.order}: refund of {format_amount(refund['amount'], answer['currency'])} "
            f"{refund['status']} ({refund['id']})"
            + ("; it had been made already" if answer.get("repeated") else "")
            + "; the customer is told when Stripe confirms it"
        )
    else:
        if not answer.get("told"):
            print(
                f"{arguments.order}: {line(answer, now)}; recorded, but the customer was NOT "
                f"told: {answer.get('reason')}",
                file=sys.stderr,
            )
            return 1
        print(f"{arguments.order}: {line(answer, now)}; the customer was told")
    return 0


if __name__ == "__main__":
    sys.exit(main())
