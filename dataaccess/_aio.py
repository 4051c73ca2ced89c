"""Cancellation-safe asyncio helpers.

Why: two common patterns lose a caller's cancellation on Python 3.11.

* ``task.cancel(); with suppress(CancelledError): await task`` also swallows the *caller's* own
  ``CancelledError`` if the caller is cancelled while it waits, so e.g. a cancelled shutdown goes on.
* ``asyncio.wait_for(aw, t)`` returns normally when the caller is cancelled just as ``aw``
  finishes (fixed in 3.12); use ``async with asyncio.timeout(t)`` instead.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

__all__ = ["cancel_and_wait"]

log = logging.getLogger(__name__)


async def cancel_and_wait(task: asyncio.Future[Any] | None, *, what: str = "background task") -> None:
    """Cancel ``task`` and wait until it has finished.

    The task's own ``CancelledError`` is consumed and an exception it ended with is logged, never
    raised. The caller's cancellation propagates at once (the task keeps unwinding on its own).
    ``None`` or a finished task is a no-op wait.
    """
    if task is None:
        return
    task.cancel()
    await asyncio.wait([task])  # unlike awaiting the task, never raises the task's outcome
    if not task.cancelled() and task.exception() is not None:
        log.warning("%s ended with %r while being stopped", what, task.exception())
