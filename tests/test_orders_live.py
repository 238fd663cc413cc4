"""Fulfilment by the shop through the real servers (the sandbox's bot, Graph API and Stripe
emulators): a customer pays, `make orders` (scripts/orders_cli.main, in-process, against the
running bot's orders API) lists, ships, delivers and refunds the order in two parts; the
customer gets each message once however often a request is repeated, Stripe shows exactly
the refunds asked for, and the API refuses a missing or wrong token."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from connectors.orders.desk import refund_key
from connectors.orders.refunds import Refunds
from connectors.storage.opening import open_store
from scripts import orders_cli
from tests.support.sandbox_client import Customer, Sandbox, checkout, kind, link_of, shown

pytestmark = pytest.mark.live  # every test here talks to the running bot

Run = Callable[..., tuple[int, str]]

TRACKING = "https://tracking.example/parcel/00340434161234567890"


def api(sandbox: Sandbox) -> str:
    return f"{sandbox.bot.rasa_url}/webhooks/whatsapp/orders"


@pytest.fixture
def cli(
    live_sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> Run:
    """Runs `make orders ARGS=…` with the sandbox's settings: (exit status, output)."""
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setenv("ORDERS_API_URL", api(live_sandbox))
    monkeypatch.setenv("ORDERS_API_TOKEN", live_sandbox.emulators.keys.orders_token)

    def run(*argv: str) -> tuple[int, str]:
        try:
            code = orders_cli.main(list(argv))
        except SystemExit as refused:  # argparse refusing the command line
            code = int(refused.code or 0)
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    return run


def paid_order(customer: Customer) -> tuple[str, str]:
    """The customer orders decaf by text and pays: (order id, Stripe PaymentIntent)."""
    customer.say("I'd like to order decaf")
    summary = customer.next(0)
    customer.tap(summary, "Yes, pay now")
    link = customer.next(1)
    checkout(link_of(link), "pay")
    confirmation = shown(customer.next(2))
    order = confirmation.split("Order ")[1].split(" ")[0]
    return order, link_of(link)


def test_ship_deliver_and_refund_each_tell_the_customer_once(
    live_sandbox: Sandbox, cli: Run
) -> None:
    ida = live_sandbox.customer("Ida")
    order, url = paid_order(ida)
    stripe = live_sandbox.emulators.stripe
    session = session_of(live_sandbox, url)
    payment_intent, total = session["payment_intent"], session["amount_total"]

    code, out = cli("list", "--status", "paid")
    assert code == 0, out
    (row,) = [line for line in out.splitlines() if line.startswith(order)]
    assert "unfulfilled" in row and ida.wa_id not in out  # never the number

    code, out = cli("ship", order, "--carrier", "DHL", "--tracking-url", TRACKING)
    assert code == 0 and "the customer was told" in out, out  # the API waited for the turn
    shipped = shown(ida.next(3))
    assert f"order {order} is on its way with DHL" in shipped and TRACKING in shipped
    assert cli("ship", order, "--carrier", "DHL", "--tracking-url", TRACKING)[0] == 0  # again
    assert cli("ship", order, "--carrier", "DHL", "--tracking-url", "http://x.example/1")[0] == 1
    assert len(ida.wait(4, settle=True)) == 4  # the repeat told nothing more
    code, out = cli("list", "--status", "shipped")
    assert any(line.startswith(order) for line in out.splitlines()), out

    ida.say("where is my order")
    assert f"shipped with DHL, track it at {TRACKING}" in shown(ida.next(4))

    assert cli("deliver", order)[0] == 0
    assert f"Order {order} has been delivered" in shown(ida.next(5))
    assert cli("deliver", order)[0] == 0  # a repeat: accepted, told once
    code, out = cli("ship", order, "--carrier", "UPS", "--tracking-url", TRACKING)
    assert code == 1 and "(409)" in out  # delivered: never back to shipped
    assert len(ida.wait(6, settle=True)) == 6

    for repeated in (False, True):  # the same request twice (a retry): one refund
        code, out = cli("refund", order, "--amount", "500", "--key", "ida-part-1")
        assert code == 0, out
        assert ("it had been made already" in out) == repeated  # Stripe's Idempotent-Replayed
    assert "refunded €5.00 for order" in shown(ida.next(6))
    code, out = cli("refund", order, "--amount", "600", "--key", "ida-part-1")
    assert code == 1 and "(409)" in out and "Idempotency-Key" in out  # Stripe refused it
    code, out = cli("refund", order, "--amount", "1.50")
    assert code == 2 and "minor units" in out  # argparse: no decimals, nothing sent
    code, out = cli("refund", order, "--amount", str(total))
    assert code == 1 and "(409)" in out  # more than is left
    assert cli("refund", order)[0] == 0  # the rest
    assert f"refunded {euros(total - 500)} for order" in shown(ida.next(7))
    code, out = cli("refund", order)
    assert code == 1 and "(409)" in out  # nothing left
    assert [
        r["amount"] for r in stripe.refunds.values() if r["payment_intent"] == payment_intent
    ] == [
        500,
        total - 500,
    ]
    assert len(ida.wait(8, settle=True)) == 8


