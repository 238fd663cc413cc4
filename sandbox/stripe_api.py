"""A Stripe emulator for Checkout Sessions: a real HTTP server on loopback.

Built on `LoopbackServer`, so the action server's real `StripeClient` reaches it over TCP
exactly as it reaches api.stripe.com (set STRIPE_API_BASE to `base_url`). It decodes
Stripe's form encoding (`line_items[0][price]=…`), checks the Bearer key, knows the
parameters stripe-python's types declare (sandbox/stripe_params.py), validates a session
like Stripe does for the fields this shop uses, replays idempotent requests, and can be
told to fail (500, 429, 402 …) or to answer late. Sessions can be created, retrieved,
listed and expired; a paid session's PaymentIntent can be refunded (`POST /v1/refunds`, in
full or in part) and its subscription cancelled (`DELETE /v1/subscriptions/{id}`). A session
can also be paid by bank debit: complete and unpaid until the debit clears or fails.

Each session's `url` is its hosted page (sandbox/checkout_page.py). Once `send_events_to`
names our webhook, what happens there (and an expiry through the API) is delivered as
Stripe's signed events, twice each when asked to, as Stripe may.
"""

from __future__ import annotations

import asyncio
import hmac
import re
import secrets
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from sandbox import checkout, checkout_page, stripe_params
from sandbox.loopback import LoopbackServer
from sandbox.webhooks import Delivery, deliver
from shop_contract.catalog import Catalog, default_catalog

_SESSIONS_PATH = "/v1/checkout/sessions"
_SESSION_PATH = re.compile(r"/v1/checkout/sessions/(?P<id>[^/]+)")
_EXPIRE_PATH = re.compile(r"/v1/checkout/sessions/(?P<id>[^/]+)/expire")
_REFUNDS_PATH = "/v1/refunds"
_SUBSCRIPTION_PATH = re.compile(r"/v1/subscriptions/(?P<id>[^/]+)")
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")
_PAGE_PATH = re.compile(r"/pay/(?P<id>cs_test_[0-9a-f]+)")
LIST_LIMIT_DEFAULT = 10
LIST_LIMIT_MAX = 100
_KEY_PART = re.compile(r"\[([^\]]*)\]")
EXPIRY_MIN_SECONDS = 30 * 60
EXPIRY_MAX_SECONDS = 24 * 60 * 60
EXPIRY_SLACK_SECONDS = 5
MODES = ("payment", "subscription")


class StripeApiError(Exception):
    """An error answer: HTTP status and Stripe's `{"error": {...}}` body."""

    def __init__(
        self,
        status: int,
        message: str,
        error_type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"type": error_type, "message": message}
        if code is not None:
            self.body["code"] = code
        if param is not None:
            self.body["param"] = param
        self.headers = dict(headers or {})


def server_error() -> StripeApiError:
    """A 500 as Stripe sends it (the SDK retries it)."""
    return StripeApiError(500, "An unknown error occurred", error_type="api_error")


def rate_limited() -> StripeApiError:
    """A 429 from the request-rate limiter; Stripe does not advise a retry on it."""
    return StripeApiError(
        429,
        "Request rate limit exceeded. Learn more about rate limits here "
        "https://stripe.com/docs/rate-limits.",
        code="rate_limit",
    )


def lock_timeout() -> StripeApiError:
    """A 429 for an object locked by a concurrent request; Stripe says to retry it."""
    return StripeApiError(
        429,
        "This object cannot be accessed right now because another API request or Stripe "
        "process is currently accessing it.",
        code="lock_timeout",
        headers={"Stripe-Should-Retry": "true"},
    )


def card_declined() -> StripeApiError:
    """A 402 card error."""
    return StripeApiError(
        402, "Your card was declined.", error_type="card_error", code="card_declined"
    )


_FAILURES_BY_STATUS = {500: server_error, 429: rate_limited, 402: card_declined}


@dataclass
class StripeRequest:
    """One request as the fake received it; `params` decoded into nested dicts and lists."""

    method: str
    path: str
    headers: dict[str, str]
    params: dict[str, Any]

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("Idempotency-Key")


