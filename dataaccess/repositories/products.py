"""Products: create, get (cache-aside + read-your-writes), update_price, restock, search.

Stock freshness: every write that changes a product row (price, restock, **order reservations**)
records a read-your-writes marker and invalidates ``product:{id}`` after commit. A cached product
is therefore never older than the last committed reservation once ``orders.place`` has returned,
and a cache miss after a write reads from the writer or a replica that has replayed it.

Search: ranked ids are cached briefly (``search_cache_ttl``) under a hash of the normalised query
and the catalogue **generation**; the products themselves are then fetched through
:meth:`Products.get_many` (the cache entries of ``get``, misses batched into one query), so
prices and stock in search results are as fresh as ``get``. Catalogue
writes (create, rename, update_price, restock — not order reservations, which change only stock)
record a table-level marker ``table:products`` and bump the generation after commit, so the next
search neither reuses results cached before the write nor reads a replica that has not replayed
it. Marker and generation come from one Redis ``MGET``; when Redis is unusable, search reads the
writer and caches nothing.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata

import asyncpg

from ..errors import Conflict, InvalidInput, NotFound
from ..inventory import RedisStockGate
from ..models import Product, product_from_row
from ..pools import Source
from ..runtime import PostCommit, Runtime
from ..validation import MAX_BIGINT, MAX_INT, check_id, check_int_range, check_text
from .search import search_ids

__all__ = ["Products"]

_COLS = "id, sku, name, price_cents, stock, version"
_TABLE = "products"
_TABLE_ENTITY = f"table:{_TABLE}"


def _ids_encode(ids: list[int]) -> bytes:
    return json.dumps(ids).encode()


def _ids_decode(raw: bytes) -> list[int]:
    ids = json.loads(raw)
    if not isinstance(ids, list):
        raise ValueError("not a list")
    return [int(i) for i in ids]


class Products:
    """``da.products``."""

    def __init__(self, rt: Runtime, gate: RedisStockGate | None = None) -> None:
        self._rt = rt
        self._gate = gate

    async def create(self, sku: str, name: str, price_cents: int, stock: int = 0) -> Product:
        """Insert a product.

        :raises InvalidInput: empty/over-long sku (64) or name (300), negative price or stock.
        :raises Conflict: the sku exists.
        """
        sku = check_text("sku", sku, max_len=64)
        name = check_text("name", name, max_len=300)
        price_cents = check_int_range("price_cents", price_cents, 0, MAX_BIGINT)
        stock = check_int_range("stock", stock, 0, MAX_INT)

        async def tx(conn: asyncpg.Connection) -> Product:
            try:
                row = await conn.fetchrow(
                    f"INSERT INTO products (sku, name, price_cents, stock) VALUES ($1, $2, $3, $4) "
                    f"RETURNING {_COLS}",
                    sku,
                    name,
                    price_cents,
                    stock,
                )
            except asyncpg.UniqueViolationError:
                raise Conflict(
                    f"a product with sku {sku!r} already exists", constraint="products_sku_key"
                ) from None
            return product_from_row(row)

        product, _ = await self._rt.write(
            tx, context="products.create", idempotent=False, after_commit=_catalogue_change
        )
        if self._gate is not None:
            await self._gate.set_available(product.id, product.stock)
        return product

    async def get(self, product_id: int) -> Product | None:
        """The product (with current stock), or None. Cache-aside (``product_cache_ttl``)."""
        product_id = check_id("product_id", product_id)

        async def load() -> Product | None:
            async def q(conn: asyncpg.Connection, _src: Source) -> Product | None:
                row = await conn.fetchrow(f"SELECT {_COLS} FROM products WHERE id = $1", product_id)
                return product_from_row(row) if row else None

            return await self._rt.read([f"product:{product_id}"], q, context="products.get")

        cache = self._rt.cache
        if cache is None:
            return await load()
        return await cache.get_or_load(
            f"product:{product_id}",
            load,
            ttl=self._rt.settings.product_cache_ttl,
            encode=Product.to_bytes,
            decode=Product.from_bytes,
        )

    async def get_many(self, product_ids: list[int]) -> list[Product]:
        """Products for ``product_ids`` in the given order (missing ids are skipped).

        As fresh as :meth:`get` for every id (same cache entries, leases and read-your-writes
        routing), but batched: one Redis ``MGET`` for the cached ones and, for all the others,
        one lease script, **one** ``id = ANY($1)`` query (on a source fresh enough for every one
        of them) and one fill script."""
        ids = [check_id(f"product_ids[{i}]", pid) for i, pid in enumerate(product_ids)]
        if not ids:
            return []
        cache = self._rt.cache
        if cache is None:
            by_id = await self._load_many(ids)
            return [by_id[pid] for pid in ids if pid in by_id]
        # One MGET for the hits; all misses: one lease script, ONE query, one fill script.
        keys = {pid: f"product:{pid}" for pid in ids}
        pid_of = {k: pid for pid, k in keys.items()}

        async def load(missing: list[str]) -> dict[str, Product]:
            by_id = await self._load_many([pid_of[k] for k in missing])
            return {keys[pid]: p for pid, p in by_id.items()}

        got = await cache.get_or_load_many(
            list(keys.values()),
            load,
            ttl=self._rt.settings.product_cache_ttl,
            encode=Product.to_bytes,
            decode=Product.from_bytes,
        )
        found = [got.get(keys[pid]) for pid in ids]
        return [p for p in found if p is not None]

    async def _load_many(self, ids: list[int]) -> dict[int, Product]:
        """One query for ``ids`` (no cache), routed like ``get`` for every one of them."""

        async def q(conn: asyncpg.Connection, _src: Source) -> dict[int, Product]:
            rows = await conn.fetch(f"SELECT {_COLS} FROM products WHERE id = ANY($1::bigint[])", ids)
            return {r["id"]: product_from_row(r) for r in rows}

        return await self._rt.read([f"product:{pid}" for pid in set(ids)], q, context="products.get_many")

    async def update_price(self, product_id: int, price_cents: int) -> Product:
        """Set the price (absolute, so retrying is safe). Returns the updated product.

        :raises InvalidInput: negative or non-integer price. :raises NotFound: no such product.
        """
        product_id = check_id("product_id", product_id)
        price_cents = check_int_range("price_cents", price_cents, 0, MAX_BIGINT)
        return await self._set_field(product_id, "price_cents", price_cents, context="products.update_price")

    async def rename(self, product_id: int, name: str) -> Product:
        """Set the name (absolute, so retrying is safe); search sees it at once.

        :raises InvalidInput: empty or over-long (300) name. :raises NotFound: no such product.
        """
        product_id = check_id("product_id", product_id)
        name = check_text("name", name, max_len=300)
        return await self._set_field(product_id, "name", name, context="products.rename")

    async def _set_field(self, product_id: int, column: str, value: object, *, context: str) -> Product:
        """Set one catalogue column to an absolute value (so retrying is safe) and bump the version.
        ``column`` is one of this module's literals, never caller input."""

        async def tx(conn: asyncpg.Connection) -> Product | None:
            row = await conn.fetchrow(
                f"UPDATE products SET {column} = $2, version = version + 1, updated_at = now() "
                f"WHERE id = $1 RETURNING {_COLS}",
                product_id,
                value,
            )
            return product_from_row(row) if row else None

        product, _ = await self._rt.write(
            tx, context=context, idempotent=True, after_commit=_catalogue_change
        )
        if product is None:
            raise NotFound("product", product_id)
        return product

    async def restock(self, product_id: int, quantity: int) -> Product:
        """Add ``quantity`` (> 0) units to stock. Not idempotent: not retried once sent.

        :raises InvalidInput: quantity < 1. :raises NotFound: no such product.
        """
        product_id = check_id("product_id", product_id)
        quantity = check_int_range("quantity", quantity, 1, MAX_INT)

        async def tx(conn: asyncpg.Connection) -> Product | None:
            try:
                row = await conn.fetchrow(
                    f"UPDATE products SET stock = stock + $2, version = version + 1, updated_at = now() "
                    f"WHERE id = $1 RETURNING {_COLS}",
                    product_id,
                    quantity,
                )
            except asyncpg.NumericValueOutOfRangeError:
                raise InvalidInput("quantity", "stock would exceed the integer range") from None
            return product_from_row(row) if row else None

        product, _ = await self._rt.write(
            tx, context="products.restock", idempotent=False, after_commit=_catalogue_change
        )
        if product is None:
            raise NotFound("product", product_id)
        if self._gate is not None:  # committed stock; over-admitting briefly is safe, the DB decides
            await self._gate.set_available(product_id, product.stock)
        return product

    async def search(self, query: str, *, limit: int = 20) -> list[Product]:
        """Full-text search over name and sku (``websearch_to_tsquery`` syntax, ranked with
        ``ts_rank`` over at most the newest 200 matches); when that finds nothing, misspelt words
        are corrected to their nearest catalogue word, then products matching any word are
        returned (:mod:`dataaccess.repositories.search` and docs/search.md say exactly what is
        promised and what it costs). The ranked ids are cached for ``search_cache_ttl`` seconds
        under the catalogue generation, and read from a source that has replayed the last catalogue write.

        :raises InvalidInput: empty or over-long (200) query (whitespace and invisible format
            characters such as U+200B do not count), limit outside 1..100.
        """
        raw = check_text("query", query, max_len=200)
        if not raw.isascii():  # invisible format characters (U+200B zero-width space, BOM, ...)
            raw = "".join(ch for ch in raw if unicodedata.category(ch) != "Cf")
        text = " ".join(raw.split())
        if not text:
            raise InvalidInput("query", "has nothing to search for (only whitespace or invisible characters)")
        limit = check_int_range("limit", limit, 1, 100)

        markers = self._rt.markers
        cache = self._rt.cache
        near = cache.near if cache is not None else None
        gen_key = markers.generation_key(_TABLE)
        need: int | None = None
        generation: str | None = None
        known = False  # whether ``need`` was read along with the generation
        if near is not None and not near.is_miss(held := near.get(gen_key)):
            generation = held  # the near cache holds the generation Redis has (see near_cache)
        else:
            token = near.token() if near is not None else -1
            # One MGET: the table marker (where to read) and the generation (which cache entry).
            need, generation = await markers.table_state(_TABLE)
            known = True
            if near is not None and generation is not None:
                near.put(gen_key, generation, token)

        async def load() -> list[int]:
            min_lsn = need if known else (await markers.table_state(_TABLE))[0]

            async def q(conn: asyncpg.Connection, _src: Source) -> list[int]:
                return await search_ids(conn, text, limit)

            return await self._rt.read([], q, context="products.search", min_lsn=min_lsn)

        if cache is None or generation is None:  # generation unknown (Redis down): no caching
            ids = await load()
        else:
            digest = hashlib.sha256(text.lower().encode()).hexdigest()[:32]
            ids = (
                await cache.get_or_load(
                    f"search:{generation}:{digest}:{limit}",
                    load,
                    ttl=self._rt.settings.search_cache_ttl,
                    encode=_ids_encode,
                    decode=_ids_decode,
                )
                or []
            )
        return await self.get_many(ids)


def _catalogue_change(product: Product | None) -> PostCommit | None:
    """After a catalogue commit: mark the product and the table (search), bump the search
    generation, invalidate the cached product. Run by ``Runtime.write``, also for a caller
    cancelled after the commit. None: nothing was written (unknown product)."""
    if product is None:
        return None
    return PostCommit(
        entities=(f"product:{product.id}", _TABLE_ENTITY),
        cache_keys=(f"product:{product.id}",),
        generations=(_TABLE,),
    )
