"""Stripe Checkout for orders, as the action server talks to Stripe (no Rasa in here);
its settings are actions/settings.py's.

- `client`: the process's one `StripeClient`: pinned API version, retries, timeouts.
- `errors`: what a payment operation raises; `customer_message` is safe to show.
- `checkout_links`: an order attempt's Checkout Session, created or reused (one live link).
- `link_cancellation`: stopping an order's link, and finding out whether it was paid first.
- `verification`: what Stripe says about a Checkout Session, and whether it confirms an order.
- `duplicates`: undoing a second payment of an already paid order (refund, or cancel the
  second subscription).
"""
