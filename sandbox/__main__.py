"""`python -m sandbox` (`make sandbox`, or `make run` without WhatsApp and Stripe settings):
the whole purchase on one machine, with no accounts.

Starts the Graph API emulator, the Stripe emulator and the chat simulator page, makes
throw-away secrets, then starts the bot with scripts/run.sh (the same start-up as the real
`make run`) pointed at the emulators, and prints where to open the page. Ctrl-C stops all.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from types import FrameType

from connectors.storage.keys import ENV_VAR
from sandbox.emulators import Emulators
from sandbox.processes import ROOT, StartError, port_open, spawn, stop, wait_until_up
from sandbox.settings import Ports, SandboxSecrets

DEFAULT_DATABASE = ROOT / "var" / "sandbox.db"
START_TIMEOUT_SECONDS = 300.0
RUN_SH_STOP_SECONDS = 30.0
BANNER_WIDTH = 64


def banner(page_url: str, rasa_url: str) -> str:
    rule = "=" * BANNER_WIDTH
    return "\n".join(
        [
            rule,
            "  SANDBOX — no real messages or payments",
            "  WhatsApp (Graph API) and Stripe are emulated on this machine;",
            "  every secret was made up for this run.",
            "",
            f"  Open the chat simulator:  {page_url}",
            f"  Bot (Rasa):               {rasa_url}",
            "  Ctrl-C stops everything.",
            rule,
        ]
    )


def launcher_env(emulators: Emulators, rasa_port: int) -> dict[str, str]:
    """The environment scripts/run.sh gets: ours plus the emulators' settings, a database
    of its own (SANDBOX_DATABASE_URL, default var/sandbox.db: sandbox conversations never
    mix with real ones) and no `.env` file.

    The default database starts empty every run (the emulators forget their sessions too),
    sealed under a key made for the run; a database named in SANDBOX_DATABASE_URL is kept,
    so it needs the same TRACKER_ENCRYPTION_KEY every time.
    """
    custom = os.environ.get("SANDBOX_DATABASE_URL", "").strip()
    return {
        **os.environ,
        **emulators.bot_env(),
        "DATABASE_URL": custom or f"sqlite:///{DEFAULT_DATABASE}",
        ENV_VAR: (os.environ.get(ENV_VAR, "") if custom else "") or emulators.keys.tracker_key,
        "RASA_PORT": str(rasa_port),
    }


def fresh_default_database() -> None:
    """Removes the default sandbox database of an earlier run (and its WAL files)."""
    if not os.environ.get("SANDBOX_DATABASE_URL", "").strip():
        for suffix in ("", "-wal", "-shm"):
            Path(f"{DEFAULT_DATABASE}{suffix}").unlink(missing_ok=True)


def main() -> int:
    try:
        ports = Ports.from_env(os.environ)
        rasa_port = int(os.environ.get("RASA_PORT", "5005"))
        actions_port = int(os.environ.get("ACTION_SERVER_PORT", "5055"))
    except ValueError as error:
        print(f"sandbox: {error}", file=sys.stderr)
        return 2
    for name, port in (("RASA_PORT", rasa_port), ("ACTION_SERVER_PORT", actions_port)):
        if port_open(port):
            print(
                f"sandbox: port {port} ({name}) is in use — is another `make run` running? "
                f"Stop it, or set {name}.",
                file=sys.stderr,
            )
            return 1
    print("Sandbox: starting the WhatsApp and Stripe emulators…", flush=True)
    emulators = Emulators(SandboxSecrets.generate(), ports)
    try:
        emulators.start()
    except OSError as error:
        print(
            f"sandbox: cannot listen ({error}); set SANDBOX_PAGE_PORT, SANDBOX_GRAPH_PORT "
            "or SANDBOX_STRIPE_PORT to free ports",
            file=sys.stderr,
        )
        return 1
    rasa_url = f"http://127.0.0.1:{rasa_port}"
    emulators.connect(rasa_url)
    fresh_default_database()
    bot = spawn([str(ROOT / "scripts" / "run.sh"), "serve"], launcher_env(emulators, rasa_port))

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        try:
            wait_until_up(f"{rasa_url}/webhooks/whatsapp/", [bot], START_TIMEOUT_SECONDS)
        except StartError as error:
            print(f"sandbox: {error}", file=sys.stderr)
        else:
            print(banner(emulators.page_url, rasa_url), flush=True)
        bot.wait()
        print("sandbox: the bot stopped", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nsandbox: stopping…", flush=True)
        return 0
    finally:
        stop([bot], timeout=RUN_SH_STOP_SECONDS)  # run.sh stops its two servers on SIGTERM
        emulators.stop()


if __name__ == "__main__":
    sys.exit(main())