def euros(minor: int) -> str:
    return f"€{minor // 100}.{minor % 100:02d}"


def test_my_orders_lists_each_order_with_its_state(live_sandbox: Sandbox, cli: Run) -> None:
    """A customer with a shipped order and an unpaid one asks for their orders, then
    where their order is: one answer each."""
    ivo = live_sandbox.customer("Ivo")
    shipped, first_url = paid_order(ivo)
    assert cli("ship", shipped, "--carrier", "DHL", "--tracking-url", TRACKING)[0] == 0
    assert "is on its way with DHL" in shown(ivo.next(3))
    ivo.say("I'd like to order espresso beans")
    ivo.tap(ivo.next(4), "Yes, pay now")
    second_url = link_of(ivo.next(5))
    (first, second) = [session_of(live_sandbox, url) for url in (first_url, second_url)]
    unpaid = second["metadata"]["order_id"]

    ivo.say("my orders")
    listing = ivo.next(6)
    assert shown(listing).splitlines() == [
        "Your orders, latest first:",
        f"• {unpaid}: waiting for your payment, {euros(second['amount_total'])}",
        f"• {shipped}: shipped with DHL, track it at {TRACKING}, {euros(first['amount_total'])}",
    ]
    ivo.say("where is my order")
    status = shown(ivo.next(7))
    assert status.startswith(f"Order {unpaid}: waiting for your payment.")
    assert f"You can pay here: {second_url}" in status
    assert len(ivo.wait(8, settle=True)) == 8


def session_of(sandbox: Sandbox, url: str) -> dict[str, Any]:
    """The Checkout Session whose payment link is `url`."""
    (session,) = [s for s in sandbox.emulators.stripe.sessions.values() if s["url"] == url]
    return session


def test_the_api_refuses_a_missing_or_wrong_token_and_bad_requests(
    live_sandbox: Sandbox,
) -> None:
    base = api(live_sandbox)
    token = live_sandbox.emulators.keys.orders_token
    for headers in ({}, {"Authorization": "Bearer " + "x" * 40}, {"Authorization": token}):
        assert requests.get(base, headers=headers, timeout=10).status_code == 401
        answer = requests.post(f"{base}/ORD-AAAAAAAA/refund", headers=headers, timeout=10)
        assert answer.status_code == 401 and "ORDERS_API_TOKEN" in answer.json()["error"]
    good = {"Authorization": f"Bearer {token}"}
    assert requests.get(base, headers=good, timeout=10).json()["orders"] is not None
    assert requests.get(f"{base}?status=lost", headers=good, timeout=10).status_code == 400
    keyless = requests.post(f"{base}/ORD-AAAAAAAA/refund", headers=good, timeout=10)
    assert keyless.status_code == 400 and "Idempotency-Key" in keyless.json()["error"]
    unknown = requests.post(f"{base}/ORD-AAAAAAAA/deliver", headers=good, timeout=10)
    assert unknown.status_code == 404
    assert requests.post(f"{base}/ORD-AAAAAAAA/cancel", headers=good, timeout=10).status_code == 404
    bad = requests.post(f"{base}/ORD-AAAAAAAA/ship", headers=good, data=b"[1]", timeout=10)
    assert bad.status_code == 400


def test_the_sandbox_staff_panel_ships_and_refunds(live_sandbox: Sandbox) -> None:
    """The chat page's staff panel, through the shop inbox's relay to the orders API (the
    page never holds the token)."""
    jon = live_sandbox.customer("Jon")
    order, _ = paid_order(jon)
    panel = f"{live_sandbox.page}/api/staff/orders"
    listed = requests.get(panel, timeout=10).json()["orders"]
    assert [o["fulfilment"] for o in listed if o["order_id"] == order] == ["unfulfilled"]
    ship = {"carrier": "GLS", "tracking_url": TRACKING}
    forged = requests.post(f"{panel}/{order}/ship", json=ship, timeout=10)
    assert forged.status_code == 403  # another site's form or fetch cannot add the header
    page = {"X-Staff-Panel": "1"}
    shipped = requests.post(f"{panel}/{order}/ship", json=ship, headers=page, timeout=10)
    assert shipped.status_code == 200, shipped.text
    assert "on its way with GLS" in shown(jon.next(3))
    mistake = requests.post(
        f"{panel}/{order}/refund", json={"amount": None}, headers=page, timeout=10
    )
    assert mistake.status_code == 400  # a lost amount is not "refund everything"
    refunded = requests.post(f"{panel}/{order}/refund", json={}, headers=page, timeout=30)
    assert refunded.status_code == 200, refunded.text
    assert refunded.json()["repeated"] is False  # the relay's key is new per click
    assert "refunded" in shown(jon.next(4))
    assert len(jon.wait(5, settle=True)) == 5


