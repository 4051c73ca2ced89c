"""A one-line progress display: rewritten in place on a terminal, periodic lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Show status text while something runs.

    Args:
        stream: where to write [sys.stderr].
        interactive: rewrite one line with ``\\r`` [auto: stream is a TTY].
        every: minimum seconds between lines when not interactive [5.0].
    """

    def __init__(
        self, stream: TextIO | None = None, *, interactive: bool | None = None, every: float = 5.0
    ) -> None:
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self.every = every
        self._last = 0.0
        self._width = 0

    def update(self, text: str) -> None:
        if self.interactive:
            pad = max(0, self._width - len(text))
            self.stream.write("\r" + text + " " * pad)
            self._width = len(text)
            self.stream.flush()
        elif time.monotonic() - self._last >= self.every:
            self._last = time.monotonic()
            self.stream.write(text + "\n")
            self.stream.flush()

    def done(self, text: str = "") -> None:
        """End the progress line (and print text on its own line)."""
        if self.interactive and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
        if text:
            self.stream.write(text + "\n")
        self.stream.flush()
        self._width = 0

    def step(self, text: str) -> None:
        """A phase message on its own line (e.g. "seeding 10000 products")."""
        self.done()
        self.stream.write(text + "\n")
        self.stream.flush()
