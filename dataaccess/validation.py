"""Input checks shared by the repositories. Each raises :class:`InvalidInput` naming the argument,
before anything touches the database (so bad input never changes anything)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from .errors import InvalidInput

__all__ = ["check_email", "check_id", "check_int_range", "check_lines", "check_text"]

MAX_BIGINT = 2**63 - 1
MAX_INT = 2**31 - 1
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


def check_id(field: str, value: object) -> int:
    """A positive 64-bit id (bool rejected)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(field, f"must be an integer id, got {type(value).__name__}")
    if not 1 <= value <= MAX_BIGINT:
        raise InvalidInput(field, f"must be between 1 and {MAX_BIGINT}, got {value}")
    return value


def check_int_range(field: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(field, f"must be an integer, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise InvalidInput(field, f"must be between {lo} and {hi}, got {value}")
    return value


def check_text(field: str, value: object, *, max_len: int, min_len: int = 1, strip: bool = True) -> str:
    if not isinstance(value, str):
        raise InvalidInput(field, f"must be a string, got {type(value).__name__}")
    text = value.strip() if strip else value
    if "\x00" in text:
        raise InvalidInput(field, "must not contain NUL characters")
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError as exc:  # a lone surrogate (e.g. from JSON "\ud83d")
            raise InvalidInput(
                field, f"is not valid UTF-8 text (lone surrogate at position {exc.start})"
            ) from None
    if len(text) < min_len:
        raise InvalidInput(field, f"must be at least {min_len} character(s) (after trimming)")
    if len(text) > max_len:
        raise InvalidInput(field, f"is {len(text)} characters long; at most {max_len} allowed")
    return text


def check_email(field: str, value: object) -> str:
    email = check_text(field, value, max_len=254, min_len=3)
    if not _EMAIL.match(email):
        raise InvalidInput(field, "is not a valid e-mail address")
    return email


def check_lines(field: str, lines: object, *, max_lines: int, max_qty: int) -> list[tuple[int, int]]:
    """Order lines as ``[(product_id, quantity), ...]``: non-empty, no duplicate products,
    quantities in ``1..max_qty``."""
    if isinstance(lines, str | bytes) or not isinstance(lines, Iterable):
        raise InvalidInput(field, "must be a list of (product_id, quantity) pairs")
    out: list[tuple[int, int]] = []
    seen: set[int] = set()
    for i, line in enumerate(lines):
        if isinstance(line, str | bytes) or not isinstance(line, tuple | list) or len(line) != 2:
            raise InvalidInput(f"{field}[{i}]", "must be a (product_id, quantity) pair")
        pid = check_id(f"{field}[{i}].product_id", line[0])
        qty = check_int_range(f"{field}[{i}].quantity", line[1], 1, max_qty)
        if pid in seen:
            raise InvalidInput(f"{field}[{i}]", f"product {pid} appears more than once; merge the lines")
        seen.add(pid)
        out.append((pid, qty))
        if len(out) > max_lines:
            raise InvalidInput(field, f"at most {max_lines} lines allowed")
    if not out:
        raise InvalidInput(field, "must contain at least one line")
    return out
