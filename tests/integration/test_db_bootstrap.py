"""The database-user bootstrap Lambda's PostgreSQL client against a real server (issue 9, finding 7).

The Lambda runtime has no PostgreSQL driver, so components/lambda_src/db_bootstrap.py speaks the
protocol itself (SCRAM-SHA-256, simple queries). Here it creates least-privilege application
users on the local tier's primary, and those users can log in and do exactly what their group
role allows.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest
from commerce_db_components.lambda_src import db_bootstrap as boot


@pytest.fixture
def admin(tier) -> Iterator[tuple[object, str]]:  # type: ignore[no-untyped-def]
    if not hasattr(tier, "primary_admin_dsn"):
        pytest.skip("needs the local tier's superuser DSN")
    url = urlparse(tier.primary_admin_dsn)
    conn = _connect(url.hostname or "", url.port or 5432, url.username or "", url.password or "")
    prefix = f"t{uuid.uuid4().hex[:8]}"
    try:
        yield conn, prefix
    finally:
        for role in (f"{prefix}_w", f"{prefix}_r", f"{prefix}_writer", f"{prefix}_reader"):
            with contextlib.suppress(boot.PgError):
                conn.query(f'DROP OWNED BY "{role}"')
                conn.query(f'DROP ROLE IF EXISTS "{role}"')
        conn.close()  # type: ignore[attr-defined]


def _connect(host: str, port: int, user: str, password: str):  # type: ignore[no-untyped-def]
    """TLS when the server offers it (the local tier does by default), as the Lambda requires."""
    try:
        return boot.connect(host, port, user, password, "postgres", tls=True)
    except boot.PgError as exc:
        if "refused TLS" not in str(exc):
            raise
        return boot.connect(host, port, user, password, "postgres", tls=False)


def _login(tier, user: str, password: str):  # type: ignore[no-untyped-def]
    url = urlparse(tier.primary_admin_dsn)
    return _connect(url.hostname or "", url.port or 5432, user, password)


def test_creates_least_privilege_users_once(tier, admin) -> None:  # type: ignore[no-untyped-def]
    conn, prefix = admin
    master = urlparse(tier.primary_admin_dsn).username or ""
    users = [
        {"username": f"{prefix}_w", "password": "Pw-1'quote", "role": "writer"},
        {"username": f"{prefix}_r", "password": "Pw-2", "role": "reader"},
    ]
    assert boot.ensure_users(conn, master_user=master, group_prefix=prefix, users=users) == {
        f"{prefix}_w": "created",
        f"{prefix}_r": "created",
    }
    conn.query(f"CREATE TABLE {prefix}_t (id int)")  # created by the master after the bootstrap
    writer = _login(tier, f"{prefix}_w", "Pw-1'quote")
    writer.query(f"INSERT INTO {prefix}_t VALUES (1)")
    with pytest.raises(boot.PgError, match="42501"):  # no DDL for applications
        writer.query(f"CREATE TABLE {prefix}_x (id int)")
    writer.close()
    reader = _login(tier, f"{prefix}_r", "Pw-2")
    assert reader.query(f"SELECT count(*) FROM {prefix}_t") == [["1"]]
    with pytest.raises(boot.PgError, match="42501"):
        reader.query(f"INSERT INTO {prefix}_t VALUES (2)")
    reader.close()
    # A second run (e.g. after rotation changed the password) leaves existing users alone.
    again = boot.ensure_users(
        conn, master_user=master, group_prefix=prefix, users=[{**users[0], "password": "changed"}]
    )
    assert again == {f"{prefix}_w": "exists"}
    _login(tier, f"{prefix}_w", "Pw-1'quote").close()
    conn.query(f"DROP TABLE {prefix}_t")


def test_wrong_password_and_refused_tls_are_errors_without_the_password(tier, admin) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(boot.PgError) as info:
        _login(tier, "postgres", "not-the-password-xyz")
    assert "28P01" in str(info.value) and "not-the-password-xyz" not in str(info.value)
    # TLS is used when offered and never silently dropped: a server without TLS is refused.
    url = urlparse(tier.primary_admin_dsn)
    try:
        conn = boot.connect(url.hostname or "", url.port or 5432, "postgres", "x", "postgres", tls=True)
    except boot.PgError as exc:
        assert "refused TLS" in str(exc) or "28P01" in str(exc)
    else:  # pragma: no cover - a wrong password never connects
        conn.close()
        raise AssertionError("connected with a wrong password")