@dataclass
class _Stored:
    """An idempotent request's first parameters and the answer replayed for its key."""

    endpoint: str
    params: dict[str, Any]
    status: int
    body: dict[str, Any]


def decode_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding back to nested values: `a[0][b]=x` → {"a": [{"b": "x"}]}.

    Values stay strings, as Stripe receives them. Indexed keys become lists in index order.
    """
    root: dict[str, Any] = {}
    for raw_key, value in pairs:
        head = raw_key.split("[", 1)[0]
        parts = [head, *_KEY_PART.findall(raw_key[len(head) :])]
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        last = parts[-1]
        if last == "":  # `a[]=x`: append
            last = str(len(node))
        node[last] = value
    return {key: _lists_from_indexes(value) for key, value in root.items()}


def _lists_from_indexes(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    converted = {key: _lists_from_indexes(item) for key, item in value.items()}
    if converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted


class StripeEmulator(LoopbackServer):
    """The Checkout Session endpoints of the Stripe API, for one secret key, and the hosted
    Checkout page of each session."""

    thread_name = "stripe-emulator"

    def __init__(self, api_key: str, catalog: Catalog | None = None, port: int = 0) -> None:
        super().__init__(port)
        catalog = catalog or default_catalog()
        self.api_key = api_key
        self.prices: dict[str, int] = {p.stripe_price: p.unit_amount for p in catalog}
        self.recurring_prices: set[str] = {p.stripe_price for p in catalog if p.is_subscription}
        self.currency = catalog.currency
        self.requests: list[StripeRequest] = []
        self.sessions: dict[str, dict[str, Any]] = {}
        self._idempotent: dict[str, _Stored] = {}
        self._failures: deque[StripeApiError] = deque()
        self._delays: deque[float] = deque()
        self._child_metadata: dict[str, dict[str, str]] = {}  # session id -> its PI/sub's
        self._webhook: tuple[str, str] | None = None
        self.deliveries: list[Delivery] = []
        self.refunds: dict[str, dict[str, Any]] = {}  # refund id -> the refund, oldest first
        self.cancelled_subscriptions: set[str] = set()

    def send_events_to(self, webhook_url: str, webhook_secret: str) -> None:
        """From now on, deliver the sessions' events to `webhook_url`, signed."""
        with self._lock:
            self._webhook = (webhook_url, webhook_secret)

    @property
    def base_url(self) -> str:
        """What STRIPE_API_BASE takes: http://127.0.0.1:PORT (the SDK appends /v1/…)."""
        return self.origin

    def requests_to(self, method: str, path: str) -> list[StripeRequest]:
        """The recorded requests with this method and path, in order."""
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path == path]

    def queue_failures(self, *failures: int | StripeApiError) -> None:
        """The next requests, whatever their path, fail with these (a status or an error).

        They fail before authentication and idempotency, like Stripe's rate limiter and an
        outage do: nothing is created and nothing is stored under the idempotency key.
        """
        errors = [_FAILURES_BY_STATUS[f]() if isinstance(f, int) else f for f in failures]
        with self._lock:
            self._failures.extend(errors)

    def queue_delays(self, *seconds: float) -> None:
        """The next requests are processed at once but answered only after these delays.

        Stripe did the work, the client did not hear back in time: what a timeout looks like.
        """
        with self._lock:
            self._delays.extend(seconds)

    def complete(self, session_id: str, duplicate: bool = False) -> None:
        """The customer paid with the success card."""
        self.act(session_id, "pay", duplicate)

    def complete_late(self, session_id: str) -> None:
        """The customer paid a session that has been expired meanwhile (they submitted the
        page just before): how one order gets paid twice, through two of its sessions."""
        self._call(self._outcome(session_id, _pay_even_if_closed, False))

    def refunded_of(self, payment_intent: str) -> list[dict[str, Any]]:
        """The refunds made for this PaymentIntent, oldest first."""
        with self._lock:
            return [r for r in self.refunds.values() if r["payment_intent"] == payment_intent]

    def expire(self, session_id: str, duplicate: bool = False) -> None:
        """The session ran out of time unused."""
        self.act(session_id, "expire", duplicate)

    def act(self, session_id: str, outcome: str, duplicate: bool = False) -> None:
        """Does what a button of the hosted page does (checkout.OUTCOMES), from any thread;
        raises checkout.CheckoutError when the session's state does not allow it."""
        self._call(self._act(session_id, outcome, duplicate))

    async def _act(self, session_id: str, outcome: str, duplicate: bool) -> None:
        await self._outcome(session_id, checkout.OUTCOMES[outcome], duplicate)

    async def _outcome(
        self,
        session_id: str,
        outcome: Callable[[checkout.Session, dict[str, str]], checkout.Events],
        duplicate: bool,
    ) -> None:
        with self._lock:
            events = outcome(self._session(session_id), self._child_metadata.get(session_id, {}))
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
        raw = await request.read()
        pairs = parse_qsl(raw.decode() or request.query_string, keep_blank_values=True)
        recorded = StripeRequest(
            request.method, request.path, dict(request.headers), decode_form(pairs)
        )
        with self._lock:
            self.requests.append(recorded)
            failure = self._failures.popleft() if self._failures else None
            delay = self._delays.popleft() if self._delays else 0.0
        if failure is not None:
            return _error_response(failure)
        try:
            self._authenticate(request.headers.get("Authorization", ""))
            with self._lock:
                status, body, headers = self._answer(recorded)
        except StripeApiError as error:
            return _error_response(error)
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
                await self._act(session_id, outcome, form.get("duplicate") == "1")
                note = PAGE_NOTES[outcome]
            except checkout.CheckoutError as refused:
                note, error = str(refused), True
        elif request.method != "GET":
            return web.Response(status=405, text="GET or POST only.")
        with self._lock:
            html = checkout_page.render(dict(session), note, error)
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

    def _answer(self, request: StripeRequest) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Stripe's answer to an authenticated request; the caller holds the lock."""
        endpoint = f"{request.method} {request.path}"
        key = request.idempotency_key if request.method == "POST" else None
        if key:
            stored = self._idempotent.get(key)
            if stored is not None:
                if stored.endpoint != endpoint or stored.params != request.params:
                    raise StripeApiError(
                        400,
                        "Keys for idempotent requests can only be used with the same "
                        f"parameters they were first used with. Try using a key other than "
                        f"'{key}' if you meant to execute a different request.",
                        error_type="idempotency_error",
                    )
                return stored.status, stored.body, {"Idempotent-Replayed": "true"}
        body = self._route(request)
        if key:
            self._idempotent[key] = _Stored(endpoint, request.params, 200, body)
        return 200, body, {}

    def _route(self, request: StripeRequest) -> dict[str, Any]:
        if request.method == "POST" and request.path == _SESSIONS_PATH:
            return self._create(request.params)
        if request.method == "GET" and request.path == _SESSIONS_PATH:
            _check_known(request.params, stripe_params.SESSION_LIST)
            return self._list(request.params)
        if request.method == "POST" and request.path == _REFUNDS_PATH:
            _check_known(request.params, stripe_params.REFUND_CREATE)
            return self._refund(request.params)
        expire = _EXPIRE_PATH.fullmatch(request.path)
        if request.method == "POST" and expire:
            _check_known(request.params, stripe_params.SESSION_EXPIRE)
            return self._expire(expire["id"])
        subscription = _SUBSCRIPTION_PATH.fullmatch(request.path)
        if request.method == "DELETE" and subscription:
            _check_known(request.params, stripe_params.SUBSCRIPTION_CANCEL)
            return self._cancel_subscription(subscription["id"])
        retrieve = _SESSION_PATH.fullmatch(request.path)
        if request.method == "GET" and retrieve:
            _check_known(request.params, stripe_params.SESSION_RETRIEVE)
            return dict(self._session(retrieve["id"]))
        raise StripeApiError(404, f"Unrecognized request URL ({request.method}: {request.path}).")

    def _session(self, session_id: str) -> dict[str, Any]:
        session = self.sessions.get(session_id)
        if session is None:
            raise StripeApiError(
                404,
                f"No such checkout.session: '{session_id}'",
                code="resource_missing",
                param="session",
            )
        return session

    def _expire(self, session_id: str) -> dict[str, Any]:
        """Expires an open session (the caller holds the lock); Stripe then sends
        checkout.session.expired, as it does when a session times out."""
        session = self._session(session_id)
        try:
            events = checkout.expire(session)
        except checkout.CheckoutError:
            raise StripeApiError(
                400, "Only Checkout Sessions with a status of `open` can be expired."
            ) from None
        if self._webhook is not None:
            self._spawn(self._deliver(events, *self._webhook))
        return dict(session)

    def _cancel_subscription(self, subscription_id: str) -> dict[str, Any]:
        """Cancels a session's subscription at once (the caller holds the lock); Stripe then
        sends customer.subscription.deleted. A cancelled one cannot be cancelled again."""
        session = next(
            (s for s in self.sessions.values() if s.get("subscription") == subscription_id), None
        )
        if session is None:
            raise StripeApiError(
                404,
                f"No such subscription: '{subscription_id}'",
                code="resource_missing",
                param="id",
            )
        if subscription_id in self.cancelled_subscriptions:
            raise StripeApiError(
                400,
                "A canceled subscription can only update its cancellation_details and metadata.",
            )
        self.cancelled_subscriptions.add(subscription_id)
        events = checkout.cancel_subscription(session, self._child_metadata.get(session["id"], {}))
        if self._webhook is not None:
            self._spawn(self._deliver(events, *self._webhook))
        return dict(events[0]["data"]["object"])

    def _refund(self, params: dict[str, Any]) -> dict[str, Any]:
        """Refunds a paid session's PaymentIntent, all that is left or `amount` of it (the
        caller holds the lock); Stripe then sends charge.refunded with the cumulative sum."""
        payment_intent = params.get("payment_intent")
        if not payment_intent:
            raise StripeApiError(
                400,
                "One of the following params should be provided for this request: "
                "payment_intent or charge.",
                code="parameter_missing",
                param="payment_intent",
            )
        session = self._paid_session_of(str(payment_intent))
        reason = params.get("reason")
        if reason is not None and reason not in REFUND_REASONS:
            raise StripeApiError(400, f"Invalid reason: {reason}", param="reason")
        _check_metadata(params.get("metadata"), "metadata")
        done = sum(
            r["amount"] for r in self.refunds.values() if r["payment_intent"] == payment_intent
        )
        left = session["amount_total"] - done
        if left <= 0:
            raise StripeApiError(
                400,
                f"Charge {checkout.charge_id(str(payment_intent))} has already been refunded.",
                code="charge_already_refunded",
            )
        amount = left if "amount" not in params else _whole_number(params["amount"], "amount")
        if not 1 <= amount <= left:
            raise StripeApiError(
                400,
                f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})",
                code="amount_too_large" if amount > left else "parameter_invalid_integer",
                param="amount",
            )
        refund = {
            "id": "re_test_" + secrets.token_hex(12),
            "object": "refund",
            "amount": amount,
            "charge": checkout.charge_id(str(payment_intent)),
            "currency": session["currency"],
            "payment_intent": payment_intent,
            "reason": reason,
            "metadata": params.get("metadata") or {},
            "status": "succeeded",
            "created": int(time.time()),
        }
        self.refunds[refund["id"]] = refund
        events = checkout.refunded(
            session, self._child_metadata.get(session["id"], {}), done + amount
        )
        if self._webhook is not None:
            self._spawn(self._deliver(events, *self._webhook))
        return dict(refund)

    def _paid_session_of(self, payment_intent: str) -> dict[str, Any]:
        for session in self.sessions.values():
            if session.get("payment_intent") == payment_intent:
                if session["payment_status"] != "paid":
                    raise StripeApiError(
                        400,
                        f"This PaymentIntent ({payment_intent}) does not have a successful "
                        "charge to refund.",
                        code="charge_not_refundable",
                        param="payment_intent",
                    )
                return session
        raise StripeApiError(
            404,
            f"No such payment_intent: '{payment_intent}'",
            code="resource_missing",
            param="payment_intent",
        )

    def _list(self, params: dict[str, Any]) -> dict[str, Any]:
        """Newest first, filtered by `status`, paged by `limit` and `starting_after`."""
        limit = _whole_number(params.get("limit", str(LIST_LIMIT_DEFAULT)), "limit")
        if not 1 <= limit <= LIST_LIMIT_MAX:
            raise StripeApiError(
                400,
                f"Invalid limit: must be between 1 and {LIST_LIMIT_MAX}",
                code="parameter_invalid_integer",
                param="limit",
            )
        newest_first = list(reversed(self.sessions.values()))
        if "starting_after" in params:
            after = self._session(str(params["starting_after"]))
            newest_first = newest_first[newest_first.index(after) + 1 :]
        status = params.get("status")
        if status is not None and status not in ("open", "complete", "expired"):
            raise StripeApiError(400, f"Invalid status: {status}", param="status")
        matching = [s for s in newest_first if status is None or s["status"] == status]
        return {
            "object": "list",
            "url": _SESSIONS_PATH,
            "has_more": len(matching) > limit,
            "data": [dict(s) for s in matching[:limit]],
        }

    def _create(self, params: dict[str, Any]) -> dict[str, Any]:
        _check_known(params, stripe_params.SESSION_CREATE)
        mode = params.get("mode")
        if mode not in MODES:
            raise StripeApiError(
                400,
                "Invalid mode: must be one of payment, setup, or subscription",
                code="parameter_invalid_empty" if not mode else "parameter_unknown",
                param="mode",
            )
        if not params.get("success_url"):
            raise StripeApiError(
                400,
                "Missing required param: success_url.",
                code="parameter_missing",
                param="success_url",
            )
        for param in ("success_url", "cancel_url"):
            _check_url(params.get(param), param)
        amount_total = self._check_line_items(params.get("line_items"), mode)
        _check_mode_data(params, mode)
        _check_metadata(params.get("metadata"), "metadata")
        for parent in ("payment_intent_data", "subscription_data"):
            data = params.get(parent)
            if isinstance(data, dict):
                _check_metadata(data.get("metadata"), f"{parent}[metadata]")
        now = int(time.time())
        expires_at = _expires_at(params.get("expires_at"), now)
        session_id = "cs_test_" + secrets.token_hex(24)
        session: dict[str, Any] = {
            "id": session_id,
            "object": "checkout.session",
            "url": f"{self.base_url}/pay/{session_id}",
            "status": "open",
            "payment_status": "unpaid",
            "mode": mode,
            "client_reference_id": params.get("client_reference_id"),
            "metadata": params.get("metadata") or {},
            "amount_subtotal": amount_total,
            "amount_total": amount_total,
            "currency": self.currency,
            "created": now,
            "expires_at": expires_at,
            "livemode": False,
            "success_url": params["success_url"],
            "cancel_url": params.get("cancel_url"),
            "payment_intent": None,
            "subscription": None,
        }
        self.sessions[session_id] = session
        self._child_metadata[session_id] = _child_metadata(params, mode)
        return dict(session)

    def _check_line_items(self, line_items: Any, mode: str) -> int:
        """Validates the line items; returns the session's amount_total."""
        if not isinstance(line_items, list) or not line_items:
            raise StripeApiError(
                400,
                f"`line_items` is required in `{mode}` mode.",
                code="parameter_missing",
                param="line_items",
            )
        total = 0
        recurring = 0
        for index, item in enumerate(line_items):
            where = f"line_items[{index}]"
            if not isinstance(item, dict):
                raise StripeApiError(400, f"Invalid object: {where}", param=where)
            _check_known(item, stripe_params.LINE_ITEM, where)
            price = item.get("price")
            if not price:
                raise StripeApiError(
                    400,
                    "You must specify either `price` or `price_data` for each line item.",
                    code="parameter_missing",
                    param=f"{where}[price]",
                )
            if price not in self.prices:
                raise StripeApiError(
                    400,
                    f"No such price: '{price}'",
                    code="resource_missing",
                    param=f"{where}[price]",
                )
            quantity = _whole_number(item.get("quantity"), f"{where}[quantity]")
            if quantity < 1:
                raise StripeApiError(
                    400,
                    "Quantity must be greater than or equal to 1.",
                    code="parameter_invalid_integer",
                    param=f"{where}[quantity]",
                )
            if price in self.recurring_prices:
                if mode == "payment":
                    raise StripeApiError(
                        400,
                        "You specified `payment` mode but passed a recurring price. Either "
                        "switch to `subscription` mode or use only one-time prices.",
                        param=f"{where}[price]",
                    )
                recurring += 1
            total += quantity * self.prices[price]
        if mode == "subscription" and not recurring:
            raise StripeApiError(
                400,
                "You must provide at least one recurring price in `subscription` mode when "
                "using prices.",
                param="line_items",
            )
        return total


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


