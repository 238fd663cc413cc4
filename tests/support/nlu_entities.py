"""The entities the NLU pipeline's regex extractor finds in a text, without a trained model:
data/nlu.yml's lookup tables and regexes matched as RegexEntityExtractor matches them
(config.yml: case-insensitive, word boundaries for lookups), values mapped through the
data's synonyms as EntitySynonymMapper does."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from rasa.nlu.utils import pattern_utils
from rasa.shared.nlu.training_data.loading import load_data
from rasa.shared.nlu.training_data.training_data import TrainingData


@lru_cache(maxsize=1)
def nlu() -> TrainingData:
    data = Path(__file__).resolve().parents[2] / "data"
    files = ("nlu.yml", "nlu_faq.yml", "countries.yml")
    return TrainingData().merge(*(load_data(str(data / name)) for name in files))


def entities(text: str) -> list[dict[str, Any]]:
    """The entities (product, quantity, country…) the pipeline in config.yml finds in `text`."""
    data = nlu()
    patterns = pattern_utils.extract_patterns(
        data, use_lookup_tables=True, use_regexes=True, use_only_entities=True
    )
    found = []
    for pattern in patterns:
        for match in re.finditer(pattern["pattern"], text, flags=re.IGNORECASE):
            value = match.group()
            synonym = data.entity_synonyms.get(value.lower(), value)
            found.append(
                {
                    "entity": pattern["name"],
                    "start": match.start(),
                    "end": match.end(),
                    "value": synonym,
                }
            )
    return found
