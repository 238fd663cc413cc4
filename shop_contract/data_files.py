"""Reading the shop's YAML data files (data/catalog.yml, data/shop.yml) with one kind of
error for each file, so a shop owner's typo is reported in one line naming the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def read_yaml(path: Path, error: type[ValueError], label: str) -> Any:
    """The parsed document; `error` (prefixed `label:`) when unreadable or not YAML."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as problem:
        raise error(f"{label}: cannot read {path}: {problem.strerror}") from problem
    except yaml.YAMLError as problem:
        raise error(f"{label}: {path} is not valid YAML: {problem}") from problem
