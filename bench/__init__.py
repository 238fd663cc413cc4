"""Benchmarks (`make bench`); see bench/__main__.py.

The bots they start seal conversations at rest like production, under a key made for the
run unless one is given.
"""

import os

from connectors.storage.keys import ENV_VAR, new_key_line

os.environ.setdefault(ENV_VAR, new_key_line("bench"))
