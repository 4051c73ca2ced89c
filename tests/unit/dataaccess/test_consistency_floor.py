"""WriteMarkers' schema floor, writer-only schema marker and requirement combination (no Redis)."""

from __future__ import annotations

from dataaccess.consistency import SCHEMA_ENTITY, WriteMarkers, strictest
from dataaccess.pools import WRITER_ONLY_LSN, WRITER_REQUIRED


def test_strictest_prefers_writer_then_highest_lsn() -> None:
    assert strictest() is None
    assert strictest(None, None) is None
    assert strictest(None, 5, 3) == 5
    assert strictest(7, WRITER_REQUIRED, None) == WRITER_REQUIRED
    assert strictest(WRITER_ONLY_LSN, 9) == WRITER_ONLY_LSN


async def test_floor_applies_to_every_read_and_only_rises() -> None:
    m = WriteMarkers(None, namespace="t", ttl=60)
    assert await m.required_lsns(["product:1"]) == [None]
    await m.mark_schema(100)
    assert m.floor_lsn == 100 and m.local_requirement() == 100
    await m.mark(["product:1"], 150)
    assert await m.required_lsns(["product:1", "user:2"]) == [150, 100]
    m.raise_floor(50)  # never lowers
    m.raise_floor(WRITER_ONLY_LSN)  # an unknown position is not a floor
    assert m.floor_lsn == 100
    assert await m.table_state("products") == (100, None)  # no Redis: no generation, no caching


async def test_unknown_schema_lsn_is_a_writer_only_marker_with_ttl() -> None:
    m = WriteMarkers(None, namespace="t", ttl=60)
    await m.mark_schema(WRITER_ONLY_LSN)
    assert m.floor_lsn is None
    assert m.local_lsn(SCHEMA_ENTITY) == WRITER_ONLY_LSN
    assert await m.required_lsn("user:1") == WRITER_ONLY_LSN
    now = [1000.0]
    expiring = WriteMarkers(None, namespace="t", ttl=60, clock=lambda: now[0])
    await expiring.mark_schema(WRITER_ONLY_LSN)
    now[0] += 59.9
    assert expiring.local_requirement() == WRITER_ONLY_LSN
    now[0] += 0.1
    assert expiring.local_requirement() is None  # expires like any marker
