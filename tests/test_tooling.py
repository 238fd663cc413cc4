"""Setup tooling: interpreter discovery, the settings report, the data-validation filter."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from connectors.storage.keys import ENV_VAR, KeyRing
from scripts import validate_data
from scripts.ensure_key import ensure_key
from scripts.settings_report import SETTINGS, missing_settings, render_report
from scripts.validate_data import unaccepted

ROOT = Path(__file__).resolve().parent.parent
FIND_PYTHON = ROOT / "scripts" / "find-python.sh"


def find_python(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(FIND_PYTHON)], env=env, capture_output=True, text=True, check=False
    )


def test_find_python_finds_a_310_interpreter() -> None:
    result = find_python(dict(os.environ))
    assert result.returncode == 0, result.stderr
    path = result.stdout.strip()
    version = subprocess.run(
        [path, "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert version.strip() == "(3, 10)"


def test_find_python_without_310_says_what_to_install(tmp_path: Path) -> None:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    fake = fake_bin / "python3"
    fake.write_text("#!/bin/sh\necho 3.12\n")
    fake.chmod(0o755)
    env = {"PATH": f"{fake_bin}:/usr/bin:/bin", "HOME": str(tmp_path), "PYENV_ROOT": str(tmp_path)}
    result = find_python(env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "No Python 3.10 found: install it" in lines[0]


def test_env_example_lists_every_setting_with_a_comment() -> None:
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    names = re.findall(r"^([A-Z_]+)=", text, flags=re.MULTILINE)
    assert set(names) >= {s.name for s in SETTINGS}
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if re.match(r"^[A-Z_]+=", line):
            assert lines[index - 1].startswith("#"), f"{line.split('=')[0]} has no comment"


def test_report_names_each_missing_required_setting_with_where_to_get_it() -> None:
    missing = missing_settings({"WHATSAPP_ACCESS_TOKEN": "x", "STRIPE_SECRET_KEY": "  "})
    names = [s.name for s in missing]
    assert "WHATSAPP_ACCESS_TOKEN" not in names
    assert "STRIPE_SECRET_KEY" in names and "WHATSAPP_APP_SECRET" in names
    assert "DATABASE_URL" not in names  # optional
    report = render_report(missing)
    for setting in missing:
        assert setting.name in report and setting.how_to_get in report
    complete = {s.name: "set" for s in SETTINGS}
    assert missing_settings(complete) == []
    assert render_report([]) == "All WhatsApp and Stripe settings are present."


def test_only_accepted_validation_warnings_pass() -> None:
    accepted = [
        "The intent 'EXTERNAL_refunded' is listed in the domain file, but is not found "
        "in the NLU training data.",
        "The intent 'flow_init' is listed in the domain file, but is not found in the NLU "
        "training data.",
    ]
    new = [
        "The intent 'greet' is listed in the domain file, but is not found in the NLU "
        "training data.",
        "The utterance 'utter_x' is not used in any story or rule.",
    ]
    assert unaccepted(accepted + new) == new


@pytest.mark.rasa_core  # imports Rasa's core: TensorFlow
def test_the_training_data_passes_rasas_validation(capsys: pytest.CaptureFixture[str]) -> None:
    """What `make validate` runs: Rasa's checks with no warning but the accepted ones."""
    code = validate_data.main()
    output = capsys.readouterr()
    assert code == 0, output.err
    assert "data validation: 0 unaccepted warning(s)" in output.out


def test_make_run_makes_and_keeps_an_encryption_key_only_for_the_local_database(
    tmp_path: Path,
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("WHATSAPP_VERIFY_TOKEN=x\n", encoding="utf-8")
    line = ensure_key({}, env_file)
    assert line is not None and line.startswith(f"{ENV_VAR}=")
    saved = env_file.read_text(encoding="utf-8")
    assert saved.startswith("WHATSAPP_VERIFY_TOKEN=x\n") and saved.rstrip().endswith(line)
    assert "# Keep it secret and backed up" in saved
    KeyRing.parse(line.split("=", 1)[1])  # a usable key
    assert ensure_key({ENV_VAR: line.split("=", 1)[1]}, env_file) is None  # kept, not remade
    assert ensure_key({"DATABASE_URL": "postgresql://db/shop"}, env_file) is None
    assert env_file.read_text(encoding="utf-8") == saved