def _pay_even_if_closed(session: checkout.Session, metadata: dict[str, str]) -> checkout.Events:
    return checkout.pay(session, metadata, even_if_closed=True)


def _check_known(params: Mapping[str, Any], known: frozenset[str], parent: str = "") -> None:
    """Stripe's answer to a parameter its API does not have."""
    unknown = stripe_params.unknown(dict(params), known)
    if unknown is not None:
        name = f"{parent}[{unknown}]" if parent else unknown
        raise StripeApiError(
            400, f"Received unknown parameter: {name}", code="parameter_unknown", param=name
        )


def _child_metadata(params: Mapping[str, Any], mode: str) -> dict[str, str]:
    """The metadata the session passes on to its PaymentIntent or Subscription."""
    parent = params.get("subscription_data" if mode == "subscription" else "payment_intent_data")
    metadata = parent.get("metadata") if isinstance(parent, dict) else None
    return dict(metadata) if isinstance(metadata, dict) else {}


def _check_url(value: Any, param: str) -> None:
    """Stripe's answer to a return URL that is not a web address (javascript:, a path, …);
    an optional one left out (absent or empty) passes."""
    if value not in (None, "") and not checkout_page.is_web_url(value):
        raise StripeApiError(400, "Not a valid URL", code="url_invalid", param=param)


