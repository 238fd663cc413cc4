"""Rasa's internals are patched only when the WhatsApp channel starts, only once, and only on
the Rasa version the patches were written for.

Whether importing patches anything can only be seen in a fresh interpreter (other tests in
this process install the patches), so those checks run a short Python script of their own.

The tests in this process import Rasa's core (and TensorFlow) when they run, not when the
module is collected, and run on one worker (tests/support/worker_groups.py): every other
worker is spared the ~5 s import.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import rasa
from rasa.core.channels.channel import CollectingOutputChannel
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker

from connectors.rasa_patches.action_failures import ActionFailed, watch_actions
from connectors.rasa_patches.install import EXPECTED_RASA_VERSION, install
from shop_contract.env_settings import ConfigError

if TYPE_CHECKING:
    from rasa.core.actions.action import RemoteAction

pytestmark = (
    pytest.mark.rasa_core
)  # loads TensorFlow: one worker runs these (tests/support/rasa_core_marker.py)

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# The module each patched function comes from, as a script sees it.
PATCHED_MODULES = """
import json
from rasa.core.actions.action import RemoteAction
from rasa.core.processor import MessageProcessor
from rasa.shared.core.events import Event
def patched_modules():
    return json.dumps([
        RemoteAction._validate_action_result.__module__,
        RemoteAction.run.__module__,
        Event.resolve_by_type.__module__,
        MessageProcessor._parse_message_with_graph.__module__,
    ])
"""
RASA_MODULES = [
    "rasa.core.actions.action",
    "rasa.core.actions.action",
    "rasa.shared.core.events",
    "rasa.core.processor",
]
PATCH_MODULES = [
    "connectors.rasa_patches.action_validation",
    "connectors.rasa_patches.failure_recording",
    "connectors.rasa_patches.event_types",
    "connectors.rasa_patches.intent_messages",
]


# One fresh interpreter goes through start-up as a shop would meet it: the channel imported,
# start-up on another Rasa version (refused), then on the right one. Each stage prints which
# module each function comes from; importing Rasa costs seconds, so the stages share it.
START_UP_STAGES = """
import rasa
from connectors.whatsapp.channel import WhatsAppInput

print("imported", patched_modules())
installed_version, rasa.__version__ = rasa.__version__, "3.7.0"
try:
    WhatsAppInput.from_credentials(None)
except SystemExit as refused:
    print("refused with status", refused.code)
print("after the refusal", patched_modules())
rasa.__version__ = installed_version
WhatsAppInput.from_credentials(None)
print("started", patched_modules())
"""


STAGES = ("imported", "refused with status", "after the refusal", "started")


@pytest.fixture(scope="module")
def start_up(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """What START_UP_STAGES printed in a fresh interpreter with a valid channel setup, by
    stage; every other line (the refusal's) under 'refusal'."""
    workdir = tmp_path_factory.mktemp("patches")
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        "WHATSAPP_ACCESS_TOKEN": "test-access-token",
        "WHATSAPP_PHONE_NUMBER_ID": "100000000000001",
        "WHATSAPP_APP_SECRET": "test-app-secret",
        "WHATSAPP_VERIFY_TOKEN": "test-verify-token",
        "DATABASE_URL": f"sqlite:///{workdir / 'patches.db'}",
    }
    result = subprocess.run(
        [sys.executable, "-c", PATCHED_MODULES + START_UP_STAGES],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    stages = {"refusal": ""}
    for line in result.stdout.strip().splitlines():
        stage = next((s for s in STAGES if line.startswith(s)), None)
        if stage is None:
            stages["refusal"] += line + "\n"
        else:
            stages[stage] = line.removeprefix(stage).strip()
    return stages


def test_importing_the_channel_patches_nothing(start_up: dict[str, str]) -> None:
    assert json.loads(start_up["imported"]) == RASA_MODULES


def test_from_credentials_installs_the_patches(start_up: dict[str, str]) -> None:
    assert json.loads(start_up["started"]) == PATCH_MODULES


def test_another_rasa_version_stops_start_up_with_one_clear_line(start_up: dict[str, str]) -> None:
    assert start_up["refused with status"] == "1"
    assert (
        "WhatsApp channel: rasa 3.7.0 is installed, but connectors/rasa_patches was written "
        f"for rasa {EXPECTED_RASA_VERSION} — install rasa=={EXPECTED_RASA_VERSION}"
    ) in start_up["refusal"]
    assert json.loads(start_up["after the refusal"]) == RASA_MODULES  # nothing was patched


def rasa_validation_stand_in(self: RemoteAction, result: dict[str, Any]) -> bool:
    """Takes the place of Rasa's validation, which the patch does not keep."""
    return True


def patch_points() -> list[tuple[type, str, Any, Any]]:
    """Each patched function as (its class, its name, Rasa's own, the patch's)."""
    from rasa.core.actions.action import RemoteAction
    from rasa.core.processor import MessageProcessor
    from rasa.shared.core.events import Event

    from connectors.rasa_patches import (
        action_validation,
        event_types,
        failure_recording,
        intent_messages,
    )

    return [
        (
            RemoteAction,
            "_validate_action_result",
            rasa_validation_stand_in,
            action_validation._validate_action_result,
        ),
        (RemoteAction, "run", failure_recording._original_run, failure_recording._run),
        (
            Event,
            "resolve_by_type",
            staticmethod(event_types._original_resolve_by_type),
            event_types._resolve_by_type,
        ),
        (
            MessageProcessor,
            "_parse_message_with_graph",
            intent_messages._original_parse_with_graph,
            intent_messages._parse_message_with_graph,
        ),
    ]


@pytest.fixture
def unpatched(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rasa's own functions back in place for the test (whatever earlier tests installed)."""
    for owner, name, rasas, _ in patch_points():
        monkeypatch.setattr(owner, name, rasas)


def patched() -> list[bool]:
    """Whether each of the four functions is the patch's, in this process."""
    return [getattr(owner, name) is ours for owner, name, _, ours in patch_points()]


@pytest.mark.usefixtures("unpatched")
def test_another_rasa_version_is_refused_before_anything_is_patched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rasa, "__version__", "3.6.20")
    with pytest.raises(ConfigError) as refused:
        install()
    assert str(refused.value).startswith(
        f"rasa 3.6.20 is installed, but connectors/rasa_patches was written for rasa "
        f"{EXPECTED_RASA_VERSION}"
    )
    assert patched() == [False] * 4


async def failures_of_one_failing_action() -> str:
    """What watch_actions reports for one custom action that fails (no action server)."""
    from rasa.core.actions.action import RemoteAction
    from rasa.core.nlg import TemplatedNaturalLanguageGenerator

    action = RemoteAction("action_confirm_payment", None)
    tracker = DialogueStateTracker.from_events("patches-test", [])
    nlg = TemplatedNaturalLanguageGenerator({})
    with pytest.raises(ActionFailed) as failed:
        async with watch_actions():
            with pytest.raises(rasa.shared.exceptions.RasaException):
                await action.run(CollectingOutputChannel(), nlg, tracker, Domain.empty())
    return str(failed.value)


@pytest.mark.usefixtures("unpatched")
def test_installing_twice_patches_once() -> None:
    install()
    install()
    assert patched() == [True] * 4
    assert asyncio.run(failures_of_one_failing_action()) == "action_confirm_payment: RasaException"