def test_outside_the_24_hour_window_the_shipment_goes_as_the_template(
    live_sandbox: Sandbox, cli: Run
) -> None:
    kim = live_sandbox.customer("Kim")
    order, _ = paid_order(kim)
    workdir = live_sandbox.bot.logs[0].parent  # the bot's database is there
    store = open_store(f"sqlite:///{workdir / 'bot.db'}")
    try:
        with store.engine.begin() as connection:
            connection.exec_driver_sql(
                "update wa_customers set last_inbound_at = ? where customer_pseudonym = ?",
                (time.time() - 2 * 24 * 3600, store.keys.pseudonym(kim.wa_id)),
            )
    finally:
        store.engine.dispose()
    assert cli("ship", order, "--carrier", "DHL", "--tracking-url", TRACKING)[0] == 0
    template = kim.next(3)
    assert kind(template) == "template" and template["body"]["template"]["name"] == "order_update"
    assert f"order {order} is on its way with DHL" in shown(template) and TRACKING in shown(
        template
    )
    assert len(kim.wait(4, settle=True)) == 4


def test_refunds_asked_at_once_under_different_keys_make_one_refund(
    live_sandbox: Sandbox,
) -> None:
    """Two staff members (or a double click through a relay that keys each click) ask for a
    refund of the same order at the same moment: while one request's outcome is unknown, the
    others are refused, so Stripe makes exactly one refund."""
    lea = live_sandbox.customer("Lea")
    order, url = paid_order(lea)
    stripe = live_sandbox.emulators.stripe
    session = session_of(live_sandbox, url)
    attempts = 4
    stripe.queue_delays(*[2.0] * attempts)  # each refund is made at once, answered late
    token = live_sandbox.emulators.keys.orders_token

    def ask(key: str) -> requests.Response:
        return requests.post(
            f"{api(live_sandbox)}/{order}/refund",
            json={"amount": 100},
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
            timeout=60,
        )

    with ThreadPoolExecutor(attempts) as pool:
        answers = list(pool.map(ask, [f"lea-{n}" for n in range(attempts)]))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] + [409] * (attempts - 1), [a.text for a in answers]
    assert len(stripe.refunded_of(session["payment_intent"])) == 1
    assert "refunded €1.00 for order" in shown(lea.next(3))
    assert len(lea.wait(4, settle=True)) == 4


def test_a_refund_stripe_made_as_the_bot_went_down_is_found_when_repeated_next_day(
    live_sandbox: Sandbox, cli: Run
) -> None:
    """The request was recorded and Stripe made the refund, but the bot went down before it
    heard back. A day later (Stripe has forgotten the key) the operator repeats it with its
    --key, as `make orders` said to: the refund is found at Stripe, not made again."""
    mia = live_sandbox.customer("Mia")
    order, url = paid_order(mia)
    stripe = live_sandbox.emulators.stripe
    (session,) = [s for s in stripe.sessions.values() if s["url"] == url]
    store = open_store(f"sqlite:///{live_sandbox.bot.logs[0].parent / 'bot.db'}")
    try:
        store.refund_requests.record(order, "mia-1", 400, since=0.0)  # as the bot did
    finally:
        store.engine.dispose()
    made_then = Refunds(live_sandbox.emulators.keys.stripe_secret_key, stripe.base_url)
    asyncio.run(made_then.refund(order, session["payment_intent"], 400, refund_key(order, "mia-1")))
    assert "refunded €4.00 for order" in shown(mia.next(3))  # from Stripe's charge.refunded
    stripe.forget_idempotency_keys()

    code, out = cli("refund", order, "--amount", "400", "--key", "mia-1")
    assert code == 0 and "it had been made already" in out, out
    assert [r["amount"] for r in stripe.refunded_of(session["payment_intent"])] == [400]
    assert len(mia.wait(4, settle=True)) == 4
