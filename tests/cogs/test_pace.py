"""The pace every timed job keeps under Discord's limit (cogs/core/jobs/pace.py)."""

import asyncio
import itertools
from types import SimpleNamespace

import pytest

from cogs.core.jobs import pace
from cogs.core.jobs.pace import Pacer, backoff


def test_backoff_doubles_from_a_minute_up_to_an_hour() -> None:
    assert [backoff(n).total_seconds() / 60 for n in range(1, 10)] == [
        1,
        2,
        4,
        8,
        16,
        32,
        60,
        60,
        60,
    ]


class _FakeTime:
    """The pacer's clock, moved by its sleeps (and by a stall when one is set)."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.stall = 0.0  # added to the next sleep: the event loop was busy meanwhile
        self._sleep = asyncio.sleep

    def time(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.now += delay + self.stall
        self.stall = 0.0
        await self._sleep(0)


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> _FakeTime:
    clock = _FakeTime()
    monkeypatch.setattr(pace, "time", SimpleNamespace(time=clock.time))
    monkeypatch.setattr(
        pace,
        "asyncio",
        SimpleNamespace(Lock=asyncio.Lock, create_task=asyncio.create_task, sleep=clock.sleep),
    )
    return clock


async def test_callers_after_a_stall_keep_their_spacing(fake_time: _FakeTime) -> None:
    pacer = Pacer(fake_time.now, per_second=10)
    sent: list[float] = []

    async def send() -> None:
        await pacer.wait()
        sent.append(fake_time.now)

    fake_time.stall = 1.0  # the first caller's sleep ends a second late
    await asyncio.gather(*(send() for _ in range(5)))
    gaps = [later - earlier for earlier, later in itertools.pairwise(sent)]
    assert len(sent) == 5
    assert min(gaps) >= 0.1 - 1e-9  # never a burst of the callers whose times had passed


async def test_reserved_slots_are_never_used_past_their_lot(fake_time: _FakeTime) -> None:
    lots: list[tuple[float, int]] = []
    row = [0.0]

    async def reserve(count: int) -> float:
        start = max(row[0], fake_time.now)
        row[0] = start + count / 10
        lots.append((start, count))
        return start

    pacer = Pacer(0.0, per_second=10, reserve=reserve)
    pacer.expect(30)
    sent: list[float] = []

    async def send(index: int) -> None:
        if index == 12:
            fake_time.stall = 3.0  # well past the lot in use
        await pacer.wait()
        sent.append(fake_time.now)

    await asyncio.gather(*(send(index) for index in range(30)))
    await pacer.close()
    assert len(sent) == 30
    for at in sent:  # each within one lot's times (10 ms late at most)
        assert any(start <= at < start + count / 10 + pace.LATE_SECONDS for start, count in lots)
    assert min(later - earlier for earlier, later in itertools.pairwise(sent)) >= 0.1 - 1e-9
