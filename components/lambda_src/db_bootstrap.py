"""Lambda handler: create the application database users once, before their secrets rotate.

Deployed by :class:`commerce_db_components.postgres_cluster.PostgresCluster` into the database's subnets and
invoked once per change of its user list (``aws.lambda_.Invocation``). It reads the master secret
and each application user's secret from Secrets Manager, connects to the database over TLS as
the master and, idempotently:

* creates the group roles ``<prefix>_writer`` (DML on the ``public`` schema's tables, sequences
  and functions) and ``<prefix>_reader`` (SELECT), with default privileges for what the master
  (who runs the migrations) creates later;
* creates each application user that does not exist yet (``LOGIN``, the password from its secret,
  member of its group role). Existing users are left alone: after the first rotation their
  password lives in the secret and the alternating-users rotation owns it.

The Lambda Python runtime has no PostgreSQL driver, so this module speaks the protocol itself,
with the standard library only: TLS (``SSLRequest``), SCRAM-SHA-256 authentication and the simple
query protocol, which is all the bootstrap needs. Passwords never appear in logs or errors.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import socket
import ssl
import struct
from typing import Any

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PgError(Exception):
    """An error the server or the protocol reported (never carries a password)."""


def _msg(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("!I", len(payload) + 4) + payload


class _Conn:
    """A minimal PostgreSQL client: TLS, SCRAM-SHA-256 / cleartext-free auth, simple queries."""

    def __init__(self, sock: socket.socket | ssl.SSLSocket) -> None:
        self.sock = sock

    def _recv_exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise PgError("connection closed by the server")
            buf += chunk
        return buf

    def read(self) -> tuple[bytes, bytes]:
        kind = self._recv_exact(1)
        (length,) = struct.unpack("!I", self._recv_exact(4))
        return kind, self._recv_exact(length - 4)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    @staticmethod
    def _error_text(payload: bytes) -> str:
        fields = {p[:1]: p[1:].decode(errors="replace") for p in payload.split(b"\0") if p}
        return f"{fields.get(b'C', '')} {fields.get(b'M', 'server error')}".strip()

    def query(self, sql: str) -> list[list[str | None]]:
        """Run ``sql`` (simple protocol); rows of the last result as text."""
        self.send(_msg(b"Q", sql.encode() + b"\0"))
        rows: list[list[str | None]] = []
        error: str | None = None
        while True:
            kind, payload = self.read()
            if kind == b"T":
                rows = []
            elif kind == b"D":
                (count,) = struct.unpack("!H", payload[:2])
                pos = 2
                row: list[str | None] = []
                for _ in range(count):
                    (size,) = struct.unpack("!i", payload[pos : pos + 4])
                    pos += 4
                    if size < 0:
                        row.append(None)
                    else:
                        row.append(payload[pos : pos + size].decode())
                        pos += size
                rows.append(row)
            elif kind == b"E":
                error = self._error_text(payload)
            elif kind == b"Z":
                if error:
                    raise PgError(error)
                return rows

    def close(self) -> None:
        try:
            self.send(_msg(b"X", b""))
        finally:
            self.sock.close()


def _scram(conn: _Conn, user: str, password: str, mechanisms: list[str]) -> None:
    if "SCRAM-SHA-256" not in mechanisms:
        raise PgError(f"server offers {mechanisms}; only SCRAM-SHA-256 is supported")
    nonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = f"n=,r={nonce}"
    first = ("n,," + first_bare).encode()
    conn.send(_msg(b"p", b"SCRAM-SHA-256\0" + struct.pack("!i", len(first)) + first))
    kind, payload = conn.read()
    if kind == b"E":
        raise PgError(conn._error_text(payload))
    server_first = payload[4:].decode()
    attrs = dict(item.split("=", 1) for item in server_first.split(","))
    if not attrs["r"].startswith(nonce):
        raise PgError("SCRAM: server nonce does not extend ours")
    salt, iterations = base64.b64decode(attrs["s"]), int(attrs["i"])
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    without_proof = f"c=biws,r={attrs['r']}"
    auth_message = f"{first_bare},{server_first},{without_proof}".encode()
    signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
    proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, signature, strict=True))).decode()
    conn.send(_msg(b"p", f"{without_proof},p={proof}".encode()))
    kind, payload = conn.read()
    if kind == b"E":
        raise PgError(conn._error_text(payload))
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    expected = base64.b64encode(hmac.new(server_key, auth_message, hashlib.sha256).digest()).decode()
    final = dict(item.split("=", 1) for item in payload[4:].decode().split(","))
    if not hmac.compare_digest(final.get("v", ""), expected):
        raise PgError("SCRAM: server signature mismatch")


def connect(
    host: str, port: int, user: str, password: str, dbname: str, *, tls: bool = True, timeout: float = 10.0
) -> _Conn:
    """Open an authenticated connection; ``tls`` requires TLS (RDS's ``rds.force_ssl``)."""
    sock: socket.socket | ssl.SSLSocket = socket.create_connection((host, port), timeout=timeout)
    if tls:
        sock.sendall(struct.pack("!II", 8, 80877103))  # SSLRequest
        if sock.recv(1) != b"S":
            sock.close()
            raise PgError("server refused TLS")
        context = ssl.create_default_context()
        # RDS's CA bundle is not in the runtime's trust store; the connection stays encrypted.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        sock = context.wrap_socket(sock, server_hostname=host)
    conn = _Conn(sock)
    params = b"user\0" + user.encode() + b"\0database\0" + dbname.encode() + b"\0\0"
    conn.send(struct.pack("!II", len(params) + 8, 196608) + params)
    while True:
        kind, payload = conn.read()
        if kind == b"R":
            (code,) = struct.unpack("!I", payload[:4])
            if code == 0:
                continue
            if code == 10:
                mechanisms = [m.decode() for m in payload[4:].split(b"\0") if m]
                _scram(conn, user, password, mechanisms)
                continue
            if code == 12:  # SASL final already handled in _scram
                continue
            raise PgError(f"authentication method {code} is not supported (SCRAM-SHA-256 only)")
        if kind == b"E":
            raise PgError(conn._error_text(payload))
        if kind == b"Z":
            return conn


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _ident(name: str) -> str:
    if not _IDENT.match(name):
        raise PgError(f"invalid identifier {name!r}")
    return '"' + name + '"'


def bootstrap_sql(master_user: str, group_prefix: str) -> list[str]:
    """Statements creating the group roles and their privileges (idempotent)."""
    writer, reader, owner = (
        _ident(f"{group_prefix}_writer"),
        _ident(f"{group_prefix}_reader"),
        _ident(master_user),
    )
    out = []
    for role in (writer, reader):
        name = role.strip('"')
        out.append(
            f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {_literal(name)}) "
            f"THEN CREATE ROLE {role} NOLOGIN; END IF; END $$"
        )
    out += [
        f"GRANT USAGE ON SCHEMA public TO {writer}, {reader}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {writer}",
        f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {writer}",
        f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO {writer}",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {reader}",
    ]
    default = f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public GRANT"
    out += [
        f"{default} SELECT, INSERT, UPDATE, DELETE ON TABLES TO {writer}",
        f"{default} USAGE, SELECT, UPDATE ON SEQUENCES TO {writer}",
        f"{default} EXECUTE ON FUNCTIONS TO {writer}",
        f"{default} SELECT ON TABLES TO {reader}",
    ]
    return out


