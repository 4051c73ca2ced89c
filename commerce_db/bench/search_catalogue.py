"""A realistic product catalogue for the search benchmark, loaded by SQL, and the queries run on it.

Names follow ``Brand adjective colour noun MODEL`` ("Torvex waterproof green tent KX-4821").
Brands are built from syllables and drawn with a heavy skew, so, as in real catalogues, a few
brands are everywhere and new (rare) ones keep appearing as the catalogue grows: the number of
distinct words grows with the catalogue (about 2,000 at 10k products, 15,000 at 1M) instead of
staying fixed. Nouns are skewed too, so common words ("headphones", "tent") match a few percent of
the catalogue. Model codes are nearly unique per product. Loading is one ``INSERT ... SELECT``
over ``generate_series`` per batch, deterministic for a given seed.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

import asyncpg

_SYLLABLES = tuple(
    """ar bel cor dan el fin gal hal ion jor kel lum mar nor or pax quin ros sol tor ul vex wyn xan
    yor zen""".split()  # noqa: SIM905 (a word list reads better as text)
)
ADJECTIVES = tuple(
    """wireless ergonomic portable waterproof compact smart premium organic vintage ultralight rechargeable
    stainless bluetooth mechanical noise-cancelling foldable insulated heavy-duty solar modular lightweight
    cordless digital classic deluxe professional adjustable magnetic washable breathable durable slim
    outdoor indoor travel kids handmade ceramic wooden leather""".split()  # noqa: SIM905 (a word list reads better as text)
)
COLOURS = tuple(
    """black white grey silver red blue green yellow orange purple pink brown beige navy olive teal gold
    charcoal cream burgundy""".split()  # noqa: SIM905 (a word list reads better as text)
)
NOUNS = tuple(
    """headphones tent keyboard kettle backpack speaker blender lamp jacket sneakers watch camera charger
    monitor chair desk bottle drone router tablet earbuds thermos grinder projector toaster microwave vacuum
    heater fan pillow blanket mattress sofa table shelf mirror rug curtain towel umbrella wallet belt gloves
    scarf hat boots sandals socks shirt hoodie sweater jeans shorts dress skirt coat raincoat helmet bicycle
    scooter skateboard treadmill dumbbell hammock lantern stove cooler compass binoculars multitool drill saw
    hammer screwdriver wrench ladder toolbox printer scanner webcam microphone guitar piano violin drum
    amplifier turntable radio television console controller smartphone laptop notebook stapler calculator
    clock thermostat doorbell padlock""".split()  # noqa: SIM905 (a word list reads better as text)
)


def brands() -> list[str]:
    """18,252 brand names: every two- and three-syllable combination, capitalised."""
    two = ["".join(p).capitalize() for p in itertools.product(_SYLLABLES, repeat=2)]
    three = ["".join(p).capitalize() for p in itertools.product(_SYLLABLES, repeat=3)]
    return two + three


# One statement per batch. random() is volatile, so it is drawn per row; power(random(), k) skews
# the pick towards the front of each list (brands k=4, nouns k=2). setseed() makes it repeatable.
_LOAD_SQL = """
INSERT INTO products (sku, name, price_cents, stock)
SELECT 'SB-' || lpad(g::text, 9, '0'),
       ($1::text[])[1 + floor(power(random(), 4) * cardinality($1::text[]))::int] || ' ' ||
       ($2::text[])[1 + floor(random() * cardinality($2::text[]))::int] || ' ' ||
       ($3::text[])[1 + floor(random() * cardinality($3::text[]))::int] || ' ' ||
       ($4::text[])[1 + floor(power(random(), 2) * cardinality($4::text[]))::int] || ' ' ||
       chr(65 + floor(random() * 26)::int) || chr(65 + floor(random() * 26)::int) || '-' ||
       (1000 + floor(random() * 9000)::int),
       199 + floor(random() * 99800)::bigint,
       floor(random() * 500)::int
FROM generate_series($5::bigint, $6::bigint) g
"""

_BATCH = 100_000

QUERY_KINDS = ("common_word", "three_words", "typo", "gibberish")
"""The query kinds of issue 18, in report order."""


async def load_products(conn: asyncpg.Connection, count: int, *, seed: int = 42) -> None:
    """Append ``count`` products (batches of 100k rows, one statement each), then VACUUM ANALYZE
    (visibility map for the standby's reads, merged GIN pending list, fresh planner statistics).
    Deterministic for a given seed and catalogue size before the call."""
    start = int(await conn.fetchval("SELECT coalesce(max(id), 0) FROM products")) + 1
    arrays = (brands(), list(ADJECTIVES), list(COLOURS), list(NOUNS))
    for first in range(start, start + count, _BATCH):
        last = min(start + count - 1, first + _BATCH - 1)
        async with conn.transaction():
            # setseed() per batch: the same rows whatever the batch sizes of earlier loads were.
            await conn.execute("SELECT setseed($1)", ((seed * 7919 + first) % 1_000_003) / 1_000_003)
            await conn.execute(_LOAD_SQL, *arrays, first, last)
    await conn.execute("VACUUM (ANALYZE) products")
    await conn.execute("VACUUM (ANALYZE) search_words")


def _typo(rng: random.Random, word: str) -> str:
    """``word`` with one interior letter dropped ("headphones" -> "hedphones")."""
    i = rng.randrange(2, len(word) - 2)
    return word[:i] + word[i + 1 :]


@dataclass(frozen=True)
class BenchQuery:
    """One query of the benchmark and, for typos, the word its top hit must contain."""

    kind: str
    text: str
    expect_word: str | None = None


def bench_queries(per_kind: int = 12, *, seed: int = 18) -> list[BenchQuery]:
    """``per_kind`` queries of each kind in :data:`QUERY_KINDS`:

    * ``common_word``: one of the most frequent nouns ("headphones", "tent", ...), 2-9% of products;
    * ``three_words``: adjective + colour + noun ("waterproof green tent"): a handful of exact
      matches at 1M products, usually none at 10k (then the any-word fallback answers);
    * ``typo``: a frequent noun or an adjective with one letter dropped ("hedphones"), which
      full-text search cannot match; its top hit must contain the intended word;
    * ``gibberish``: random consonants ("xqzvkwt"), which match nothing.
    """
    rng = random.Random(seed)
    vocabulary = {w.lower() for w in (*ADJECTIVES, *COLOURS, *NOUNS)}
    common = list(NOUNS[:per_kind])
    three = [
        f"{rng.choice(ADJECTIVES)} {rng.choice(COLOURS)} {rng.choice(NOUNS[:30])}" for _ in range(per_kind)
    ]
    typos = [BenchQuery("typo", "hedphones", expect_word="headphones")]  # the example
    pools = [[w for w in words if w.isalpha() and len(w) >= 6] for words in (NOUNS[:30], ADJECTIVES)]
    while len(typos) < per_kind:
        word = rng.choice(pools[len(typos) % 2])  # nouns and adjectives alternately
        typo = _typo(rng, word)
        if typo not in vocabulary and all(q.text != typo for q in typos):
            typos.append(BenchQuery("typo", typo, expect_word=word))
    consonants = "bcdfghjklmnpqrstvwxz"
    gibberish = ["".join(rng.choice(consonants) for _ in range(rng.randint(6, 9))) for _ in range(per_kind)]
    return (
        [BenchQuery("common_word", q) for q in common]
        + [BenchQuery("three_words", q) for q in three]
        + typos
        + [BenchQuery("gibberish", q) for q in gibberish]
    )
