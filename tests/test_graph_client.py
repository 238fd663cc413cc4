"""GraphClient against the fake Graph API on loopback: sends, receipts, retries, errors, keys."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar

import pytest

from connectors.whatsapp.graph import GraphApiError, GraphClient, GraphSettings
from sandbox import meta
from sandbox.graph_api import GraphApiEmulator

T = TypeVar("T")

RECIPIENT = "15550001111"
TEXT_MESSAGE: dict[str, Any] = {
    "messaging_product": "whatsapp",
    "recipient_type": "individual",
    "to": RECIPIENT,
    "type": "text",
    "text": {"body": "Your order is on its way"},
}
PUBLIC_KEY_PEM = (
    "-----BEGIN PUBLIC KEY-----\n"
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAfakefakefakefakefakefake\n"
    "-----END PUBLIC KEY-----\n"
)
RE_ENGAGEMENT_ERROR = {
    "error": {
        "message": "(#131047) Re-engagement message",
        "type": "OAuthException",
        "code": 131047,
        "error_data": {"messaging_product": "whatsapp", "details": "More than 24 hours passed."},
        "fbtrace_id": "AbCdEf",
    }
}
SERVER_ERROR = {"error": {"message": "An unknown error has occurred.", "code": 1}}


class RecordingSleep:
    """Stands in for asyncio.sleep: records each delay and returns at once.

    `action`, when given, runs right after sleep number `after` (to end an outage, say).
    """

    def __init__(self, after: int = 0, action: Callable[[], None] | None = None) -> None:
        self.delays: list[float] = []
        self._after = after
        self._action = action

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if self._action is not None and len(self.delays) == self._after:
            self._action()


def settings_for(fake: GraphApiEmulator) -> GraphSettings:
    """Settings pointing at the fake, with timeouts small enough for a quick test run."""
    return GraphSettings(
        api_base=fake.base_url,
        phone_number_id=fake.phone_number_id,
        access_token=fake.access_token,
        timeout_seconds=0.3,
        max_attempts=4,
        base_backoff_seconds=0.5,
        max_backoff_seconds=5.0,
    )


def call(
    settings: GraphSettings,
    operation: Callable[[GraphClient], Awaitable[T]],
    sleep: RecordingSleep | None = None,
) -> T:
    """Runs `operation` with a fresh client on a fresh event loop, closing the client after."""

    async def scenario() -> T:
        client = GraphClient(settings, sleep=sleep or RecordingSleep())
        try:
            return await operation(client)
        finally:
            await client.close()

    return asyncio.run(scenario())


def emu_id(number: int) -> str:
    """The id the fake Graph API gives its `number`-th message to TEXT_MESSAGE's recipient."""
    return meta.wamid(TEXT_MESSAGE["to"], f"EMU{number}")


def send_text(client: GraphClient) -> Awaitable[str]:
    return client.send_message(TEXT_MESSAGE)


def test_settings_strip_a_trailing_slash_and_need_one_attempt() -> None:
    settings = GraphSettings("https://graph.facebook.com/v23.0/", "1", "token")
    assert settings.api_base == "https://graph.facebook.com/v23.0"
    with pytest.raises(ValueError, match="max_attempts"):
        GraphSettings("https://graph.facebook.com/v23.0", "1", "token", max_attempts=0)


def test_send_returns_the_message_id_and_sends_the_body_as_given(
    fake_graph: GraphApiEmulator,
) -> None:
    assert call(settings_for(fake_graph), send_text) == emu_id(1)

    assert fake_graph.messages() == [TEXT_MESSAGE]
    [request] = fake_graph.requests
    assert request.method == "POST"
    assert request.path == f"/v23.0/{fake_graph.phone_number_id}/messages"
    assert request.headers["Authorization"] == f"Bearer {fake_graph.access_token}"


def test_one_session_serves_several_calls(fake_graph: GraphApiEmulator) -> None:
    async def two_sends(client: GraphClient) -> list[str]:
        return [await client.send_message(TEXT_MESSAGE), await client.send_message(TEXT_MESSAGE)]

    assert call(settings_for(fake_graph), two_sends) == [emu_id(1), emu_id(2)]


