"""The Rasa hot-path fixes change nothing but the cost.

Rasa's core and the patches (which import it) are imported inside the tests: they load
TensorFlow, which only the worker running the `rasa_core` tests should pay for.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from jsonschema import ValidationError
from rasa.core.channels.channel import UserMessage
from rasa.shared.core.events import ActionExecuted, Event, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.utils.common import all_subclasses

if TYPE_CHECKING:
    from rasa.core.agent import Agent

pytestmark = (
    pytest.mark.rasa_core
)  # loads TensorFlow: one worker runs these (tests/support/rasa_core_marker.py)

MODEL = Path(__file__).resolve().parent.parent / "models" / "shop.tar.gz"


@pytest.fixture(scope="module")
def agent() -> Iterator[Agent]:
    from rasa.core.agent import Agent

    yield Agent.load(str(MODEL))


@pytest.mark.parametrize(
    "text",
    [
        "/affirm",
        '/order{"product": "green-tea"}',
        '/flow_data_exchange{"flow_token":"t","flow_screen":"PRODUCT","flow_data":{"product":"x"}}',
        "/EXTERNAL_payment_succeeded",
        "/not_an_intent_of_this_bot",
        "I would like some espresso beans",
    ],
)
def test_parse_data_is_the_same_as_the_full_pipeline(agent: Agent, text: str) -> None:
    from connectors.rasa_patches import intent_messages

    processor = agent.processor
    assert processor is not None
    message = UserMessage(text, sender_id="speedup-test")
    tracker = DialogueStateTracker.from_events("speedup-test", [])
    expected = intent_messages._original_parse_with_graph(processor, message, tracker)
    actual = intent_messages._parse_message_with_graph(processor, message, tracker)
    assert actual == expected


def test_action_results_are_validated_as_before() -> None:
    from rasa.core.actions.action import RemoteAction

    from connectors.rasa_patches import action_validation

    action_validation.apply()
    action = RemoteAction("action_x", None)
    assert action._validate_action_result({"events": [], "responses": []})
    bad: dict[str, Any] = {"events": "not a list", "responses": []}
    with pytest.raises(ValidationError, match="Failed to validate Action server response"):
        action._validate_action_result(bad)


def test_event_types_resolve_as_the_scan_does() -> None:
    from connectors.rasa_patches import event_types

    event_types.apply()
    for cls in all_subclasses(Event):
        assert Event.resolve_by_type(cls.type_name) is event_types._original_resolve_by_type(
            cls.type_name
        )
    assert Event.resolve_by_type("user") is UserUttered
    assert Event.resolve_by_type("slot") is SlotSet
    assert Event.resolve_by_type("action") is ActionExecuted
    assert Event.resolve_by_type("topic") is None
    with pytest.raises(ValueError, match="Unknown event name"):
        Event.resolve_by_type("no_such_event")
