"""The Stripe emulator's HTTP server: authentication, idempotency, queued failures and delays,
the hosted Checkout page, and the delivery of Stripe's signed events to our webhook.

What each request does to the account is `routes.route`'s and `StripeAccount`'s business;
this class adds what stands between a client and them, and the controls tests use.
"""

from __future__ import annotations

import asyncio
import hmac
import re
from collections import deque
from typing import Any

from aiohttp import web

from sandbox import checkout, checkout_page
from sandbox.loopback import LoopbackServer
from sandbox.stripe_api import portal, related
from sandbox.stripe_api.account import Outcome, StripeAccount
from sandbox.stripe_api.errors import FAILURES_BY_STATUS, StripeApiError
from sandbox.stripe_api.idempotency import IdempotencyKeys
from sandbox.stripe_api.routes import route
from sandbox.stripe_api.wire import StripeRequest, error_response, read_request
from sandbox.webhooks import Delivery, deliver
from shop_contract.catalog import Catalog, default_catalog

_PAGE_PATH = re.compile(r"/pay/(?P<id>cs_test_[0-9a-f]+)")
_RECOVERY_PATH = re.compile(r"/recover/(?P<id>cs_test_[0-9a-f]+)")
_PORTAL_PATH = re.compile(r"/portal/(?P<id>bps_test_[0-9a-f]+)")
_RECEIPT_PATH = re.compile(r"/(?P<kind>receipts|invoices)/(?P<id>(ch|in)_test_[0-9a-f]+)")

PAGE_NOTES = {
    "pay": "Payment succeeded. The shop has been told.",
    "decline": "Your card was declined. Try another card.",
    "expire": "This link has expired.",
    "renew": "The next period was paid.",
    "cancel_subscription": "The subscription is cancelled.",
    "pay_by_debit": "Bank debit started. It takes a few days to clear.",
    "debit_clears": "The bank debit cleared.",
    "debit_fails": "The bank debit failed.",
}


