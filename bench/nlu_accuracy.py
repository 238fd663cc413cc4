"""Intent accuracy on examples the model never saw: a held-out split of the NLU data.

The NLU examples (every file under data/) are split per intent, 80 % to train and 20 % held
out, with a fixed seed so runs compare; an NLU model is trained on the 80 % with config.yml
(in a scratch folder, with its own empty cache) and every held-out example is parsed. A
message the FallbackClassifier turns into `nlu_fallback` counts as wrong: the customer got
the fallback instead of an answer. Beside it: how often such a message had its intent among
the classifier's three best, which is what the fallback's buttons offer (actions/fallback.py;
they leave out small talk). Lookup tables and synonyms stay in the training part (they are
the catalog and the country list, not examples).
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from rasa.shared.importers.importer import TrainingDataImporter
from rasa.utils.log_utils import configure_structlog

from bench.figures import Figure
from bench.intent_scores import FALLBACK, Prediction, score

ROOT = Path(__file__).resolve().parent.parent
TRAIN_FRACTION = 0.8
SEED = 16
TIMEOUT_SECONDS = 1200


def held_out_predictions(scratch: Path) -> list[Prediction]:
    """Trains on the training part in `scratch` and predicts every held-out example."""
    data = TrainingDataImporter.load_nlu_importer_from_config(
        str(ROOT / "config.yml"), training_data_paths=[str(ROOT / "data")]
    ).get_nlu_data()
    train, held_out = data.train_test_split(TRAIN_FRACTION, random_seed=SEED)
    train_file = scratch / "train.yml"
    train.persist_nlu(str(train_file))
    env = {**os.environ, "RASA_CACHE_DIRECTORY": str(scratch / "cache")}
    command = [
        str(ROOT / ".venv" / "bin" / "rasa"), "train", "nlu",
        "--config", str(ROOT / "config.yml"), "--nlu", str(train_file),
        "--out", str(scratch), "--fixed-model-name", "held-out",
    ]  # fmt: skip
    subprocess.run(
        command, cwd=ROOT, env=env, check=True, capture_output=True, timeout=TIMEOUT_SECONDS
    )
    from rasa.core.agent import Agent  # TensorFlow: loaded only when this benchmark runs

    configure_structlog(logging.WARNING)
    agent = Agent.load(str(scratch / "held-out.tar.gz"))

    async def predict() -> list[Prediction]:
        predictions = []
        for message in held_out.intent_examples:
            text = str(message.get("text"))
            parsed = await agent.parse_message(text)
            ranking = [str(r["name"]) for r in parsed["intent_ranking"] if r["name"] != FALLBACK]
            predictions.append(
                Prediction(
                    str(message.get("intent")),
                    str(parsed["intent"]["name"]),
                    tuple(ranking[:3]),
                    text,
                )
            )
        return predictions

    return asyncio.run(predict())


def nlu_accuracy() -> list[Figure]:
    with tempfile.TemporaryDirectory() as scratch:
        predictions = held_out_predictions(Path(scratch))
    for p in sorted(predictions, key=lambda p: (p.expected, p.predicted)):
        if p.expected != p.predicted:
            print(f"  held out, {p.expected} → {p.predicted}: {p.text}", file=sys.stderr)
    scores = score(predictions)
    return [
        Figure("nlu_held_out", "intent accuracy", scores.accuracy * 100, "%"),
        Figure("nlu_held_out", "fallback", scores.fallback_share * 100, "%"),
        Figure(
            "nlu_held_out", "fallbacks with it in the top 3", scores.fallback_offers_it * 100, "%"
        ),
        Figure(
            "nlu_held_out",
            f"worst intent ({scores.worst_intent})",
            scores.worst_accuracy * 100,
            "%",
        ),
        Figure("nlu_held_out", "held-out examples", scores.examples, "count"),
    ]
