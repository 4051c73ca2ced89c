"""Users: create, get (cache-aside + read-your-writes), get_by_email."""

from __future__ import annotations

import hashlib

import asyncpg

from ..errors import Conflict
from ..models import User, user_from_row
from ..pools import Source
from ..runtime import PostCommit, Runtime
from ..validation import check_email, check_id, check_text

__all__ = ["Users"]

_COLS = "id, email, name"


def _email_entity(email: str) -> str:
    return "user_email:" + hashlib.sha256(email.lower().encode()).hexdigest()[:24]


class Users:
    """``da.users``."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt

    async def create(self, email: str, name: str) -> User:
        """Insert a user. E-mails are unique case-insensitively.

        :raises InvalidInput: malformed e-mail, empty or over-long name (nothing written).
        :raises Conflict: the e-mail is taken.
        :raises OutcomeUnknown: the connection dropped mid-write (not blindly retried).
        """
        email = check_email("email", email)
        name = check_text("name", name, max_len=200)

        async def tx(conn: asyncpg.Connection) -> User:
            try:
                row = await conn.fetchrow(
                    f"INSERT INTO users (email, name) VALUES ($1, $2) RETURNING {_COLS}", email, name
                )
            except asyncpg.UniqueViolationError:
                raise Conflict(
                    f"a user with e-mail {email!r} already exists", constraint="users_email_lower_key"
                ) from None
            return user_from_row(row)

        def change(user: User) -> PostCommit:  # also run for a caller cancelled after the commit
            return PostCommit((f"user:{user.id}", _email_entity(email)), (f"user:{user.id}",))

        user, _ = await self._rt.write(tx, context="users.create", idempotent=False, after_commit=change)
        return user

    async def get(self, user_id: int) -> User | None:
        """The user, or None. Cache-aside (``user_cache_ttl``); reads after a write see it."""
        user_id = check_id("user_id", user_id)

        async def load() -> User | None:
            async def q(conn: asyncpg.Connection, _src: Source) -> User | None:
                row = await conn.fetchrow(f"SELECT {_COLS} FROM users WHERE id = $1", user_id)
                return user_from_row(row) if row else None

            return await self._rt.read([f"user:{user_id}"], q, context="users.get")

        cache = self._rt.cache
        if cache is None:
            return await load()
        return await cache.get_or_load(
            f"user:{user_id}",
            load,
            ttl=self._rt.settings.user_cache_ttl,
            encode=User.to_bytes,
            decode=User.from_bytes,
        )

    async def get_by_email(self, email: str) -> User | None:
        """The user with this e-mail (case-insensitive), or None. Not cached."""
        email = check_email("email", email)

        async def q(conn: asyncpg.Connection, _src: Source) -> User | None:
            row = await conn.fetchrow(f"SELECT {_COLS} FROM users WHERE lower(email) = lower($1)", email)
            return user_from_row(row) if row else None

        return await self._rt.read([_email_entity(email)], q, context="users.get_by_email")
