"""``DataAccess.connect`` errors name the server they could not reach, never the secret (issue 12:
"gave up after 6 attempts" named no host or port)."""

from __future__ import annotations

import socket
import traceback

import pytest

from dataaccess import DataAccess, Settings, Unavailable
from dataaccess.settings import endpoint

SECRET = "s3cr3t-Pa55word"


def _closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_gave_up_names_host_and_port_and_not_the_password() -> None:
    port = _closed_port()
    settings = Settings(
        writer_dsn=f"postgresql://app:{SECRET}@127.0.0.1:{port}/shop",
        retry_attempts=2,
        retry_base_delay=0.001,
        connect_timeout=2.0,
    )
    with pytest.raises(Unavailable) as info:
        await DataAccess.connect(settings)
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message and "gave up after 2 attempts" in message, message
    shown = "".join(traceback.format_exception(info.value))  # the whole chain, as a log would show it
    assert SECRET not in shown and SECRET not in repr(info.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"postgresql://app:{SECRET}@db.example.com:6432/shop", "db.example.com:6432"),
        ("postgresql://app@db.example.com/shop", "db.example.com:5432"),
        (f"postgresql://app:{SECRET}@h1:5432,h2:5433/shop", "h1:5432,h2:5433"),
        ("postgresql://u@[::1]:6000/x", "[::1]:6000"),
        ("postgresql:///shop?host=/var/run/postgresql&port=5433", "/var/run/postgresql:5433"),
        ("postgresql:///shop", "?"),
        (None, "?"),
    ],
)
def test_endpoint_is_host_and_port_only(url: str | None, expected: str) -> None:
    assert endpoint(url) == expected
    assert SECRET not in endpoint(url) and "app" not in endpoint(url)
