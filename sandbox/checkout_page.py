"""The emulated Stripe Checkout page: one HTML page per session, with buttons instead of a
card form (pay with the success card, pay with a declining card, let it expire) and, once a
subscription is paid, its renewal and cancellation. Each button posts to the same URL."""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import urlparse

from actions.orders.money import format_amount
from sandbox.checkout import DECLINING_CARD, SUCCESS_CARD

_STYLE = """
body{font-family:system-ui,sans-serif;background:#f6f9fc;margin:0;color:#30313d}
main{max-width:440px;margin:40px auto;background:#fff;border-radius:8px;padding:28px;
box-shadow:0 2px 8px #0002}
.banner{background:#b00020;color:#fff;text-align:center;padding:6px;font-weight:600}
.amount{font-size:32px;font-weight:600;margin:8px 0 20px}
button{display:block;width:100%;margin:8px 0;padding:12px;border:0;border-radius:6px;
font-size:15px;cursor:pointer;background:#635bff;color:#fff}
button.secondary{background:#e3e8ee;color:#30313d}
.note{padding:10px;border-radius:6px;background:#eef;margin:12px 0}
.error{background:#fde2e1}
label{display:block;margin:10px 0;font-size:14px}
table{width:100%;border-collapse:collapse;font-size:14px}td{padding:4px 0}.num{text-align:right}
"""


def is_web_url(value: Any) -> bool:
    """Whether `value` is an http(s) URL naming a host: the only return URLs Stripe takes,
    and so the only ones this page links to."""
    if not isinstance(value, str):
        return False
    try:
        url = urlparse(value)
        return url.scheme in ("http", "https") and bool(url.hostname)
    except ValueError:  # e.g. an unclosed "[" in the host
        return False


def _button(outcome: str, label: str, css: str = "") -> str:
    return (
        f'<button type="submit" name="outcome" value="{outcome}" class="{css}" '
        f'id="{outcome}">{escape(label)}</button>'
    )


def _items(session: dict[str, Any], line_items: list[dict[str, Any]]) -> str:
    """What is being paid for, row by row, as Stripe's page lists it: the line items, then
    delivery, discount and tax as the session's totals say."""
    currency = str(session["currency"])
    rows = [
        (f"{item['quantity']} × {item['description']}", int(item["amount_total"]))
        for item in line_items
    ]
    details = session.get("total_details") or {}
    if details.get("amount_shipping"):
        rows.append(("Delivery", int(details["amount_shipping"])))
    if details.get("amount_discount"):
        rows.append(("Discount", -int(details["amount_discount"])))
    if details.get("amount_tax"):
        rows.append(("Tax", int(details["amount_tax"])))
    cells = "".join(
        f'<tr><td>{escape(label)}</td><td class="num">'
        f"{'−' if amount < 0 else ''}{escape(format_amount(abs(amount), currency))}</td></tr>"
        for label, amount in rows
    )
    return f'<table id="items">{cells}</table>'


def render(
    session: dict[str, Any],
    line_items: list[dict[str, Any]],
    note: str = "",
    error: bool = False,
) -> str:
    """The page for `session`, with `note` (the result of the last action) on top."""
    status = str(session["status"])
    amount = format_amount(int(session["amount_total"]), str(session["currency"]))
    period = " per period" if session["mode"] == "subscription" else ""
    actions = ""
    if status == "open":
        code = (
            '<label>Promotion code <input name="promotion_code" id="promotion_code" '
            'autocomplete="off"></label>'
            if session.get("allow_promotion_codes")
            else ""
        )
        actions = (
            code
            + _button("pay", f"Pay with {SUCCESS_CARD} (succeeds)")
            + _button("decline", f"Pay with {DECLINING_CARD} (declined)", "secondary")
            + _button("expire", "Let the link expire", "secondary")
        )
    elif session["mode"] == "subscription" and session.get("subscription"):
        actions = _button("renew", "Renew now (next period paid)", "secondary") + _button(
            "cancel_subscription", "Cancel the subscription", "secondary"
        )
    duplicate = (
        '<label><input type="checkbox" name="duplicate" value="1" id="duplicate"> '
        "deliver each event twice (as Stripe may)</label>"
        if actions
        else ""
    )
    back = ""
    # The API refuses other return URLs; checked here too so no javascript: or data: URL
    # can ever become a link on this page.
    if status != "open" and is_web_url(session.get("success_url")):
        back = (
            f'<p><a id="back" href="{escape(str(session["success_url"]))}">Back to the shop</a></p>'
        )
    notice = (
        f'<div class="note{" error" if error else ""}" id="note">{escape(note)}</div>'
        if note
        else ""
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Checkout (sandbox)</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_STYLE}</style></head>
<body><div class="banner">SANDBOX — Stripe emulator, no real payment</div><main>
<p>Order {escape(str(session.get("client_reference_id") or ""))}</p>
{_items(session, line_items)}
<div class="amount" id="amount">{escape(amount)}{period}</div>
<p>Status: <strong id="status">{escape(status)}</strong>
(payment {escape(str(session["payment_status"]))})</p>
{notice}
<form method="post">{actions}{duplicate}</form>
{back}
</main></body></html>"""
