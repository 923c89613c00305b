"""Bad SDK arguments fail where they are written, with a message naming what is wrong;
a closed SDK refuses to be used.  (Nothing here may reach the network: the server's
request log proves no request was sent.)"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import pytest

from aiostreams import SDK, RetryConfig
from aiostreams.models import shared
from aiostreams.server import RequestRecord

SECRET = "Token s3cr3t-value"


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"security": SECRET}, TypeError, r"security must be shared\.Security.*got str"),
        ({"security": 42}, TypeError, r"security must be .*got int"),
        ({"security": {"api_key": SECRET}}, ValueError, r"unknown key\(s\) \['api_key'\]"),
        ({"security": {"api_key_auth": 5}}, TypeError, r"does not fit Security"),
        ({"retry_config": "yes"}, TypeError, r"retry_config must be a RetryConfig.*got str"),
        ({"timeout_ms": 0}, ValueError, r"timeout_ms must be a positive number.*got 0"),
        ({"timeout_ms": -5}, ValueError, r"timeout_ms must be a positive number.*got -5"),
        ({"timeout_ms": "100"}, TypeError, r"timeout_ms must be .*got str"),
        ({"server_url": "localhost:35456"}, ValueError, r"^server_url=.*no http:// or https://"),
    ],
)
def test_bad_sdk_arguments_fail_at_construction(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message) as caught:
        SDK(**kwargs)
    assert "s3cr3t" not in str(caught.value)


def test_good_security_forms_are_accepted() -> None:
    def current() -> shared.Security:
        return shared.Security(api_key_auth=SECRET)

    for security in (shared.Security(api_key_auth=SECRET), {"api_key_auth": SECRET}, current):
        SDK(security=security)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"retries": "yes"}, TypeError, r"retries must be a RetryConfig.*got str"),
        ({"timeout_ms": 0}, ValueError, r"timeout_ms must be a positive number.*got 0"),
        ({"timeout_ms": -5}, ValueError, r"timeout_ms must be a positive number.*got -5"),
        ({"server_url": "ftp://x/"}, ValueError, r"^server_url=.*scheme 'ftp'"),
    ],
)
async def test_bad_call_arguments_fail_before_sending(
    eventstreams_server: str,
    eventstreams_requests: deque[RequestRecord],
    kwargs: dict[str, Any],
    error: type[Exception],
    message: str,
) -> None:
    async with SDK(server_url=eventstreams_server) as s:
        with pytest.raises(error, match=message):
            await s.eventstreams.json(**kwargs)
        with pytest.raises(error, match=message):
            await s.eventstreams.chat(request={"prompt": "hi"}, **kwargs)
    assert not eventstreams_requests


async def test_a_closed_sdk_refuses_every_use(
    eventstreams_server: str, eventstreams_requests: deque[RequestRecord]
) -> None:
    s = SDK(server_url=eventstreams_server, retry_config=RetryConfig(strategy="none"))
    async with s:
        res = await s.eventstreams.json()
        async with res:
            assert [event async for event in res]
    assert s.closed
    calls: list[Callable[[], Any]] = [
        lambda: s.session,
        lambda: s.eventstreams.json.connect(),
    ]
    for call in calls:
        with pytest.raises(RuntimeError, match="SDK is closed"):
            call()
    with pytest.raises(RuntimeError, match="SDK is closed"):
        await s.eventstreams.text()
    with pytest.raises(RuntimeError, match="SDK is closed"):
        await s.__aenter__()
    await s.aclose()  # still idempotent
    assert len(eventstreams_requests) == 1  # only the call made while open
