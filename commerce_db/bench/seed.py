"""Fast catalogue seeding (COPY) for the demo and the benchmarks, on the dataaccess schema."""

from __future__ import annotations

import random
from dataclasses import dataclass

import asyncpg

_BRANDS = (
    "Acme",
    "Northwind",
    "Contoso",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Hooli",
    "Vandelay",
    "Soylent",
    "Tyrell",
    "Cyberdyne",
    "Wonka",
    "Aperture",
    "Oscorp",
)
_ADJECTIVES = (
    "wireless",
    "ergonomic",
    "portable",
    "waterproof",
    "compact",
    "smart",
    "premium",
    "organic",
    "vintage",
    "ultralight",
    "rechargeable",
    "stainless",
    "bluetooth",
    "mechanical",
    "noise-cancelling",
    "foldable",
    "insulated",
    "heavy-duty",
    "solar",
    "modular",
)
_NOUNS = (
    "headphones",
    "keyboard",
    "mouse",
    "backpack",
    "kettle",
    "blender",
    "speaker",
    "lamp",
    "jacket",
    "sneakers",
    "watch",
    "camera",
    "charger",
    "monitor",
    "chair",
    "desk",
    "bottle",
    "tent",
    "drone",
    "router",
    "tablet",
    "earbuds",
    "thermos",
    "grinder",
    "projector",
)


@dataclass(frozen=True)
class Catalogue:
    """What was seeded: ids in insertion order and search phrases that match the names."""

    product_ids: list[int]
    user_ids: list[int]
    search_terms: list[str]


def product_name(rng: random.Random, i: int) -> str:
    model = f"{rng.choice('XSMRT')}{i % 1000}"
    return f"{rng.choice(_BRANDS)} {rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)} {model}"


def search_terms() -> list[str]:
    """Phrases users type: "wireless headphones", "camera", "ergonomic chair"..."""
    terms = [n for n in _NOUNS] + [f"{a} {n}" for a in _ADJECTIVES[:8] for n in _NOUNS[:10]]
    return terms


async def seed_catalogue(
    dsn: str, *, products: int, users: int, stock: int = 1000, seed: int = 7, sku_prefix: str = "SKU"
) -> Catalogue:
    """COPY products (random names, prices, ``stock`` each) and users into the migrated schema.

    Connects directly (COPY through PgBouncer in transaction mode works, but a direct
    connection is what a bulk loader would use). Runs ANALYZE so plans are realistic.
    """
    rng = random.Random(seed)
    conn = await asyncpg.connect(dsn)
    try:
        start_p = int(await conn.fetchval("SELECT COALESCE(max(id), 0) FROM products"))
        start_u = int(await conn.fetchval("SELECT COALESCE(max(id), 0) FROM users"))
        await conn.copy_records_to_table(
            "products",
            columns=["sku", "name", "price_cents", "stock"],
            records=(
                (f"{sku_prefix}-{start_p + i:07d}", product_name(rng, i), rng.randint(199, 99_999), stock)
                for i in range(products)
            ),
        )
        await conn.copy_records_to_table(
            "users",
            columns=["email", "name"],
            records=((f"user{start_u + i}@example.com", f"User {start_u + i}") for i in range(users)),
        )
        await conn.execute("ANALYZE products; ANALYZE users")
        pids = [r[0] for r in await conn.fetch("SELECT id FROM products WHERE id > $1 ORDER BY id", start_p)]
        uids = [r[0] for r in await conn.fetch("SELECT id FROM users WHERE id > $1 ORDER BY id", start_u)]
    finally:
        await conn.close()
    return Catalogue(product_ids=pids, user_ids=uids, search_terms=search_terms())