def test_mark_read_sends_status_read_with_typing_indicator(fake_graph: GraphApiEmulator) -> None:
    call(settings_for(fake_graph), lambda client: client.mark_read("wamid.IN1"))
    call(
        settings_for(fake_graph),
        lambda client: client.mark_read("wamid.IN2", typing_indicator=False),
    )

    assert [r.json for r in fake_graph.requests] == [
        {
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": "wamid.IN1",
            "typing_indicator": {"type": "text"},
        },
        {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.IN2"},
    ]
    assert fake_graph.messages() == []


def test_429_waits_at_least_retry_after_then_succeeds(fake_graph: GraphApiEmulator) -> None:
    settings = settings_for(fake_graph)
    fake_graph.queue_responses((429, {"error": {"code": 80007}}, {"Retry-After": "2"}))
    sleep = RecordingSleep()

    assert call(settings, send_text, sleep) == emu_id(1)

    [delay] = sleep.delays
    assert 2 <= delay <= settings.max_backoff_seconds
    assert len(fake_graph.messages()) == 2


def test_retry_after_is_capped_at_max_backoff(fake_graph: GraphApiEmulator) -> None:
    settings = settings_for(fake_graph)
    fake_graph.queue_responses((429, {"error": {"code": 80007}}, {"Retry-After": "120"}))
    sleep = RecordingSleep()

    call(settings, send_text, sleep)

    assert sleep.delays == [settings.max_backoff_seconds]


def test_5xx_is_retried_with_jittered_delays_within_the_doubling_bounds(
    fake_graph: GraphApiEmulator,
) -> None:
    settings = settings_for(fake_graph)
    fake_graph.queue_responses((500, SERVER_ERROR, {}), (503, SERVER_ERROR, {}))
    sleep = RecordingSleep()

    assert call(settings, send_text, sleep) == emu_id(1)

    first, second = sleep.delays
    assert 0 <= first <= settings.base_backoff_seconds
    assert 0 <= second <= 2 * settings.base_backoff_seconds
    assert len(fake_graph.messages()) == 3


def test_exhausted_retries_raise_a_retryable_error(
    fake_graph: GraphApiEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Jitter at its ceiling shows the ceiling: it doubles, then stops at max_backoff.
    monkeypatch.setattr(random, "uniform", lambda low, high: high)
    settings = replace(settings_for(fake_graph), max_backoff_seconds=1.5)
    fake_graph.queue_responses(*[(500, SERVER_ERROR, {})] * settings.max_attempts)
    sleep = RecordingSleep()

    with pytest.raises(GraphApiError) as raised:
        call(settings, send_text, sleep)

    assert (raised.value.status, raised.value.code, raised.value.retryable) == (500, 1, True)
    assert sleep.delays == [0.5, 1.0, 1.5]
    assert len(fake_graph.requests) == settings.max_attempts


def test_meta_error_is_permanent_and_logged_without_personal_data(
    fake_graph: GraphApiEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    fake_graph.queue_responses((400, RE_ENGAGEMENT_ERROR, {}))
    sleep = RecordingSleep()

    with (
        caplog.at_level(logging.INFO, logger="connectors.whatsapp.graph"),
        pytest.raises(GraphApiError) as raised,
    ):
        call(settings_for(fake_graph), send_text, sleep)

    error = raised.value
    assert (error.status, error.code, error.retryable) == (400, 131047, False)
    assert error.title == "(#131047) Re-engagement message"
    assert sleep.delays == []
    assert len(fake_graph.requests) == 1
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "131047" in record.getMessage()
    for secret in (RECIPIENT, fake_graph.access_token, TEXT_MESSAGE["text"]["body"]):
        assert secret not in caplog.text


def test_non_json_error_body_is_handled(fake_graph: GraphApiEmulator) -> None:
    fake_graph.queue_responses((403, "<html><body>Forbidden</body></html>", {}))

    with pytest.raises(GraphApiError) as raised:
        call(settings_for(fake_graph), send_text)

    error = raised.value
    assert (error.status, error.code, error.title, error.retryable) == (
        403,
        None,
        "HTTP 403",
        False,
    )


def test_non_json_gateway_error_is_retried(fake_graph: GraphApiEmulator) -> None:
    fake_graph.queue_responses((502, "Bad Gateway", {"Content-Type": "text/html"}))

    assert call(settings_for(fake_graph), send_text) == emu_id(1)


def test_success_without_message_id_is_an_error(fake_graph: GraphApiEmulator) -> None:
    fake_graph.queue_responses((200, "OK", {}))
    sleep = RecordingSleep()

    with pytest.raises(GraphApiError, match="response without message id") as raised:
        call(settings_for(fake_graph), send_text, sleep)

    assert (raised.value.status, raised.value.retryable) == (200, False)
    assert sleep.delays == []


def test_slow_answer_times_out_and_is_retried(fake_graph: GraphApiEmulator) -> None:
    settings = settings_for(fake_graph)
    slow = settings.timeout_seconds + 1.0
    fake_graph.queue_responses((200, {"messages": [{"id": "wamid.TOO_LATE"}]}, {}, slow))
    sleep = RecordingSleep()

    assert call(settings, send_text, sleep) == emu_id(1)

    assert len(sleep.delays) == 1
    assert len(fake_graph.requests) == 2


def test_timeouts_until_the_last_attempt_raise_without_status(fake_graph: GraphApiEmulator) -> None:
    settings = replace(settings_for(fake_graph), max_attempts=2, timeout_seconds=0.1)
    fake_graph.queue_responses(*[(200, {}, {}, 1.0)] * settings.max_attempts)

    with pytest.raises(GraphApiError) as raised:
        call(settings, send_text)

    error = raised.value
    assert (error.status, error.code, error.title, error.retryable) == (
        None,
        None,
        "timed out",
        True,
    )


def test_outage_is_ridden_out_until_connections_are_accepted_again(
    fake_graph: GraphApiEmulator,
) -> None:
    fake_graph.refuse_connections()
    sleep = RecordingSleep(after=2, action=fake_graph.accept_connections)

    assert call(settings_for(fake_graph), send_text, sleep) == emu_id(1)

    assert len(sleep.delays) == 2
    assert fake_graph.messages() == [TEXT_MESSAGE]


def test_outage_mid_session_drops_the_open_connection_and_is_ridden_out(
    fake_graph: GraphApiEmulator,
) -> None:
    sleep = RecordingSleep(after=1, action=fake_graph.accept_connections)

    async def send_outage_send(client: GraphClient) -> list[str]:
        first = await client.send_message(TEXT_MESSAGE)
        fake_graph.refuse_connections()
        return [first, await client.send_message(TEXT_MESSAGE)]

    assert call(settings_for(fake_graph), send_outage_send, sleep) == [
        emu_id(1),
        emu_id(2),
    ]
    assert len(sleep.delays) == 1


def test_outage_longer_than_the_retries_raises_a_retryable_error(
    fake_graph: GraphApiEmulator,
) -> None:
    settings = settings_for(fake_graph)
    fake_graph.refuse_connections()
    sleep = RecordingSleep()

    with pytest.raises(GraphApiError, match="connection failed") as raised:
        call(settings, send_text, sleep)

    assert (raised.value.status, raised.value.retryable) == (None, True)
    assert len(sleep.delays) == settings.max_attempts - 1
    assert fake_graph.requests == []


def test_wrong_token_is_a_permanent_oauth_error(fake_graph: GraphApiEmulator) -> None:
    settings = replace(settings_for(fake_graph), access_token="not-the-token")
    sleep = RecordingSleep()

    with pytest.raises(GraphApiError) as raised:
        call(settings, send_text, sleep)

    error = raised.value
    assert (error.status, error.code, error.retryable) == (401, 190, False)
    assert error.title == "Invalid OAuth access token"
    assert sleep.delays == []
    assert len(fake_graph.requests) == 1


def test_public_key_upload_and_status_round_trip(fake_graph: GraphApiEmulator) -> None:
    settings = settings_for(fake_graph)

    before = call(settings, lambda client: client.public_key_status())
    call(settings, lambda client: client.upload_public_key(PUBLIC_KEY_PEM))
    after = call(settings, lambda client: client.public_key_status())

    assert before["data"][0]["business_public_key_signature_status"] == "MISMATCH"
    assert after == {
        "data": [
            {
                "business_public_key": PUBLIC_KEY_PEM,
                "business_public_key_signature_status": "VALID",
            }
        ]
    }
    upload = fake_graph.requests[1]
    assert upload.method == "POST"
    assert upload.path == f"/v23.0/{fake_graph.phone_number_id}/whatsapp_business_encryption"
    assert upload.form == {"business_public_key": PUBLIC_KEY_PEM}