def ensure_users(
    conn: _Conn, *, master_user: str, group_prefix: str, users: list[dict[str, str]]
) -> dict[str, str]:
    """Create the group roles and missing users. ``users``: ``{username, password, role}`` with
    role ``writer`` or ``reader``. Returns username -> ``created`` or ``exists``."""
    for statement in bootstrap_sql(master_user, group_prefix):
        conn.query(statement)
    result = {}
    for user in users:
        if user["role"] not in ("writer", "reader"):
            raise PgError(f"user {user['username']!r}: role must be writer or reader")
        name = _ident(user["username"])
        exists = conn.query(f"SELECT 1 FROM pg_roles WHERE rolname = {_literal(user['username'])}")
        if exists:
            result[user["username"]] = "exists"
            continue
        group = _ident(f"{group_prefix}_{user['role']}")
        conn.query(f"CREATE ROLE {name} WITH LOGIN PASSWORD {_literal(user['password'])} IN ROLE {group}")
        result[user["username"]] = "created"
    return result


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """``event``: ``{"master_secret_arn", "group_prefix", "users": [{"secret_arn", "role"}]}``."""
    import boto3  # in the Lambda runtime

    client = boto3.client("secretsmanager")

    def secret(arn: str) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(client.get_secret_value(SecretId=arn)["SecretString"])
        return value

    master = secret(event["master_secret_arn"])
    users = [
        {"username": s["username"], "password": s["password"], "role": u["role"]}
        for u in event["users"]
        for s in [secret(u["secret_arn"])]
    ]
    conn = connect(
        master["host"], int(master["port"]), master["username"], master["password"], master["dbname"]
    )
    try:
        done = ensure_users(
            conn, master_user=master["username"], group_prefix=event["group_prefix"], users=users
        )
    finally:
        conn.close()
    return {"users": done}
