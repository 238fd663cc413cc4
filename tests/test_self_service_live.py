"""After the payment, through the sandbox's real servers (the bot, the Graph API and Stripe
emulators): the confirmation carries Stripe's receipt link, and it opens."""

from __future__ import annotations

import re

import pytest
import requests

from tests.support.sandbox_client import Sandbox, checkout, link_of, shown

pytestmark = pytest.mark.live  # every test here talks to the running bot


def test_a_paid_orders_confirmation_carries_a_working_receipt_link(
    live_sandbox: Sandbox,
) -> None:
    fay = live_sandbox.customer("Fay")
    fay.say("I'd like to order decaf")
    summary = fay.next(0)
    fay.tap(summary, "Yes, pay now")
    checkout(link_of(fay.next(1)), "pay")
    confirmation = shown(fay.next(2))
    assert "is confirmed" in confirmation
    found = re.search(r"^Receipt: (\S+)$", confirmation, re.MULTILINE)
    assert found, confirmation
    receipt = requests.get(found.group(1), timeout=5)
    assert receipt.status_code == 200 and "Paid" in receipt.text
