"""The conversation design stays consistent: NLU, domain, catalog and reserved intents."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml
from rasa.shared.importers.importer import TrainingDataImporter
from rasa.shared.nlu.training_data.training_data import TrainingData

from shop_contract.catalog import Catalog
from shop_contract.shop import load_shop

ROOT = Path(__file__).resolve().parent.parent
# Questions about the shop, a person, complaints, subscriptions: at least 25 examples each.
FAQ_INTENTS = {
    "ask_delivery",
    "ask_payment_methods",
    "ask_returns",
    "ask_opening_hours",
    "ask_contact",
    "ask_product",
    "talk_to_person",
    "complain",
    "subscription_status",
    "subscription_cancel",
    "subscription_change_card",
    "subscription_change_plan",
}
CART_INTENTS = {"add_to_order", "remove_from_order", "change_order"}
REMINDER_INTENTS = {"stop_reminders", "resume_reminders"}
HISTORY_INTENTS = {"list_orders"}
USER_INTENTS = (
    FAQ_INTENTS
    | CART_INTENTS
    | REMINDER_INTENTS
    | HISTORY_INTENTS
    | {
        "greet",
        "goodbye",
        "order",
        "browse_catalog",
        "check_order_status",
        "cancel_order",
        "help",
        "affirm",
        "deny",
        "thanks",
        "bot_challenge",
        "delete_my_data",
        "out_of_scope",
    }
)
RESERVED = re.compile(r"^(EXTERNAL_|flow_)")


@pytest.fixture(scope="module")
def nlu() -> TrainingData:
    """Every NLU file under data/, as `rasa train` reads them."""
    importer = TrainingDataImporter.load_nlu_importer_from_config(
        str(ROOT / "config.yml"), training_data_paths=[str(ROOT / "data")]
    )
    return importer.get_nlu_data()


@pytest.fixture(scope="module")
def domain_intents() -> list[str]:
    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    return [str(i) for i in domain["intents"]]


def test_every_user_intent_has_at_least_20_distinct_examples(nlu: TrainingData) -> None:
    counts = Counter(e.get("intent") for e in nlu.intent_examples)
    assert set(counts) == USER_INTENTS
    assert all(counts[intent] >= 20 for intent in USER_INTENTS), counts
    new_intents = FAQ_INTENTS | CART_INTENTS | HISTORY_INTENTS
    assert all(counts[intent] >= 25 for intent in new_intents), counts
    texts = [e.get("text").lower() for e in nlu.intent_examples]
    assert len(texts) == len(set(texts)), "an example appears twice"


def test_reserved_intents_exist_in_the_domain_without_examples(
    nlu: TrainingData, domain_intents: list[str]
) -> None:
    reserved = {i for i in domain_intents if RESERVED.match(i)}
    assert {
        "EXTERNAL_payment_succeeded",
        "EXTERNAL_payment_failed",
        "EXTERNAL_checkout_expired",
        "EXTERNAL_refunded",
        "flow_data_exchange",
    } <= reserved
    assert any(i.startswith("EXTERNAL_subscription") for i in reserved)
    assert set(domain_intents) == USER_INTENTS | reserved
    assert not {e.get("intent") for e in nlu.intent_examples} & reserved
    assert not [e.get("text") for e in nlu.intent_examples if e.get("text").startswith("/")]


def test_product_synonyms_and_lookup_cover_the_catalog(nlu: TrainingData, catalog: Catalog) -> None:
    expected = {
        name.lower(): product.id
        for product in catalog
        for name in (product.name, *product.synonyms)
    }
    country_lookup = next(t for t in nlu.lookup_tables if t["name"] == "country")
    countries = {str(e) for e in country_lookup["elements"]}
    synonyms = {k.lower(): v for k, v in nlu.entity_synonyms.items() if v not in countries}
    for name, product_id in expected.items():
        assert synonyms.get(name, product_id if name == product_id else None) == product_id, name
    assert set(synonyms.values()) <= {p.id for p in catalog}
    lookup = next(t for t in nlu.lookup_tables if t["name"] == "product")
    assert {str(e).lower() for e in lookup["elements"]} >= set(expected)


def test_annotated_products_are_catalog_products(nlu: TrainingData, catalog: Catalog) -> None:
    annotated = [
        (e.get("text")[ent["start"] : ent["end"]])
        for e in nlu.training_examples
        for ent in e.get("entities") or []
        if ent["entity"] == "product"
    ]
    assert len(annotated) >= 20
    assert all(catalog.find(text) for text in annotated), annotated


def test_every_delivery_destination_is_a_country_the_nlu_finds(nlu: TrainingData) -> None:
    lookup = next(t for t in nlu.lookup_tables if t["name"] == "country")
    countries = {str(e).casefold() for e in lookup["elements"]}
    for destination in load_shop().destinations:
        for name in destination.names:
            assert name.casefold() in countries, name
    for alias, country in nlu.entity_synonyms.items():
        if country.casefold() in countries:
            assert alias.casefold() in countries, alias  # found first, then mapped


def test_a_country_another_starts_with_comes_after_it_in_the_lookup(nlu: TrainingData) -> None:
    """The lookup's regex takes the first alternative that matches at a position:
    'Guinea' before 'Guinea-Bissau' would cut the longer name short."""
    lookup = next(t for t in nlu.lookup_tables if t["name"] == "country")
    names = [str(e).casefold() for e in lookup["elements"]]
    for index, name in enumerate(names):
        later = [other for other in names[index + 1 :] if re.match(rf"{re.escape(name)}\b", other)]
        assert not later, (name, later)


def test_annotated_countries_are_in_the_lookup(nlu: TrainingData) -> None:
    lookup = next(t for t in nlu.lookup_tables if t["name"] == "country")
    countries = {str(e).casefold() for e in lookup["elements"]}
    annotated = [
        e.get("text")[ent["start"] : ent["end"]]
        for e in nlu.training_examples
        for ent in e.get("entities") or []
        if ent["entity"] == "country"
    ]
    assert len(annotated) >= 20
    assert all(text.casefold() in countries for text in annotated), annotated


def test_the_action_server_registers_exactly_the_domains_custom_actions() -> None:
    """What scripts/action_server.py does at start: an Action subclass that cannot be
    registered (say, a base class without a name) would stop the action server."""
    from rasa_sdk.executor import ActionExecutor

    executor = ActionExecutor()
    executor.register_package("actions")
    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    custom = {name for name in domain["actions"] if name.startswith("action_")}
    assert set(executor.actions) == custom
