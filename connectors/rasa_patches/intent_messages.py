"""'/intent{…}' messages parsed without running the NLU pipeline.

`MessageProcessor._parse_message_with_graph` runs the whole NLU pipeline (featurizers,
classifier, extractors) for messages like '/flow_data_exchange{…}', only for the last
component (RegexMessageHandler) to replace the result. Such messages — every Flow screen,
every button — now go to RegexMessageHandler alone; the parse data is the same. Found with
py-spy on `rasa run` under Flow traffic (README, "Performance").
"""

from __future__ import annotations

from typing import Any

from rasa.core.channels.channel import UserMessage
from rasa.core.processor import MessageProcessor
from rasa.nlu.classifiers.regex_message_handler import RegexMessageHandler
from rasa.shared.constants import INTENT_MESSAGE_PREFIX
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import (
    ENTITIES,
    INTENT,
    INTENT_NAME_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message

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
    """Replaces `MessageProcessor._parse_message_with_graph` (idempotent)."""
    MessageProcessor._parse_message_with_graph = _parse_message_with_graph
