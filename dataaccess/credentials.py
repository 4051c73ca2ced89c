"""Database credential providers plugged into asyncpg's ``password=`` callable.

* :class:`SecretsManagerCredentials` reads a JSON secret (``username``/``password``), caches it for
  ``refresh_interval`` seconds and is force-refreshed when PostgreSQL answers ``InvalidPasswordError``
  (single-user rotation window); the failed connect is then retried once.
* :class:`IamAuthTokenProvider` generates RDS IAM auth tokens (``generate_db_auth_token``), valid
  15 min, cached ``token_ttl`` (default 600 s) so new connections do not sign a token each. IAM auth
  requires TLS; :class:`~dataaccess.settings.Settings` refuses ``iam_auth`` without it.

boto3 is blocking: every AWS call runs in ``asyncio.to_thread``. Secrets never appear in
``repr`` or in exception messages.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from .errors import SettingsError, Unavailable

__all__ = [
    "CredentialProvider",
    "IamAuthTokenProvider",
    "SecretsManagerCredentials",
    "StaticPassword",
    "decode_secret",
]


@runtime_checkable
class CredentialProvider(Protocol):
    """What the pools need: a password per new connection and a way to force-refresh it."""

    async def password(self) -> str:
        """Return the password (or token) for a new connection."""
        ...

    async def refresh(self) -> None:
        """Drop cached material; the next :meth:`password` fetches fresh credentials."""
        ...

    def username(self) -> str | None:
        """The user to connect as if the provider knows it (rotating alternating users), else None."""
        ...


class StaticPassword:
    """A fixed password (from settings); ``refresh`` is a no-op."""

    def __init__(self, password: str) -> None:
        self._password = password

    def __repr__(self) -> str:
        return "StaticPassword(***)"

    async def password(self) -> str:
        return self._password

    async def refresh(self) -> None:
        return None

    def username(self) -> str | None:
        return None


class SecretsManagerCredentials:
    """Cached Secrets Manager secret (``AWSCURRENT``) holding ``username`` and ``password``.

    :param secret_id: secret name or ARN.
    :param region: AWS region (default: boto3's chain).
    :param client: a boto3 ``secretsmanager`` client (default: created lazily).
    :param refresh_interval: seconds before a cached secret is re-read. Default 3600 (the AWS
        caching library's default); rotation is caught earlier through ``refresh()``.
    :param clock: monotonic seconds for the cache's age. Default ``time.monotonic``.
    """

    def __init__(
        self,
        secret_id: str,
        *,
        region: str | None = None,
        client: Any = None,
        refresh_interval: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.secret_id = secret_id
        self._clock = clock
        self._region = region
        self._client = client
        self._refresh_interval = refresh_interval
        self._data: dict[str, Any] | None = None
        self._fetched_at = 0.0
        self._lock = threading.Lock()
        self.fetch_count = 0
        """How many times the secret was read from AWS (observability/tests)."""

    def __repr__(self) -> str:
        return f"SecretsManagerCredentials(secret_id={self.secret_id!r})"

    def _get_client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("secretsmanager", region_name=self._region)
        return self._client

    def fetch_sync(self, *, force: bool = False) -> dict[str, Any]:
        """Return the decoded secret, reading AWS when the cache is empty, expired or ``force``."""
        with self._lock:
            fresh = self._clock() - self._fetched_at < self._refresh_interval
            if self._data is not None and fresh and not force:
                return self._data
            try:
                resp = self._get_client().get_secret_value(SecretId=self.secret_id)
            except Exception as exc:  # botocore errors: keep the message free of secret material
                raise Unavailable(f"cannot read secret {self.secret_id!r}: {type(exc).__name__}") from None
            self._data = decode_secret(resp["SecretString"])
            self._fetched_at = self._clock()
            self.fetch_count += 1
            return self._data

    async def password(self) -> str:
        data = self._data
        if data is None or self._clock() - self._fetched_at >= self._refresh_interval:
            data = await asyncio.to_thread(self.fetch_sync)
        return str(data.get("password", ""))

    async def refresh(self) -> None:
        await asyncio.to_thread(self.fetch_sync, force=True)

    def username(self) -> str | None:
        return None if self._data is None else self._data.get("username")


class IamAuthTokenProvider:
    """RDS IAM authentication tokens for ``user`` at ``host:port``.

    Tokens are valid for 15 minutes and only checked at authentication, so one token serves every
    connection opened within ``token_ttl`` seconds (default 600, must be < 900).

    :param client: a boto3 ``rds`` client (default: created lazily for ``region``).
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        user: str,
        region: str | None = None,
        client: Any = None,
        token_ttl: float = 600.0,
    ) -> None:
        if not 0 < token_ttl < 900:
            raise ValueError("token_ttl must be between 0 and 900 seconds (tokens live 15 min)")
        self.host, self.port, self.user, self._region = host, port, user, region
        self._client = client
        self._token_ttl = token_ttl
        self._token: str | None = None
        self._issued_at = 0.0
        self._lock = threading.Lock()
        self.generated_count = 0
        """How many tokens were generated (observability/tests)."""

    def for_endpoint(self, host: str, port: int) -> IamAuthTokenProvider:
        """A provider for another endpoint (tokens are bound to host and port), e.g. a replica."""
        if (host, port) == (self.host, self.port):
            return self
        return IamAuthTokenProvider(
            host=host,
            port=port,
            user=self.user,
            region=self._region,
            client=self._client,
            token_ttl=self._token_ttl,
        )

    def __repr__(self) -> str:
        return f"IamAuthTokenProvider(host={self.host!r}, port={self.port}, user={self.user!r})"

    def _get_client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("rds", region_name=self._region)
        return self._client

    def token_sync(self, *, force: bool = False) -> str:
        """Return a cached token, generating a new one when older than ``token_ttl`` or ``force``."""
        with self._lock:
            if self._token is not None and not force and time.monotonic() - self._issued_at < self._token_ttl:
                return self._token
            kwargs: dict[str, Any] = {"DBHostname": self.host, "Port": self.port, "DBUsername": self.user}
            if self._region:
                kwargs["Region"] = self._region
            self._token = self._get_client().generate_db_auth_token(**kwargs)
            self._issued_at = time.monotonic()
            self.generated_count += 1
            return self._token

    async def password(self) -> str:
        if self._token is not None and time.monotonic() - self._issued_at < self._token_ttl:
            return self._token
        return await asyncio.to_thread(self.token_sync)

    async def refresh(self) -> None:
        with self._lock:
            self._token = None

    def username(self) -> str | None:
        return self.user


def decode_secret(text: str) -> dict[str, Any]:
    """Decode a secret string (a JSON object); the error never echoes its content.

    :raises SettingsError: (field ``secret``) not JSON, or not an object."""
    try:
        data = json.loads(text)
    except ValueError:
        raise SettingsError("secret", "SecretString is not valid JSON") from None
    if not isinstance(data, dict):
        raise SettingsError("secret", "SecretString must be a JSON object")
    return data
