"""Rasa's internals are patched only when the WhatsApp channel starts, only once, and only on
the Rasa version the patches were written for.

Whether importing patches anything can only be seen in a fresh interpreter (other tests in
this process install the patches), so those checks run a short Python script of their own.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import rasa
from rasa.core.actions.action import RemoteAction
from rasa.core.channels.channel import CollectingOutputChannel
from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.core.processor import MessageProcessor
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import Event
from rasa.shared.core.trackers import DialogueStateTracker

from connectors.rasa_patches import (
    action_validation,
    event_types,
    failure_recording,
    intent_messages,
)
from connectors.rasa_patches.action_failures import ActionFailed, watch_actions
from connectors.rasa_patches.install import EXPECTED_RASA_VERSION, install
from shop_contract.env_settings import ConfigError

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


def run_script(body: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Runs PATCHED_MODULES + `body` in a fresh interpreter with a valid channel setup."""
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        "WHATSAPP_ACCESS_TOKEN": "test-access-token",
        "WHATSAPP_PHONE_NUMBER_ID": "100000000000001",
        "WHATSAPP_APP_SECRET": "test-app-secret",
        "WHATSAPP_VERIFY_TOKEN": "test-verify-token",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'patches.db'}",
    }
    return subprocess.run(
        [sys.executable, "-c", PATCHED_MODULES + body],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def last_line(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_importing_the_channel_patches_nothing(tmp_path: Path) -> None:
    result = run_script("import connectors.whatsapp.channel\nprint(patched_modules())", tmp_path)
    assert last_line(result) == RASA_MODULES


def test_from_credentials_installs_the_patches(tmp_path: Path) -> None:
    script = (
        "from connectors.whatsapp.channel import WhatsAppInput\n"
        "WhatsAppInput.from_credentials(None)\n"
        "print(patched_modules())"
    )
    assert last_line(run_script(script, tmp_path)) == PATCH_MODULES


def test_another_rasa_version_stops_start_up_with_one_clear_line(tmp_path: Path) -> None:
    script = (
        "import rasa\n"
        "rasa.__version__ = '3.7.0'\n"
        "from connectors.whatsapp.channel import WhatsAppInput\n"
        "try:\n"
        "    WhatsAppInput.from_credentials(None)\n"
        "finally:\n"
        "    print(patched_modules())\n"
    )
    result = run_script(script, tmp_path)
    assert result.returncode == 1
    refusal, modules = result.stdout.strip().splitlines()[-2:]
    assert (
        "WhatsApp channel: rasa 3.7.0 is installed, but connectors/rasa_patches was written "
        f"for rasa {EXPECTED_RASA_VERSION} — install rasa=={EXPECTED_RASA_VERSION}"
    ) in refusal
    assert json.loads(modules) == RASA_MODULES  # nothing was patched


def rasa_validation_stand_in(self: RemoteAction, result: dict[str, Any]) -> bool:
    """Takes the place of Rasa's validation, which the patch does not keep."""
    return True


@pytest.fixture
def unpatched(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rasa's own functions back in place for the test (whatever earlier tests installed)."""
    monkeypatch.setattr(RemoteAction, "_validate_action_result", rasa_validation_stand_in)
    monkeypatch.setattr(RemoteAction, "run", failure_recording._original_run)
    monkeypatch.setattr(
        Event, "resolve_by_type", staticmethod(event_types._original_resolve_by_type)
    )
    monkeypatch.setattr(
        MessageProcessor, "_parse_message_with_graph", intent_messages._original_parse_with_graph
    )


def patched() -> list[bool]:
    """Whether each of the four functions is the patch's, in this process."""
    return [
        RemoteAction._validate_action_result is action_validation._validate_action_result,
        RemoteAction.run is failure_recording._run,
        Event.resolve_by_type is event_types._resolve_by_type,
        MessageProcessor._parse_message_with_graph is intent_messages._parse_message_with_graph,
    ]


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
