"""The order: what it holds, the states it moves through, and how the conversation keeps it.

- `states`: an order's states and the only moves allowed between them (`ALLOWED_MOVES`).
- `model`: `Order` and its lines; every change goes through `Order.moved_to`.
- `ids`: order ids a customer can read out.
- `records`: the order slots, and the `orders` slot that keeps every order by id.
- `money`: amounts in minor units as the customer reads them.
"""
