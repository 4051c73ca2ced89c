"""Errors raised by the local tier."""

from __future__ import annotations


class LocalTierError(RuntimeError):
    """A local server could not be started, stopped or queried; the message says which and why."""


class MissingBinaryError(LocalTierError):
    """A server binary (``initdb``, ``pgbouncer``, ``redis-server``...) was not found.

    Attributes:
        binary: the name of the missing executable.
    """

    def __init__(self, binary: str, searched: str, hint: str) -> None:
        self.binary = binary
        super().__init__(f"local tier needs the {binary!r} binary; searched {searched}. {hint}")
