"""Pure parts of ``commerce-db bench --search``: the query set, option checks, growth verdicts."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from commerce_db.bench.search_bench import SearchBenchOptions, _document, render_search_table
from commerce_db.bench.search_catalogue import ADJECTIVES, COLOURS, NOUNS, QUERY_KINDS, bench_queries, brands
from commerce_db.commands.bench import _sizes


def test_bench_queries_cover_every_kind_deterministically() -> None:
    queries = bench_queries(12)
    assert queries == bench_queries(12)
    assert {k: sum(q.kind == k for q in queries) for k in QUERY_KINDS} == dict.fromkeys(QUERY_KINDS, 12)
    vocabulary = {w.lower() for w in (*ADJECTIVES, *COLOURS, *NOUNS, *brands())}
    typos = [q for q in queries if q.kind == "typo"]
    assert typos[0].text == "hedphones" and typos[0].expect_word == "headphones"
    for q in typos:  # one letter dropped from the intended word, and not itself a catalogue word
        assert q.expect_word and len(q.text) == len(q.expect_word) - 1 and q.text not in vocabulary
    for q in queries:
        if q.kind == "three_words":
            assert len(q.text.split()) == 3
        if q.kind == "gibberish":
            assert not set(q.text) & set("aeiouy")


def test_options_and_sizes_are_validated() -> None:
    with pytest.raises(ValueError, match="ascending"):
        SearchBenchOptions(sizes=(1_000_000, 10_000))
    with pytest.raises(ValueError, match="samples"):
        SearchBenchOptions(samples=5)
    assert _sizes("10_000,1000000") == (10_000, 1_000_000)
    for bad in ("10k", "5,5", "100,10", "0,10"):
        with pytest.raises(argparse.ArgumentTypeError, match="--sizes"):
            _sizes(bad)


def _size(products: int, p50: float, p99: float) -> dict[str, Any]:
    kinds = {k: {"p50_ms": p50, "p99_ms": p99, "max_ms": p99, "n": 100} for k in QUERY_KINDS}
    checks = {"typo_top_hit_wrong": [], "gibberish_non_empty": [], "empty_results": 0}
    return {
        "products": products,
        "kinds": kinds,
        "search_sql_only": kinds,
        "checks": checks,
        "lexicon_words": 5,
        "load_seconds": 0.1,
        "loadavg_before_after": [None, None],
    }


def test_growth_verdicts() -> None:
    options = SearchBenchOptions(sizes=(10, 20))
    queries = bench_queries(2)
    ok = _document(options, queries, {"10": _size(10, 10.0, 40.0), "20": _size(20, 20.0, 120.0)})
    assert all(g["met"] for g in ok["growth"].values()) and ok["relevance_ok"]
    assert ok["growth"]["typo"] == {
        "p50_growth": 2.0,
        "p99_growth": 3.0,
        "p99_largest_ms": 120.0,
        "met": True,
    }
    slow = _document(options, queries, {"10": _size(10, 10.0, 40.0), "20": _size(20, 21.0, 100.0)})
    assert not slow["growth"]["common_word"]["met"]  # p50 2.1x
    over = _document(options, queries, {"10": _size(10, 60.0, 60.0), "20": _size(20, 60.0, 151.0)})
    assert not over["growth"]["gibberish"]["met"]  # p99 within 3x but above 150 ms
    assert "MISSED" in render_search_table(over) and "10: p50 / p99 ms" in render_search_table(ok)
