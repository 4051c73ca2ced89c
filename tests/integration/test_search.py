"""products.search: what it promises (matching, typo correction, partial matches, ranking over a
bounded set of the newest matches, exclusions, the lexicon kept current by triggers) and plans
that keep its work bounded (EXPLAIN: no sequential scan, candidates capped), on a 30k-product
catalogue loaded by SQL (the search benchmark's vocabulary)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest

from commerce_db.bench.search_catalogue import load_products
from commerce_db.localtier import DatabaseDSNs
from dataaccess.repositories.search import (
    ALL_SQL,
    CANDIDATES,
    CORRECT_SQL,
    FIRST_SQL,
    RECENT_WINDOW,
    query_words,
)
from tests.integration.conftest import MakeDA


async def test_matching_typos_partial_matches_and_exclusions(make_da: MakeDA) -> None:
    da = await make_da()
    await da.migrate()
    create = da.products.create
    wireless = await create(sku="A-1", name="Acme wireless headphones", price_cents=100)
    wired = await create(sku="A-2", name="Globex wired headphones", price_cents=100)
    phone = await create(sku="A-3", name="Initech smartphone stand", price_cents=100)
    await create(sku="A-4", name="Camping tent for two", price_cents=100)
    grinder = await create(sku="A-5", name="Wireless coffee grinder", price_cents=100)

    # Every word must match (stemmed: "headphone" finds "headphones").
    assert [p.id for p in await da.products.search("wireless headphone")] == [wireless.id]
    assert len(await da.products.search("tents")) == 1
    assert {p.id for p in await da.products.search("headphones")} == {wireless.id, wired.id}
    # A misspelt word is corrected to the nearest catalogue word; headphones come first, not the
    # smartphone stand whose name shares "phone" with the typo.
    hits = await da.products.search("hedphones")
    assert {p.id for p in hits} == {wireless.id, wired.id}
    assert phone.id not in {p.id for p in hits}
    assert [p.id for p in await da.products.search("wireles hedphones")] == [wireless.id]
    # Nothing similar: nothing returned.
    assert await da.products.search("xqzvkwt") == []
    # No product has all words: those with more of them first.
    partial = await da.products.search("wireless camping grinder")
    assert partial[0].id == grinder.id and len(partial) == 3
    # An exclusion is honoured, and a query with one is never corrected or relaxed.
    assert [p.id for p in await da.products.search("headphones -wireless")] == [wired.id]
    assert await da.products.search("hedphones -wired") == []


async def test_lexicon_follows_inserts_bulk_loads_and_renames(
    make_da: MakeDA, fresh_db: DatabaseDSNs, tier: Any
) -> None:
    da = await make_da()
    await da.migrate()
    p = await da.products.create(sku="L-1", name="Plain lamp", price_cents=100)
    assert await da.products.search("zephyrne") == []
    await da.products.rename(p.id, "Zephyrine lamp")  # row trigger: the new word is correctable
    assert [x.id for x in await da.products.search("zephyrne")] == [p.id]
    conn = await asyncpg.connect(fresh_db.primary)
    try:
        # A bulk INSERT ... SELECT: one statement-level trigger run adds all its words.
        await conn.execute(
            "INSERT INTO products (sku, name, price_cents, stock) "
            "SELECT 'B-' || g, 'Quillonic kettle ' || g, 100, 1 FROM generate_series(1, 50) g"
        )
        words = {r[0] for r in await conn.fetch("SELECT word FROM search_words")}
        assert {"plain", "zephyrine", "lamp", "quillonic", "kettle"} <= words
        assert not any(any(ch.isdigit() for ch in w) or len(w) < 3 for w in words)
    finally:
        await conn.close()
    # The bulk load went around the data layer, so no read-your-writes marker routes the search to
    # the primary: it reads on the standby, which may not have replayed the load yet under load.
    await asyncio.to_thread(tier.wait_for_standby)
    hits = await da.products.search("quilonic", limit=100)
    assert len(hits) == 50


def test_query_words() -> None:
    assert query_words('Wireless  "noise cancelling" OR -cheap KX-4821 wireless') == [
        "wireless",
        "noise",
        "cancelling",
        "cheap",
        "kx",
        "4821",
    ]
    assert len(query_words(" ".join(f"w{i}" for i in range(20)))) == 8


# -- the 30k catalogue -----------------------------------------------------------------------------
async def _load(dsn: str, make_da: MakeDA, size: int = 30_000) -> asyncpg.Connection:
    da = await make_da()
    await da.migrate()
    conn = await asyncpg.connect(dsn)
    await load_products(conn, size)
    return conn


async def test_common_word_ranks_the_newest_matches_only(make_da: MakeDA, fresh_db: DatabaseDSNs) -> None:
    conn = await _load(fresh_db.primary, make_da)
    try:
        newest = [
            r[0]
            for r in await conn.fetch(
                "SELECT id FROM products WHERE search_vector @@ to_tsquery('english', 'headphones') "
                "ORDER BY id DESC LIMIT 5"
            )
        ]
        total = await conn.fetchval(
            "SELECT count(*) FROM products WHERE search_vector @@ to_tsquery('english', 'headphones')"
        )
    finally:
        await conn.close()
    assert total > CANDIDATES  # so the cap matters
    da = await make_da()
    # Equal rank (the word once in every name): newest first.
    assert [p.id for p in await da.products.search("headphones", limit=5)] == newest
    typo = await da.products.search("hedphones", limit=5)
    assert [p.id for p in typo] == newest


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


async def _explain(conn: asyncpg.Connection, sql: str, *args: Any) -> list[dict[str, Any]]:
    """The executed plan of ``sql`` as a prepared statement (so plan_cache_mode applies), flattened."""

    async def literal(value: Any) -> str:  # EXPLAIN EXECUTE takes no bind parameters
        if isinstance(value, int):
            return str(value)
        if isinstance(value, list):
            return "ARRAY[" + ", ".join([await literal(v) for v in value]) + "]::text[]"
        return str(await conn.fetchval("SELECT quote_literal($1::text)", value))

    await conn.execute(f"PREPARE stmt AS {sql}")
    try:
        params = ", ".join([await literal(a) for a in args])
        raw = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE stmt({params})")
    finally:
        await conn.execute("DEALLOCATE stmt")
    return list(_nodes(json.loads(raw)[0]["Plan"]))


def _assert_bounded(nodes: list[dict[str, Any]], what: str) -> None:
    scans = [n for n in nodes if n.get("Relation Name") in ("products", "search_words")]
    assert scans, what
    assert not [n for n in scans if n["Node Type"] == "Seq Scan"], f"{what}: sequential scan"
    # The candidate set handed to ranking is capped.
    limits = [n for n in nodes if n["Node Type"] == "Limit"]
    assert limits and all(n["Actual Rows"] <= CANDIDATES for n in limits), what


@pytest.mark.parametrize("plan_cache_mode", ["auto", "force_generic_plan"])
async def test_plans_have_no_sequential_scan_and_bounded_candidates(
    make_da: MakeDA, fresh_db: DatabaseDSNs, plan_cache_mode: str
) -> None:
    """Custom and generic plans alike (asyncpg's prepared statements get generic plans after five
    runs): the walk reads at most RECENT_WINDOW rows through the primary key, the whole-catalogue
    step (in the same statement, run only when the walk found too few) reads the GIN index,
    corrections the lexicon's GiST index in distance order."""
    conn = await _load(fresh_db.primary, make_da)
    try:
        await conn.execute(f"SET plan_cache_mode = {plan_cache_mode}")
        ran_gin: set[bool] = set()
        for query in ("headphones", "waterproof green tent", "xqzvkwt", "headphones or tent"):
            nodes = await _explain(conn, FIRST_SQL, query, 20, CANDIDATES, RECENT_WINDOW)
            _assert_bounded(nodes, f"FIRST {query!r}")
            (walk,) = [
                n for n in nodes if n.get("Relation Name") == "products" and n["Node Type"] == "Index Scan"
            ]
            assert walk["Index Name"] == "products_pkey", walk
            assert walk["Scan Direction"] == "Backward"
            assert walk["Actual Rows"] <= RECENT_WINDOW, query
            # The whole-catalogue step is in the same statement, and runs only when the walk found
            # fewer than `limit` (20) matches.
            (gin,) = [n for n in nodes if n["Node Type"] == "Bitmap Index Scan"]
            assert gin["Index Name"] == "products_search_idx", gin
            (found,) = [n for n in nodes if n["Node Type"] == "Subquery Scan" and n.get("Alias") == "w"]
            assert (gin["Actual Loops"] == 0) == (found["Actual Rows"] >= 20), (query, found, gin)
            ran_gin.add(gin["Actual Loops"] > 0)

            nodes = await _explain(conn, ALL_SQL, query, 20, CANDIDATES)
            _assert_bounded(nodes, f"ALL {query!r}")
            assert any(
                n["Node Type"] == "Bitmap Index Scan" and n["Index Name"] == "products_search_idx"
                for n in nodes
            ), query

        assert ran_gin == {True, False}  # both ways of the one-statement walk were exercised
        nodes = await _explain(conn, CORRECT_SQL, ["hedphones", "xqzvkwt", "waterprof"])
        _assert_bounded(nodes, "CORRECT")
        (knn,) = [n for n in nodes if n.get("Relation Name") == "search_words"]
        assert knn["Node Type"] == "Index Scan" and knn["Index Name"] == "search_words_trgm_idx"
        assert "Order By" in knn
    finally:
        await conn.close()
