"""cancel_and_wait: stops the task, never swallows the caller's own cancellation."""

from __future__ import annotations

import asyncio

from dataaccess._aio import cancel_and_wait


async def test_cancel_and_wait_stops_the_task_and_returns():
    task = asyncio.ensure_future(asyncio.sleep(3600))
    await cancel_and_wait(task)
    assert task.cancelled()


async def test_cancel_and_wait_logs_instead_of_raising_the_tasks_exception(caplog):
    async def fails_on_cancel() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise RuntimeError("cleanup failed") from None

    task = asyncio.ensure_future(fails_on_cancel())
    await asyncio.sleep(0)
    await cancel_and_wait(task, what="worker")
    assert isinstance(task.exception(), RuntimeError)
    assert "worker ended with" in caplog.text


async def test_caller_cancelled_while_waiting_gets_cancelled_error():
    release = asyncio.Event()

    async def slow_to_stop() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await release.wait()  # unwinding takes a while
            raise

    inner = asyncio.ensure_future(slow_to_stop())
    await asyncio.sleep(0)
    closer = asyncio.ensure_future(cancel_and_wait(inner))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    closer.cancel()
    await asyncio.wait([closer])
    assert closer.cancelled()  # the old suppress(CancelledError) pattern returned normally here
    assert not inner.done()  # still unwinding on its own
    release.set()
    await asyncio.wait([inner])
    assert inner.cancelled()


async def test_none_is_a_no_op():
    await cancel_and_wait(None)
