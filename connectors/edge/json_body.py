"""JSON from untrusted bytes: every way it can be bad is one ValueError.

`json.loads` raises RecursionError (not a ValueError) for deeply nested input such as
'[[[[…]]]]', which would otherwise escape a handler's error mapping as a 500.
"""

from __future__ import annotations

import json
from typing import Any


def parse_json(raw: bytes | str) -> Any:
    """The parsed document; ValueError for invalid JSON, bad encoding or excessive nesting."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
