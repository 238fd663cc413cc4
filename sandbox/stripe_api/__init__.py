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
A retrieve can `expand` the session's PaymentIntent (and its charge), invoice, subscription
and Customer as Stripe does; the charge's `receipt_url` and the invoice's
`hosted_invoice_url` open pages served here. Customers are created by Checkout (subscription
mode, `customer_creation: always`) or through `/v1/customers`.

Each session's `url` is its hosted page (sandbox/checkout_page.py). Once `send_events_to`
names our webhook, what happens there (and an expiry through the API) is delivered as
Stripe's signed events, twice each when asked to, as Stripe may.

The package, by job:
- `emulator`: `StripeEmulator`, the HTTP server and the controls tests use.
- `routes`: which account operation answers a method and path.
- `account`: `StripeAccount`, the sessions, refunds and subscriptions, and Stripe's rules.
- `checks`: Stripe's checks of a request's shape (unknown parameters, URLs, metadata …).
- `idempotency`: replaying a request made again under its `Idempotency-Key`.
- `refunds`: Stripe's checks of a refund request.
- `customers`: Customers, and a session's `customer`/`customer_creation`.
- `related`: the PaymentIntent, charge, invoice and subscription a session makes, derived
  from it, and the receipt pages.
- `expand`: Stripe's `expand[]`.
- `wire`: Stripe's form encoding in, JSON errors out.
- `errors`: `StripeApiError` and the failures a test can queue.
"""

from sandbox.stripe_api.emulator import StripeEmulator
from sandbox.stripe_api.errors import StripeApiError, lock_timeout
from sandbox.stripe_api.wire import StripeRequest, decode_form

__all__ = ["StripeApiError", "StripeEmulator", "StripeRequest", "decode_form", "lock_timeout"]
