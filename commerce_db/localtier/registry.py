"""Stop every live local tier at interpreter exit and on SIGTERM, so no server outlives its owner."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import threading
from types import FrameType
from typing import Protocol


class _Stoppable(Protocol):
    def stop(self) -> None: ...


_live: dict[int, _Stoppable] = {}
_lock = threading.Lock()
_installed = False


def register(obj: _Stoppable) -> None:
    global _installed
    with _lock:
        _live[id(obj)] = obj
        if not _installed:
            _installed = True
            atexit.register(stop_all)
            _install_sigterm()


def unregister(obj: _Stoppable) -> None:
    with _lock:
        _live.pop(id(obj), None)


def stop_all() -> None:
    """Stop every registered tier (best effort; errors are swallowed: we are exiting)."""
    with _lock:
        objs = list(_live.values())
    for obj in objs:
        with contextlib.suppress(Exception):
            obj.stop()


def _install_sigterm() -> None:
    # Only from the main thread, and never over a handler somebody else installed.
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def _on_sigterm(signum: int, frame: FrameType | None) -> None:
        stop_all()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, _on_sigterm)
