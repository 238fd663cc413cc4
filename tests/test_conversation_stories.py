"""The conversation tests in tests/stories, end to end against the trained model.

`rasa test core --e2e --fail-on-prediction-errors`, forked from the process that has already
imported Rasa (sandbox/warm_start.py), so it runs next to the other tests instead of after
them; `make story-test` runs this module alone.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sandbox.launcher import BIN, LOG_TAIL_CHARACTERS, MODEL
from sandbox.processes import ROOT, stop
from sandbox.warm_start import fork_rasa

pytestmark = pytest.mark.live  # a Rasa process that loads the model
STORIES = ROOT / "tests" / "stories"
TIMEOUT_SECONDS = 300


def test_every_test_story_is_predicted_end_to_end(tmp_path: Path) -> None:
    command = [str(BIN / "rasa"), "test", "core", "--e2e", "--model", str(MODEL)]
    command += ["--stories", str(STORIES), "--out", str(tmp_path)]
    command += ["--fail-on-prediction-errors", "--no-plot"]
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false"}
    log = tmp_path / "rasa-test.log"
    testing = fork_rasa(command, env, log, ROOT)
    try:
        code = testing.wait(timeout=TIMEOUT_SECONDS)
    finally:
        stop([testing])  # one that overran its time is not left running
    failed = tmp_path / "failed_test_stories.yml"
    assert code == 0, (failed.read_text() if failed.exists() else "") + log.read_text()[
        -LOG_TAIL_CHARACTERS:
    ]
    stories = json.loads((tmp_path / "story_report.json").read_text())["conversation_accuracy"]
    print(f"test stories: {stories['correct']}/{stories['total']} predicted end to end")
    assert stories["correct"] == stories["total"] > 0
