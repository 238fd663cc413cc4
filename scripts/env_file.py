"""The env file's settings as shell `export` lines, for scripts/run.sh to `eval`.

Only those the environment lacks, from the file and by the rules every Python entry point
uses (shop_contract/env_settings.py `load_env_file`): ENV_FILE, else `.env` here; nothing
under SANDBOX=1; a missing ENV_FILE is one line on stderr and exit status 1.
"""

from __future__ import annotations

import os
import re
import shlex
import sys

from shop_contract.env_settings import ConfigError, load_env_file

SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def exports(environ: dict[str, str]) -> list[str]:
    """`export NAME=value` for each setting the env file adds to `environ`."""
    filled = dict(environ)
    load_env_file(filled)
    return [
        f"export {name}={shlex.quote(value)}"
        for name, value in filled.items()
        if name not in environ and SHELL_NAME.fullmatch(name)
    ]


def main() -> int:
    try:
        lines = exports(dict(os.environ))
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
