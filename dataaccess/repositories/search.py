"""Product search with bounded work per query: the SQL behind :meth:`Products.search`.

What it promises (docs/search.md has the measured figures):

* **Matching.** The query is full-text matched (``websearch_to_tsquery('english')``: stemming,
  stop words, ``"quoted phrases"``, ``-exclusion``, ``or``) against the product name (weight A) and
  sku (weight B): a product matches when it contains every word.
* **Typo tolerance.** When nothing matches, each alphabetic query word of 3..64 letters that is
  not a catalogue word is replaced by its nearest catalogue word by trigram similarity (at least
  ``pg_trgm.similarity_threshold``, default 0.3), found by index-ordered nearest-neighbour search
  in the ``search_words`` lexicon (migration 0003), and the corrected words are searched again.
  Words that contain digits (model codes) are never corrected. A query that excludes a word
  (``-word``) gets no correction or partial matches: they could return what it excludes.
* **Partial matches.** When a query of several words still matches nothing, products that
  contain *any* of the (corrected) words are returned, those containing more of them first.
* **Ranking, bounded.** At most :data:`CANDIDATES` matching products are ranked (``ts_rank``,
  ties: newest first). When the query's words are catalogue words, the candidates are the newest
  matches among the newest :data:`RECENT_WINDOW` products (a walk down the primary key that reads
  at most that window), provided there are at least ``limit`` of them; otherwise up to
  :data:`CANDIDATES` matches from the full-text index over the whole catalogue, in index order,
  where the query's matches are sparse. So a common word costs about the same at 10k and at 1M
  products; the price is that its results are the best of its newest matches, not of all.

No statement here can scan the products table sequentially (``tests/integration/test_search.py``
checks the plans, custom and generic).
"""

from __future__ import annotations

import re

import asyncpg

__all__ = [
    "ALL_SQL",
    "CANDIDATES",
    "CORRECT_SQL",
    "FIRST_SQL",
    "MAX_WORDS",
    "RECENT_WINDOW",
    "query_words",
    "search_ids",
]

CANDIDATES = 200
"""At most this many matching products are ranked per query (the newest matches)."""

RECENT_WINDOW = 5_000
"""How many of the newest products (by id) the walk for a common term reads at most."""

MAX_WORDS = 8
"""At most this many distinct query words are spelling-corrected or OR-ed."""

# Every statement takes its tsquery from a MATERIALIZED CTE, read through `(SELECT tsq FROM q)`: it
# is computed once per statement (a `websearch_to_tsquery($1)` in a filter is re-evaluated for
# every row under a generic plan, which asyncpg's prepared statements get after five runs), and
# the planner sees the same unknown value under custom and generic plans, so the plan shape does
# not depend on the query text or on the plan cache.

# The walk, and the whole-catalogue step only if the walk found too few, in ONE statement (one
# round trip, where the two used to be sent one after the other). `recent`: the newest CANDIDATES
# matches among the newest RECENT_WINDOW products; the `OFFSET 0` fence keeps the match test out of
# the inner scan, so the plan is always the walk down the primary key from the newest product: it
# stops after CANDIDATES matches, and after RECENT_WINDOW rows at the latest, whatever the term's
# frequency. When it found fewer than `limit` ($2), the second branch (ALL_SQL's scan) runs; its
# condition does not depend on any row, so PostgreSQL makes it a one-time filter and does not even
# start that branch's bitmap scan when the walk found enough. `n` = candidates ranked.
FIRST_SQL = """
WITH q AS MATERIALIZED (SELECT websearch_to_tsquery('english', $1) AS tsq),
recent AS MATERIALIZED (
    SELECT w.id, w.search_vector
    FROM (
        SELECT p.id, p.search_vector FROM products p
        WHERE p.id > (SELECT max(id) FROM products) - $4
        ORDER BY p.id DESC
        OFFSET 0
    ) w
    WHERE w.search_vector @@ (SELECT tsq FROM q)
    LIMIT $3
),
c AS (
    SELECT r.id, r.search_vector FROM recent r WHERE (SELECT count(*) FROM recent) >= $2
    UNION ALL
    SELECT a.id, a.search_vector
    FROM (
        SELECT p.id, p.search_vector FROM products p
        WHERE p.search_vector @@ (SELECT tsq FROM q)
        LIMIT $3
    ) a
    WHERE (SELECT count(*) FROM recent) < $2
)
SELECT c.id, count(*) OVER () AS n
FROM c
ORDER BY ts_rank(c.search_vector, (SELECT tsq FROM q)) DESC, c.id DESC
LIMIT $2
"""

