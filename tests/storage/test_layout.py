"""The storage package's shape: the schema is a leaf, the key ring and the connector's
tables load no Rasa, the package's __init__ is empty (the import contracts in .importlinter
hold the rest, see tests/test_import_contracts.py)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STORAGE = ROOT / "connectors" / "storage"


def test_the_schema_imports_sqlalchemy_only() -> None:
    tree = ast.parse((STORAGE / "schema.py").read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported == {"sqlalchemy", "__future__"}


def test_the_package_init_is_empty() -> None:
    assert (STORAGE / "__init__.py").read_text() == ""


@pytest.mark.parametrize(
    "module",
    ["connectors.storage.keys", "connectors.storage.opening", "connectors.privacy.rights"],
)
def test_importing_loads_no_rasa(module: str) -> None:
    """The key ring is what the sandbox, the tests and the command-line tools import first;
    the store and the privacy tools run without a Rasa server."""
    probe = (
        f"import sys, {module}; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'rasa', 'rasa_sdk', 'sanic'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "[]"