def _check_mode_data(params: Mapping[str, Any], mode: str) -> None:
    for parent, allowed in (
        ("payment_intent_data", "payment"),
        ("subscription_data", "subscription"),
    ):
        if parent in params and mode != allowed:
            raise StripeApiError(
                400,
                f"You can only specify `{parent}` in `{allowed}` mode.",
                param=parent,
            )


def _check_metadata(metadata: Any, param: str) -> None:
    """Stripe's metadata limits: 50 keys, keys ≤ 40 characters, values ≤ 500."""
    if metadata is None:
        return
    if not isinstance(metadata, dict):
        raise StripeApiError(400, f"Invalid object: {param}", param=param)
    if len(metadata) > 50:
        raise StripeApiError(400, "Metadata can have at most 50 keys.", param=param)
    for key, value in metadata.items():
        if len(key) > 40 or not isinstance(value, str) or len(value) > 500:
            raise StripeApiError(
                400,
                "Metadata keys must be at most 40 characters and values strings of at most "
                "500 characters.",
                param=f"{param}[{key}]",
            )


def _whole_number(value: Any, param: str) -> int:
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)
    raise StripeApiError(
        400, f"Invalid integer: {value}", code="parameter_invalid_integer", param=param
    )


def _expires_at(value: Any, now: int) -> int:
    """Checks `expires_at` against Stripe's window (30 min … 24 h after creation)."""
    if value is None:
        return now + EXPIRY_MAX_SECONDS
    expires_at = _whole_number(value, "expires_at")
    if expires_at < now + EXPIRY_MIN_SECONDS - EXPIRY_SLACK_SECONDS:
        raise StripeApiError(
            400,
            "The `expires_at` timestamp must be at least 30 minutes from Checkout Session "
            "creation.",
            param="expires_at",
        )
    if expires_at > now + EXPIRY_MAX_SECONDS + EXPIRY_SLACK_SECONDS:
        raise StripeApiError(
            400,
            "The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.",
            param="expires_at",
        )
    return expires_at


def _error_response(error: StripeApiError) -> web.Response:
    return web.json_response({"error": error.body}, status=error.status, headers=error.headers)
