"""Fixes for three Rasa 3.6 hot paths, applied when the WhatsApp channel is loaded.

- `RemoteAction._validate_action_result` calls `jsonschema.validate`, which checks the
  schema itself against the meta-schema on every action-server response. The same check
  with a validator compiled once gives the same verdicts and messages, far cheaper.
- `Event.resolve_by_type` scans every Event subclass for every event of every tracker it
  loads. A table built from the same scan answers in one lookup; names it does not know
  still go through the original scan, so late-defined event classes keep working.
- `MessageProcessor._parse_message_with_graph` runs the whole NLU pipeline (featurizers,
  classifier, extractors) for messages like '/flow_data_exchange{…}', only for the last
  component (RegexMessageHandler) to replace the result. Such messages — every Flow screen,
  every button — now go to RegexMessageHandler alone; the parse data is the same.

Both were found with py-spy on `rasa run` under Flow traffic (see README, "Performance").
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft7Validator, ValidationError
from rasa.core.actions.action import RemoteAction
from rasa.core.channels.channel import UserMessage
from rasa.core.processor import MessageProcessor
from rasa.nlu.classifiers.regex_message_handler import RegexMessageHandler
from rasa.shared.constants import DOCS_BASE_URL, INTENT_MESSAGE_PREFIX
from rasa.shared.core.events import Event
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import (
    ENTITIES,
    INTENT,
    INTENT_NAME_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.utils.common import all_subclasses

_ACTION_RESPONSE_VALIDATOR = Draft7Validator(RemoteAction.action_response_format_spec())


def _validate_action_result(self: RemoteAction, result: dict[str, Any]) -> bool:
    try:
        _ACTION_RESPONSE_VALIDATOR.validate(result)
    except ValidationError as error:
        error.message += (
            ". Failed to validate Action server response from API, make sure your response "
            f"from the Action endpoint is valid. For more information about the format visit "
            f"{DOCS_BASE_URL}/custom-actions"
        )
        raise
    return True


_original_resolve_by_type = Event.resolve_by_type
_event_types: dict[str, type[Event]] = {}


def _resolve_by_type(type_name: str, default: type[Event] | None = None) -> type[Event] | None:
    if not _event_types:
        for cls in all_subclasses(Event):
            _event_types.setdefault(cls.type_name, cls)
    found = _event_types.get(type_name)
    if found is not None:
        return found
    resolved: type[Event] | None = _original_resolve_by_type(type_name, default)
    return resolved


_original_parse_with_graph = MessageProcessor._parse_message_with_graph
_regex_handler = RegexMessageHandler()


def _parse_message_with_graph(
    self: MessageProcessor,
    message: UserMessage,
    tracker: DialogueStateTracker,
    only_output_properties: bool = True,
) -> dict[str, Any]:
    text = message.text or ""
    if text.startswith(INTENT_MESSAGE_PREFIX):
        (parsed,) = _regex_handler.process([Message(data={TEXT: text})], self.domain)
        if parsed.get(INTENT):
            parse_data: dict[str, Any] = {
                TEXT: "",
                INTENT: {INTENT_NAME_KEY: None, PREDICTED_CONFIDENCE_KEY: 0.0},
                ENTITIES: [],
            }
            parse_data.update(parsed.as_dict(only_output_properties=only_output_properties))
            return parse_data
    result: dict[str, Any] = _original_parse_with_graph(
        self, message, tracker, only_output_properties
    )
    return result


def apply() -> None:
    """Installs the fixes (idempotent)."""
    RemoteAction._validate_action_result = _validate_action_result
    Event.resolve_by_type = staticmethod(_resolve_by_type)
    MessageProcessor._parse_message_with_graph = _parse_message_with_graph
