"""The loop behind timed jobs: a failing tick is logged and the loop carries on."""

import asyncio
import logging

import pytest

from advice.clock import ManualClock
from cogs.core.jobs.loop import TimedLoop
from db import StorageUnavailable


async def test_a_tick_that_raises_is_logged_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture, clock: ManualClock
) -> None:
    ticks: list[int] = []
    third = asyncio.Event()

    async def tick() -> int:
        ticks.append(len(ticks))
        if len(ticks) == 1:
            raise RuntimeError("the database went away")
        if len(ticks) == 3:
            third.set()
        return 1

    loop = TimedLoop("test-jobs", tick, clock=clock, every=0.01)
    with caplog.at_level(logging.INFO, logger="cogs.core.jobs.loop"):
        loop.start()
        await asyncio.wait_for(third.wait(), 5)
        await loop.stop()
    assert loop.failures == 1 and len(ticks) >= 3
    failed = [r for r in caplog.records if "tick failed" in r.getMessage()]
    assert len(failed) == 1 and failed[0].exc_info is not None
    assert any("did 1" in r.getMessage() for r in caplog.records)  # the tick's time is logged
    assert loop.last_tick_at == clock.now()


async def test_wake_ticks_now_and_explicit_ticks_never_overlap(clock: ManualClock) -> None:
    running = 0
    overlaps = 0
    woken = asyncio.Event()

    async def tick() -> int:
        nonlocal running, overlaps
        running += 1
        overlaps += running > 1
        for _ in range(5):  # yield, so an overlapping tick would get in here
            await asyncio.sleep(0)
        running -= 1
        first_tick.set()
        if loop_started.is_set():
            woken.set()
        return 0

    first_tick = asyncio.Event()
    loop_started = asyncio.Event()
    loop = TimedLoop("test-jobs", tick, clock=clock, every=3600)  # never by interval here
    loop.start()
    await asyncio.wait_for(first_tick.wait(), 5)  # the first tick runs on start
    loop_started.set()
    await asyncio.gather(loop.tick(), loop.tick())
    woken.clear()
    loop.wake()
    await asyncio.wait_for(woken.wait(), 5)
    await loop.stop()
    assert overlaps == 0


async def test_without_an_interval_only_explicit_ticks_run(clock: ManualClock) -> None:
    calls = 0

    async def tick() -> int:
        nonlocal calls
        calls += 1
        return 0

    loop = TimedLoop("test-jobs", tick, clock=clock, every=None)
    loop.start()
    for _ in range(5):  # a started loop task would have run its first tick by now
        await asyncio.sleep(0)
    assert calls == 0
    assert await loop.tick() == 0 and calls == 1
    await loop.stop()


async def test_storage_unavailable_is_said_once_and_retried_soon_not_at_the_interval(
    caplog: pytest.LogCaptureFixture, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An hour's interval, but the database is away: the loop tries again within a moment
    (no traceback a tick, one line that it is away and one that it is back), so delivery
    resumes soon after the database does."""
    monkeypatch.setattr("cogs.core.jobs.loop.STORAGE_RETRY_SECONDS", 0.01)
    ticks = 0
    back = asyncio.Event()

    async def tick() -> int:
        nonlocal ticks
        ticks += 1
        if ticks <= 3:
            raise StorageUnavailable()
        back.set()
        return 0

    loop = TimedLoop("test-jobs", tick, clock=clock, every=3600)
    with caplog.at_level(logging.INFO, logger="cogs.core.jobs.loop"):
        loop.start()
        await asyncio.wait_for(back.wait(), 5)
        await loop.stop()
    assert (loop.failures, loop.storage_failures) == (3, 3)
    assert loop.last_success is not None
    lines = [r.getMessage() for r in caplog.records]
    assert [line for line in lines if "storage unavailable" in line] == [
        "test-jobs: storage unavailable; trying again every 0.01 s"
    ]
    assert any(line.startswith("test-jobs: storage is back after") for line in lines)
    assert not any(r.exc_info for r in caplog.records)
