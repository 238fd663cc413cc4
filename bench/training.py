"""How long a full `rasa train` of this project takes (the wait after every data change).

Trains into a temporary folder with an empty cache of its own, so nothing from earlier
trainings is reused and models/ is left alone.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

from bench.figures import Figure

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_SECONDS = 1800


def training_time() -> list[Figure]:
    rasa = str(ROOT / ".venv" / "bin" / "rasa")
    with tempfile.TemporaryDirectory() as scratch:
        env = {**os.environ, "RASA_CACHE_DIRECTORY": str(Path(scratch) / "cache")}
        command = [
            rasa, "train", "--force",
            "--out", str(Path(scratch) / "models"), "--fixed-model-name", "bench",
            "--data", "data", "--config", "config.yml", "--domain", "domain.yml",
        ]  # fmt: skip
        start = time.perf_counter()
        subprocess.run(
            command, cwd=ROOT, env=env, check=True, capture_output=True, timeout=TIMEOUT_SECONDS
        )
        seconds = time.perf_counter() - start
    return [Figure("rasa_train_force", "duration", seconds, "s")]
