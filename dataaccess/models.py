"""Frozen dataclasses returned by the repositories (never asyncpg Records)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

__all__ = ["Order", "OrderLine", "Product", "User"]


@dataclass(frozen=True, slots=True)
class User:
    id: int
    email: str
    name: str

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> User:
        d = json.loads(raw)
        return cls(id=int(d["id"]), email=str(d["email"]), name=str(d["name"]))


@dataclass(frozen=True, slots=True)
class Product:
    id: int
    sku: str
    name: str
    price_cents: int
    stock: int
    version: int = 1
    """Incremented by every write (price, stock, name)."""

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Product:
        d = json.loads(raw)
        return cls(
            id=int(d["id"]),
            sku=str(d["sku"]),
            name=str(d["name"]),
            price_cents=int(d["price_cents"]),
            stock=int(d["stock"]),
            version=int(d["version"]),
        )


@dataclass(frozen=True, slots=True)
class OrderLine:
    product_id: int
    quantity: int
    unit_price_cents: int

    @property
    def qty(self) -> int:
        """Alias of ``quantity``."""
        return self.quantity

    @property
    def total_cents(self) -> int:
        return self.quantity * self.unit_price_cents


@dataclass(frozen=True, slots=True)
class Order:
    id: int
    user_id: int
    lines: tuple[OrderLine, ...]
    status: str
    total_cents: int
    created_at: datetime
    idempotency_key: str


def product_from_row(row: Any) -> Product:
    return Product(
        id=row["id"],
        sku=row["sku"],
        name=row["name"],
        price_cents=row["price_cents"],
        stock=row["stock"],
        version=row["version"],
    )


def user_from_row(row: Any) -> User:
    return User(id=row["id"], email=row["email"], name=row["name"])