class StripeEmulator(LoopbackServer):
    """The Checkout Session endpoints of the Stripe API, for one secret key, and the hosted
    Checkout page of each session."""

    thread_name = "stripe-emulator"

    def __init__(self, api_key: str, catalog: Catalog | None = None, port: int = 0) -> None:
        super().__init__(port)
        self.api_key = api_key
        self.account = StripeAccount(
            catalog or default_catalog(), self._page_url, lambda path: self.base_url + path
        )
        self.requests: list[StripeRequest] = []
        self._idempotent = IdempotencyKeys()
        self._failures: deque[StripeApiError] = deque()
        self._delays: deque[float] = deque()
        self._webhook: tuple[str, str] | None = None
        self.deliveries: list[Delivery] = []

    @property
    def sessions(self) -> dict[str, dict[str, Any]]:
        """The account's Checkout Sessions by id, oldest first (the stored objects)."""
        return self.account.sessions

    @property
    def prices(self) -> dict[str, int]:
        """The unit amount of each price id the account knows."""
        return self.account.prices

    @property
    def refunds(self) -> dict[str, dict[str, Any]]:
        """The refunds made, by id, oldest first."""
        return self.account.refunds

    @property
    def cancelled_subscriptions(self) -> set[str]:
        return self.account.cancelled_subscriptions

    def send_events_to(self, webhook_url: str, webhook_secret: str) -> None:
        """From now on, deliver the sessions' events to `webhook_url`, signed."""
        with self._lock:
            self._webhook = (webhook_url, webhook_secret)

    @property
    def base_url(self) -> str:
        """What STRIPE_API_BASE takes: http://127.0.0.1:PORT (the SDK appends /v1/…)."""
        return self.origin

    def _page_url(self, session_id: str) -> str:
        """The session's hosted Checkout page, served by this server."""
        return f"{self.base_url}/pay/{session_id}"

    def requests_to(self, method: str, path: str) -> list[StripeRequest]:
        """The recorded requests with this method and path, in order."""
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path == path]

    def queue_failures(self, *failures: int | StripeApiError) -> None:
        """The next requests, whatever their path, fail with these (a status or an error).

        They fail before authentication and idempotency, like Stripe's rate limiter and an
        outage do: nothing is created and nothing is stored under the idempotency key.
        """
        errors = [FAILURES_BY_STATUS[f]() if isinstance(f, int) else f for f in failures]
        with self._lock:
            self._failures.extend(errors)

    def queue_delays(self, *seconds: float) -> None:
        """The next requests are processed at once but answered only after these delays.

        Stripe did the work, the client did not hear back in time: what a timeout looks like.
        """
        with self._lock:
            self._delays.extend(seconds)

    def forget_idempotency_keys(self) -> None:
        """A day has passed: Stripe keeps idempotency keys for 24 hours, so a request under
        an earlier key is new again (what it made stays made)."""
        with self._lock:
            self._idempotent = IdempotencyKeys()

    def recover_without_metadata(self, drop: bool = True) -> None:
        """From now on, a recovery URL opens a copy that carries none of the expired
        session's metadata (nor passes any to its PaymentIntent)."""
        with self._lock:
            self.account.copies_keep_metadata = not drop

    def complete(self, session_id: str, duplicate: bool = False) -> None:
        """The customer paid with the success card."""
        self.act(session_id, "pay", duplicate)

    def enter_promotion_code(self, session_id: str, code: str) -> dict[str, Any]:
        """The customer entered `code` on the hosted page (tax_and_codes.PROMOTION_CODES);
        StripeApiError when the session takes no codes or the code is unknown."""
        with self._lock:
            return self.account.enter_promotion_code(session_id, code)

    def complete_late(self, session_id: str) -> None:
        """The customer paid a session that has been expired meanwhile (they submitted the
        page just before): how one order gets paid twice, through two of its sessions."""
        self._call(self._outcome(session_id, _pay_even_if_closed, False))

    def refunded_of(self, payment_intent: str) -> list[dict[str, Any]]:
        """The refunds made for this PaymentIntent, oldest first."""
        with self._lock:
            return self.account.refunds_of(payment_intent)

    def expire(self, session_id: str, duplicate: bool = False) -> None:
        """The session ran out of time unused."""
        self.act(session_id, "expire", duplicate)

    def act(self, session_id: str, outcome: str, duplicate: bool = False) -> None:
        """Does what a button of the hosted page does (checkout.OUTCOMES), from any thread;
        raises checkout.CheckoutError when the session's state does not allow it."""
        self._call(self._act(session_id, outcome, duplicate))

    async def _act(self, session_id: str, outcome: str, duplicate: bool) -> None:
        await self._outcome(session_id, checkout.OUTCOMES[outcome], duplicate)

    async def _outcome(self, session_id: str, outcome: Outcome, duplicate: bool) -> None:
        with self._lock:
            events = self.account.act(session_id, outcome)
            webhook = self._webhook
        if webhook is not None:
            self._spawn(self._deliver(events * 2 if duplicate else events, *webhook))

    async def _deliver(self, events: list[dict[str, Any]], url: str, secret: str) -> None:
        """One event after the other, as Stripe sends one session's events."""
        for event in events:
            delivery = await deliver(url, event, "stripe", secret, str(event["type"]))
            with self._lock:
                self.deliveries.append(delivery)

    async def _handle(self, request: web.Request) -> web.Response:
        page = _PAGE_PATH.fullmatch(request.path)
        if page is not None:
            return await self._page(request, page["id"])
        recovery = _RECOVERY_PATH.fullmatch(request.path)
        if recovery is not None and request.method == "GET":
            return self._recover(recovery["id"])
        portal_page = _PORTAL_PATH.fullmatch(request.path)
        if portal_page is not None:
            return await self._portal(request, portal_page["id"])
        receipt = _RECEIPT_PATH.fullmatch(request.path)
        if receipt is not None and request.method == "GET":
            return self._receipt(receipt["kind"], receipt["id"])
        recorded = await read_request(request)
        with self._lock:
            self.requests.append(recorded)
            failure = self._failures.popleft() if self._failures else None
            delay = self._delays.popleft() if self._delays else 0.0
        if failure is not None:
            return error_response(failure)
        try:
            self._authenticate(request.headers.get("Authorization", ""))
            with self._lock:
                status, body, headers, events = self._answer(recorded)
                webhook = self._webhook
        except StripeApiError as error:
            return error_response(error)
        if events and webhook is not None:
            self._spawn(self._deliver(events, *webhook))
        await asyncio.sleep(delay)
        return web.json_response(body, status=status, headers=headers)

    async def _page(self, request: web.Request, session_id: str) -> web.Response:
        """GET shows the hosted page; POST does what its button says, then shows it again."""
        with self._lock:
            session = self.sessions.get(session_id)
        if session is None:
            return web.Response(status=404, text="No such Checkout Session.")
        note, error = "", False
        if request.method == "POST":
            form = await request.post()
            outcome = str(form.get("outcome", ""))
            if outcome not in checkout.OUTCOMES:
                return web.Response(status=400, text=f"Unknown action: {outcome[:40]!r}")
            try:
                code = str(form.get("promotion_code") or "").strip()
                if code and outcome == "pay":
                    self.enter_promotion_code(session_id, code)
                await self._act(session_id, outcome, form.get("duplicate") == "1")
                note = PAGE_NOTES[outcome]
            except (checkout.CheckoutError, StripeApiError) as refused:
                note, error = str(refused), True
        elif request.method != "GET":
            return web.Response(status=405, text="GET or POST only.")
        with self._lock:
            html = checkout_page.render(
                dict(session), self.account.line_items(session_id), note, error
            )
        return web.Response(text=html, content_type="text/html")

    def _recover(self, session_id: str) -> web.Response:
        """An expired session's recovery URL: on to the hosted page of its copy."""
        with self._lock:
            copy = self.account.recover(session_id)
        if copy is None:
            return web.Response(status=404, text="This recovery link no longer works.")
        raise web.HTTPSeeOther(copy["url"])

    async def _portal(self, request: web.Request, portal_id: str) -> web.Response:
        """GET shows a customer portal session's page; POST does what its button says (and
        Stripe's events for it go to our webhook), then shows it again."""
        with self._lock:
            session = self.account.portal_sessions.get(portal_id)
        if session is None:
            return web.Response(status=404, text="This portal link no longer works.")
        note, error = "", False
        if request.method == "POST":
            outcome = str((await request.post()).get("outcome", ""))
            if outcome not in portal.PAGE_NOTES:
                return web.Response(status=400, text=f"Unknown action: {outcome[:40]!r}")
            try:
                with self._lock:
                    events = portal.portal_act(self.account, portal_id, outcome)
                    webhook = self._webhook
                if webhook is not None:
                    self._spawn(self._deliver(events, *webhook))
                note = portal.PAGE_NOTES[outcome]
            except StripeApiError as refused:
                note, error = str(refused), True
        elif request.method != "GET":
            return web.Response(status=405, text="GET or POST only.")
        with self._lock:
            html = portal.render(
                session, portal.portal_subscription(self.account, portal_id), note, error
            )
        return web.Response(text=html, content_type="text/html")

    def _receipt(self, kind: str, object_id: str) -> web.Response:
        """A charge's receipt or an invoice's hosted page, for anyone with the link."""
        with self._lock:
            html = related.receipt_html(self.account, kind, object_id)
        if html is None:
            return web.Response(status=404, text="No such receipt.")
        return web.Response(text=html, content_type="text/html")

    def _authenticate(self, authorization: str) -> None:
        if not authorization:
            raise StripeApiError(
                401,
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth.",
            )
        expected = f"Bearer {self.api_key}".encode()
        if not hmac.compare_digest(authorization.encode(), expected):
            raise StripeApiError(401, "Invalid API Key provided.")

    def _answer(
        self, request: StripeRequest
    ) -> tuple[int, dict[str, Any], dict[str, str], checkout.Events]:
        """Stripe's answer to an authenticated request, and the events to deliver after it
        (none when the answer is replayed); the caller holds the lock."""
        endpoint = f"{request.method} {request.path}"
        key = request.idempotency_key if request.method == "POST" else None
        if key:
            replayed = self._idempotent.replay(key, endpoint, request.params)
            if replayed is not None:
                status, body = replayed
                return status, body, {"Idempotent-Replayed": "true"}, []
        body, events = route(self.account, request)
        if key:
            self._idempotent.remember(key, endpoint, request.params, 200, body)
        return 200, body, {}, events


def _pay_even_if_closed(session: checkout.Session, metadata: dict[str, str]) -> checkout.Events:
    return checkout.pay(session, metadata, even_if_closed=True)
