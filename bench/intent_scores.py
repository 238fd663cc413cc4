"""Scores of intent predictions on held-out examples (bench/nlu_accuracy.py); no Rasa here,
so the scoring is tested without loading it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

FALLBACK = "nlu_fallback"


@dataclass(frozen=True)
class Prediction:
    expected: str
    predicted: str  # FALLBACK when the FallbackClassifier stepped in
    runners_up: tuple[str, ...]  # the classifier's three best intents, best first
    text: str = ""


@dataclass(frozen=True)
class Scores:
    accuracy: float  # share of held-out examples given their own intent
    fallback_share: float  # share that got the fallback
    fallback_offers_it: float  # share of fallbacks with the right intent among the top three
    worst_intent: str
    worst_accuracy: float
    examples: int


def score(predictions: list[Prediction]) -> Scores:
    """Scores the held-out predictions."""
    if not predictions:
        raise ValueError("no held-out examples to score")
    right = Counter(p.expected for p in predictions if p.expected == p.predicted)
    seen = Counter(p.expected for p in predictions)
    per_intent = {intent: right[intent] / count for intent, count in seen.items()}
    worst = min(sorted(per_intent), key=lambda intent: per_intent[intent])
    fallbacks = [p for p in predictions if p.predicted == FALLBACK]
    offered = sum(1 for p in fallbacks if p.expected in p.runners_up)
    return Scores(
        accuracy=sum(right.values()) / len(predictions),
        fallback_share=len(fallbacks) / len(predictions),
        fallback_offers_it=offered / len(fallbacks) if fallbacks else 1.0,
        worst_intent=worst,
        worst_accuracy=per_intent[worst],
        examples=len(predictions),
    )
