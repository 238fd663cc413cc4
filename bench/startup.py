"""How long a Rasa server takes to answer after it is started (the downtime of a restart),
through scripts/rasa_cli.py as `make run` starts it, against `rasa run` itself as the
baseline: the same model, endpoints and settings, one after the other, in this run.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.figures import Figure
from connectors.storage.keys import ENV_VAR, new_key_line
from sandbox.launcher import BIN, bot_environment, rasa_run_command, write_config
from sandbox.processes import HOST, free_port, spawn, stop, wait_until_up

ROUNDS = 2  # each way, alternating; the best of each is reported


def seconds_to_answer(command: list[str], port: int, env: dict[str, str], workdir: Path) -> float:
    start = time.perf_counter()
    process = spawn(command, env, workdir / "rasa.log", workdir)
    try:
        wait_until_up(f"http://{HOST}:{port}/", [process])
        return time.perf_counter() - start
    finally:
        stop([process])


def rasa_startup() -> list[Figure]:
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        env = bot_environment(workdir, {ENV_VAR: new_key_line("bench")})
        # No action server is called while starting: the endpoint only has to be named.
        write_config(
            workdir, f"http://{HOST}:9", env["ACTION_SERVER_TOKEN"], {"rest": None}, None, None
        )
        timings: dict[str, list[float]] = {"rasa_cli": [], "rasa": []}
        for _ in range(ROUNDS):
            for way in timings:
                port = free_port()
                command = rasa_run_command(workdir, port)
                if way == "rasa_cli":
                    command = [str(BIN / "python"), "-m", "scripts.rasa_cli", *command[1:]]
                timings[way].append(seconds_to_answer(command, port, env, workdir))
    return [
        Figure(
            "rasa_startup",
            "rasa_cli run, up after",
            min(timings["rasa_cli"]),
            "s",
            min(timings["rasa"]),
        )
    ]
