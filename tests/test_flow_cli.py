"""The Flows operator CLI, against the fake Graph API (a real loopback server)."""

from __future__ import annotations

import secrets
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from sandbox.graph_api import GraphApiEmulator
from scripts.flow_cli import run

PASSPHRASE = secrets.token_urlsafe(12)


@pytest.fixture
def key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "keys" / "flow.pem"
    monkeypatch.setenv("TEST_KEY_PASSPHRASE", PASSPHRASE)
    assert run(["keygen", "--out", str(path), "--passphrase-env", "TEST_KEY_PASSPHRASE"]) == 0
    return path


@pytest.fixture
def whatsapp_env(
    monkeypatch: pytest.MonkeyPatch, fake_graph: GraphApiEmulator, key_file: Path
) -> GraphApiEmulator:
    for name, value in {
        "WHATSAPP_ACCESS_TOKEN": fake_graph.access_token,
        "WHATSAPP_PHONE_NUMBER_ID": fake_graph.phone_number_id,
        "WHATSAPP_APP_SECRET": secrets.token_hex(16),
        "WHATSAPP_VERIFY_TOKEN": "verify",
        "WHATSAPP_API_BASE": fake_graph.base_url,
        "WHATSAPP_FLOW_ID": "998877",
        "WHATSAPP_FLOW_PRIVATE_KEY": str(key_file),
        "WHATSAPP_FLOW_PRIVATE_KEY_PASSPHRASE": PASSPHRASE,
    }.items():
        monkeypatch.setenv(name, value)
    return fake_graph


def test_keygen_writes_a_private_encrypted_key_and_prints_the_public_one(
    capsys: pytest.CaptureFixture[str], key_file: Path
) -> None:
    public = capsys.readouterr().out
    assert public.startswith("-----BEGIN PUBLIC KEY-----")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    pem = key_file.read_bytes()
    assert b"ENCRYPTED" in pem
    with pytest.raises(TypeError):
        serialization.load_pem_private_key(pem, password=None)
    key = serialization.load_pem_private_key(pem, password=PASSPHRASE.encode())
    derived = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert derived.decode() == public


def test_keygen_refuses_to_overwrite_or_a_short_passphrase(
    key_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(["keygen", "--out", str(key_file), "--passphrase-env", "TEST_KEY_PASSPHRASE"]) == 1
    assert "refusing to overwrite" in capsys.readouterr().err
    monkeypatch.setenv("SHORT", "abc")
    assert run(["keygen", "--out", str(tmp_path / "x.pem"), "--passphrase-env", "SHORT"]) == 1
    assert "at least 8 characters" in capsys.readouterr().err


def test_upload_key_and_key_status(
    whatsapp_env: GraphApiEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert run(["key-status"]) == 0
    assert capsys.readouterr().out.strip() == "MISMATCH"
    assert run(["upload-key"]) == 0
    assert whatsapp_env.public_key is not None
    assert whatsapp_env.public_key.startswith("-----BEGIN PUBLIC KEY-----")
    assert run(["key-status"]) == 0
    assert capsys.readouterr().out.strip().endswith("VALID")


def test_send_flow_sends_the_order_flow(
    whatsapp_env: GraphApiEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["send-flow", "--to", "15550004444"]) == 0
    (message,) = whatsapp_env.messages()
    assert message["to"] == "15550004444"
    parameters = message["interactive"]["action"]["parameters"]
    assert parameters["flow_id"] == "998877" and parameters["flow_token"].startswith("ft1.")
    assert "sent: wamid." in capsys.readouterr().out


def test_missing_settings_are_named(
    whatsapp_env: GraphApiEmulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr("scripts.flow_cli.load_env_file", lambda *a, **k: None)
    monkeypatch.delenv("WHATSAPP_APP_SECRET")
    assert run(["key-status"]) == 1
    assert "WHATSAPP_APP_SECRET: not set" in capsys.readouterr().err
