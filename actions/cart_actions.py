"""Changing an order by text while it is a draft (before its payment link is sent):
"add 2 decaf", "remove the tea", "make it three", "change espresso to 2", "deliver to
Austria". Each answer shows the whole order again, as understood.

An order that already has a payment link is not changed: the customer pays or cancels it
first (a link's amount is fixed at Stripe).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.conversation import archive_order, current_order, save_order
from actions.draft_order import HOW_TO_CHANGE, destination_for, requested, show_draft
from actions.order_actions import ActionStartOrder
from actions.orders import basket
from actions.orders.basket import BasketError
from actions.orders.model import Order
from actions.orders.states import OrderStatus
from actions.orders.text_order import Request, Wanted
from shop_contract.catalog import Catalog, default_catalog
from shop_contract.delivery import Destination


def editable(dispatcher: CollectingDispatcher, tracker: Tracker) -> Order | None:
    """The draft to change; None (the customer told why) when there is none."""
    order = current_order(tracker)
    if order is None or not order.is_open:
        dispatcher.utter_message(
            text="You have no order to change. Tell me what you'd like, e.g. \"2 espresso "
            'and 1 green tea".'
        )
        return None
    if order.status != OrderStatus.DRAFT:
        dispatcher.utter_message(
            text=f"Order {order.id} already has its payment link, so it can't be changed. "
            "Pay it, or cancel it and order again.",
            buttons=[
                {"title": "Pay now", "payload": "/affirm"},
                {"title": "Cancel order", "payload": "/cancel_order"},
            ],
        )
        return None
    return order


def changed(
    dispatcher: CollectingDispatcher, tracker: Tracker, order: Order, intro: str
) -> list[EventType]:
    """Shows and keeps the changed draft; an order left with no line is cancelled."""
    if not order.lines:
        dispatcher.utter_message(
            text=f"That was the last item, so order {order.id} is cancelled. "
            "Tell me whenever you'd like to order again."
        )
        return [*archive_order(tracker, order.moved_to(OrderStatus.CANCELLED)), _no_product()]
    show_draft(dispatcher, order, intro)
    return [*save_order(tracker, order), _no_product()]


def _no_product() -> EventType:
    return SlotSet("product", None)


class _BasketEdit(Action, ABC):
    """Applies `edit` to the draft with the products the customer named, then shows it.
    Abstract, so that the action server does not register it as an action of its own."""

    ask = ""  # what to say when no product was named
    done = ""  # the intro of the changed draft

    @abstractmethod
    def edit(
        self, order: Order, catalog: Catalog, wanted: tuple[Wanted, ...], destination: Destination
    ) -> Order: ...

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        order = editable(dispatcher, tracker)
        if order is None:
            return [_no_product()]
        catalog = default_catalog()
        wanted = requested(tracker, catalog).wanted
        if not wanted:
            dispatcher.utter_message(text=self.ask)
            return [_no_product()]
        try:
            edited = self.edit(order, catalog, wanted, destination_for(tracker, order))
        except BasketError as refused:
            dispatcher.utter_message(text=str(refused))
            return [_no_product()]
        return changed(dispatcher, tracker, edited, self.done)


class ActionAddToOrder(_BasketEdit):
    """Adds the products named (1 of each unless a quantity is said) to the draft; without
    a draft, starts one."""

    ask = 'What shall I add? For example "add 2 decaf".'
    done = "Added."

    def name(self) -> str:
        return "action_add_to_order"

    def edit(
        self, order: Order, catalog: Catalog, wanted: tuple[Wanted, ...], destination: Destination
    ) -> Order:
        return basket.added(order, catalog, wanted, destination)

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        held = current_order(tracker)
        if held is None or not held.is_open:
            return await ActionStartOrder().run(dispatcher, tracker, domain)
        return await super().run(dispatcher, tracker, domain)


class ActionRemoveFromOrder(_BasketEdit):
    """Removes the products named from the draft (or that many of them)."""

    ask = 'What shall I remove? For example "remove the tea".'
    done = "Removed."

    def name(self) -> str:
        return "action_remove_from_order"

    def edit(
        self, order: Order, catalog: Catalog, wanted: tuple[Wanted, ...], destination: Destination
    ) -> Order:
        return basket.removed(order, catalog, wanted, destination)


class ActionChangeOrder(Action):
    """Sets quantities ("change espresso to 2", "make it three" for a one-line order) or
    the delivery country; with nothing to change, says how to (the Change order button)."""

    def name(self) -> str:
        return "action_change_order"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        order = editable(dispatcher, tracker)
        if order is None:
            return [_no_product()]
        catalog = default_catalog()
        request = requested(tracker, catalog)
        try:
            destination = destination_for(tracker, order)
            updated = self.quantities(order, catalog, request, destination)
            if updated is None and destination.name != order.destination:
                updated = basket.with_delivery(order, catalog, destination)
        except BasketError as refused:
            dispatcher.utter_message(text=str(refused))
            return [_no_product()]
        if updated is None:
            dispatcher.utter_message(text=self.what_to_change(order, request))
            return [_no_product()]
        return changed(dispatcher, tracker, updated, "Changed.")

    @staticmethod
    def quantities(
        order: Order, catalog: Catalog, request: Request, destination: Destination
    ) -> Order | None:
        """The order with the quantities said, or None when no quantity is clear: a
        quantity said on its own ("make it three") is clear for a one-line order only."""
        result = None
        for wanted in request.wanted:
            if wanted.quantity is not None:
                result = basket.with_quantity(
                    result or order, catalog, wanted.product, wanted.quantity, destination
                )
        quantity = request.lone_quantity
        if result is None and quantity is not None and len(order.lines) == 1:
            result = basket.with_quantity(
                order, catalog, order.lines[0].product_id, quantity, destination
            )
        return result

    @staticmethod
    def what_to_change(order: Order, request: Request) -> str:
        if request.lone_quantity is not None and len(order.lines) > 1:
            return (
                f"Which product should be {request.lone_quantity}? Say e.g. "
                f'"make the espresso {request.lone_quantity}".'
            )
        return f"What would you like to change in order {order.id}? {HOW_TO_CHANGE}"
