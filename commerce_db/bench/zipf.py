"""Zipf-distributed key picking: a few keys get most of the traffic, as on a real catalogue."""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Sequence
from typing import Generic, TypeVar

K = TypeVar("K")


class ZipfPicker(Generic[K]):
    """Picks from keys with P(rank k) proportional to 1 / k**s (rank 1 = keys[0] after shuffling).

    Args:
        keys: the population (non-empty).
        s: skew exponent [1.1]; 0 is uniform, ~1 is typical web traffic.
        seed: RNG seed for reproducible runs [None].
        shuffle: randomise which keys are hot [True], so "hot" is not simply "first inserted".
    """

    def __init__(
        self, keys: Sequence[K], *, s: float = 1.1, seed: int | None = None, shuffle: bool = True
    ) -> None:
        if not keys:
            raise ValueError("ZipfPicker needs at least one key")
        if s < 0:
            raise ValueError(f"zipf exponent s must be >= 0, got {s}")
        self._rng = random.Random(seed)
        self.keys = list(keys)
        if shuffle:
            self._rng.shuffle(self.keys)
        self._cdf = list(itertools.accumulate(1.0 / (k**s) for k in range(1, len(self.keys) + 1)))

    def pick(self) -> K:
        x = self._rng.random() * self._cdf[-1]
        return self.keys[min(bisect.bisect_left(self._cdf, x), len(self.keys) - 1)]

    def top_share(self, fraction: float) -> float:
        """Share of the traffic going to the hottest ``fraction`` of keys (for the report)."""
        n = max(1, int(len(self.keys) * fraction))
        return self._cdf[n - 1] / self._cdf[-1]