# Up to CANDIDATES matches from the whole catalogue through the GIN index: FIRST_SQL's second
# branch, and alone for a query that is not made of catalogue words. A bitmap scan: its cost grows
# with the number of matches, which are sparse here, or the walk would have found enough. With the
# tsquery unknown to the planner (default selectivity 0.5%) the bitmap scan costs about a third of
# a sequential scan that stops after CANDIDATES rows at 1M products; the two meet at about 20M,
# beyond what this search is for.
ALL_SQL = """
WITH q AS MATERIALIZED (SELECT websearch_to_tsquery('english', $1) AS tsq)
SELECT c.id, count(*) OVER () AS n
FROM (
    SELECT p.id, p.search_vector FROM products p
    WHERE p.search_vector @@ (SELECT tsq FROM q)
    LIMIT $3
) c
ORDER BY ts_rank(c.search_vector, (SELECT tsq FROM q)) DESC, c.id DESC
LIMIT $2
"""

# Nearest catalogue word for each query word: GiST index-ordered nearest neighbour (`<->`) with
# LIMIT 1 reads a few index pages; `%` (similarity >= pg_trgm.similarity_threshold) lets the
# index prune whole subtrees, so a word with no similar catalogue word is rejected at once.
CORRECT_SQL = """
SELECT t.tok, c.word, to_tsvector('english', t.tok) = to_tsvector('english', c.word) AS same_stem
FROM unnest($1::text[]) AS t(tok)
CROSS JOIN LATERAL (
    SELECT w.word FROM search_words w
    WHERE w.word % t.tok
    ORDER BY w.word <-> t.tok
    LIMIT 1
) c
"""

_WORD = re.compile(r"[^\W_]+")
_EXCLUSION = re.compile(r"(?:^|\s)-\w")
_CORRECTABLE = re.compile(r"[^\W\d_]{3,64}")


def query_words(text: str) -> list[str]:
    """The distinct lower-case words of ``text`` (letters and digits), in order, at most
    :data:`MAX_WORDS`; ``or`` is dropped because the retries pass words to
    ``websearch_to_tsquery``, where it is an operator."""
    words = [w for w in dict.fromkeys(_WORD.findall(text.lower())) if w != "or"]
    return words[:MAX_WORDS]


async def _ranked(conn: asyncpg.Connection, tsquery_text: str, limit: int, *, known: bool) -> list[int]:
    """The best ``limit`` of at most CANDIDATES matches.

    ``known``: the query's words are catalogue words, so the bounded walk over the newest
    products goes first, and its matches are the candidates when there are at least ``limit`` of
    them. Otherwise (the newest products hold fewer, or the query has typos, model codes, words
    the catalogue lacks) up to CANDIDATES matches from the GIN index over the whole catalogue,
    which costs little for a query that matches little."""
    if known:  # the walk, and the GIN step only if it found too few: one round trip
        rows = await conn.fetch(FIRST_SQL, tsquery_text, limit, CANDIDATES, RECENT_WINDOW)
    else:
        rows = await conn.fetch(ALL_SQL, tsquery_text, limit, CANDIDATES)
    return [r["id"] for r in rows]


async def search_ids(conn: asyncpg.Connection, text: str, limit: int) -> list[int]:
    """Ids of the best ``limit`` products for ``text`` (already validated and whitespace-normalised)."""
    words = query_words(text)
    correctable = [w for w in words if _CORRECTABLE.fullmatch(w)]
    # One round trip: the nearest catalogue word of every correctable query word (itself, or a
    # word with the same stem, when the catalogue has it): picks the cheaper first step and, if
    # nothing matches, corrects typos.
    nearest: dict[str, str] = {}
    in_catalogue: set[str] = set()
    if correctable:
        for r in await conn.fetch(CORRECT_SQL, correctable):
            nearest[r["tok"]] = r["word"]
            if r["same_stem"]:
                in_catalogue.add(r["tok"])
    in_catalogue |= set(nearest.values())
    any_of = "or" in _WORD.findall(text.lower())  # websearch's `or`: any word may match

    def known(ws: list[str], *, any_word: bool) -> bool:
        hits = [w in in_catalogue for w in ws]
        return bool(ws) and (any(hits) if any_word else all(hits))

    ids = await _ranked(conn, text, limit, known=known(words, any_word=any_of))
    if ids or _EXCLUSION.search(text):
        return ids
    fixed = list(dict.fromkeys(w if w in in_catalogue else nearest.get(w, w) for w in words))
    if fixed != words:
        ids = await _ranked(conn, " ".join(fixed), limit, known=known(fixed, any_word=False))
    if not ids and len(fixed) > 1:
        ids = await _ranked(conn, " or ".join(fixed), limit, known=known(fixed, any_word=True))
    return ids
