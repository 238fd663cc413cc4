"""Fulfilment by the shop: the orders API and `make orders` ship, deliver and refund the
orders in the index of paid orders."""
