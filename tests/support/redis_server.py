"""The local Redis (127.0.0.1:6379) for tests that need one; they skip with the reason
only when it cannot be reached. CI here has it, so they run there."""

from __future__ import annotations

import functools

import redis

HOST, PORT = "127.0.0.1", 6379


@functools.cache
def unreachable_reason() -> str | None:
    try:
        redis.Redis(host=HOST, port=PORT, socket_timeout=2).ping()
    except redis.RedisError as error:
        return f"Redis at {HOST}:{PORT} is not reachable ({type(error).__name__})"
    return None
