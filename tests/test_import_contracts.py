"""`make lint`'s import contracts (.importlinter): they hold on this tree and break on a
forbidden import, run by lint-imports exactly as the Makefile runs it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = ROOT / ".venv" / "bin" / "lint-imports"
NOT_SOURCE = shutil.ignore_patterns("*.pyc", "__pycache__", "artifacts", "stories")
PACKAGES = ("actions", "bench", "connectors", "sandbox", "shop_contract", "tests")
LAYERS = "connectors sub-packages are layered"
STORAGE = "storage imports none of the edges, the jobs or privacy"
NO_RASA = "the connector's tables, keys, privacy tools and hand-over desk load no Rasa"


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(tree / ".importlinter"), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def copy_of_the_packages(destination: Path) -> Path:
    """A copy of the packages the contracts name, with the project's contracts."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, destination / package, ignore=NOT_SOURCE)
    shutil.copy(ROOT / ".importlinter", destination / ".importlinter")
    return destination


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return copy_of_the_packages(tmp_path)


def test_contracts_hold_on_the_project() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_contracts_hold_on_the_unmodified_copy(tree: Path) -> None:
    result = lint_imports(tree)
    assert result.returncode == 0, result.stdout + result.stderr


# (module, the import added to it, the contract that import breaks)
FORBIDDEN_IMPORTS = [
    (
        "actions/orders/model.py",
        "import connectors.storage.store",
        "actions and connectors are independent",
    ),
    (
        "connectors/whatsapp/output.py",
        "import actions.privacy_actions",
        "actions and connectors are independent",
    ),
    (
        "shop_contract/catalog.py",
        "import rasa_sdk",
        "shop_contract imports neither process nor their frameworks",
    ),
    (
        "shop_contract/intents.py",
        "import connectors.whatsapp.intents",
        "shop_contract imports neither process nor their frameworks",
    ),
    (
        "connectors/storage/store.py",
        "import sandbox.graph_api",
        "production code does not import the sandbox",
    ),
    (  # the import that made whatsapp/ and flows/ a cycle before intent_text.py
        "connectors/flows/endpoint.py",
        "import connectors.whatsapp.intents",
        LAYERS,
    ),
    (  # the edges under the channel are independent of each other
        "connectors/stripe/__init__.py",
        "import connectors.flows.completion",
        LAYERS,
    ),
    (  # the recovery sweep gets the channel's work as callbacks, never its payloads
        "connectors/jobs/recovery.py",
        "import connectors.whatsapp.payloads",
        LAYERS,
    ),
    (
        "connectors/privacy/__init__.py",
        "import connectors.jobs.outbox",
        LAYERS,
    ),
    (
        "connectors/edge/json_body.py",
        "import connectors.storage.store",
        LAYERS,
    ),
    (
        "connectors/storage/__init__.py",
        "import connectors.jobs.leases",
        LAYERS,
    ),
    (
        "connectors/storage/__init__.py",
        "import connectors.jobs.leases",
        STORAGE,
    ),
    (  # the cycle store ↔ privacy that the layout removed
        "connectors/storage/__init__.py",
        "import connectors.privacy.rights",
        STORAGE,
    ),
    (
        "connectors/storage/schema.py",
        "import connectors.storage.store",
        "storage in layers: schema a leaf, repositories, store, opening",
    ),
    (
        "connectors/storage/store.py",
        "import connectors.storage.opening",
        "storage in layers: schema a leaf, repositories, store, opening",
    ),
    (
        "connectors/storage/keys.py",
        "import rasa.core.lock_store",
        NO_RASA,
    ),
    (  # `make chat` works on the database, without loading Rasa
        "connectors/handover/desk.py",
        "import rasa.core.lock_store",
        NO_RASA,
    ),
    (  # the hand-over sits under the channel, which hands it what it needs
        "connectors/handover/pause.py",
        "import connectors.whatsapp.output",
        LAYERS,
    ),
    (  # and above the Stripe edge, whose external-event path it takes
        "connectors/stripe/events.py",
        "import connectors.handover.notices",
        LAYERS,
    ),
    (
        "connectors/settings.py",
        "import connectors.whatsapp.graph",
        "the settings stay a low layer",
    ),
    (
        "actions/settings.py",
        "import stripe",
        "the settings stay a low layer",
    ),
    ("bench/flow.py", "import tests.support.chat", "nothing imports the tests"),
    ("sandbox/launcher.py", "import tests.conftest", "nothing imports the tests"),
]


@pytest.fixture(scope="module")
def report_with_every_forbidden_import(tmp_path_factory: pytest.TempPathFactory) -> str:
    """lint-imports' report on one copy holding every forbidden import at once (one run
    instead of one per import); each case below finds its own import in it."""
    tree = copy_of_the_packages(tmp_path_factory.mktemp("tree"))
    for module, forbidden_import, _ in FORBIDDEN_IMPORTS:
        path = tree / module
        if f"\n{forbidden_import}\n" not in path.read_text():
            path.write_text(path.read_text() + f"\n{forbidden_import}\n")
    result = lint_imports(tree)
    assert result.returncode != 0, result.stdout
    return result.stdout


def contract_section(report: str, contract: str) -> str:
    """The part of lint-imports' report under one contract's heading (its title underlined
    with dashes), up to the next heading."""
    heading = f"\n{contract}\n{'-' * len(contract)}\n"
    assert heading in report, f"{contract!r} is not reported broken:\n{report}"
    section = report.split(heading, 1)[1]
    return re.split(r"\n[^\n]+\n-{3,}\n", section, maxsplit=1)[0]


@pytest.mark.parametrize(("module", "forbidden_import", "contract"), FORBIDDEN_IMPORTS)
def test_a_forbidden_import_breaks_its_contract(
    report_with_every_forbidden_import: str, module: str, forbidden_import: str, contract: str
) -> None:
    report = report_with_every_forbidden_import
    assert f"{contract} BROKEN" in report, report
    importer = module.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
    imported = forbidden_import.removeprefix("import ")
    if imported.split(".")[0] not in PACKAGES:  # lint-imports names outside packages by root
        imported = imported.split(".")[0]
    # A chain that starts with the added import (not one passing through it from elsewhere).
    chain_start = re.compile(rf"^-\s+{re.escape(importer)} -> {re.escape(imported)} \(l\.", re.M)
    assert chain_start.search(contract_section(report, contract)), report
