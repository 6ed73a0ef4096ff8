"""Who is told about a check-in problem after their next command, with no read per command."""

import asyncio

import pytest

from advice.schedule import Cadence
from cogs.checkin.notices import Notices
from db import Database, checkins
from db.checkins import record_unreachable_member, start_plan
from tests.conftest import START
from tests.db.test_checkins import ALICE, BOB, ORDER


async def unreachable(database: Database, user_id: int) -> None:
    """Another process found the member's DMs closed (its own set is not this one)."""
    async with database.transaction() as session:
        await start_plan(
            session,
            user_id=user_id,
            cadence=Cadence.WEEKLY,
            weekday=0,
            hour=18,
            order=ORDER,
            now=START,
        )
    async with database.transaction() as session:
        await record_unreachable_member(session, user_id=user_id, problem="closed", now=START)


async def test_problems_recorded_elsewhere_are_known_after_a_read_and_told_once(
    database: Database,
) -> None:
    here, there = Notices(database, every=None), Notices(database, every=None)
    await here.refresh()
    await there.refresh()
    await unreachable(database, ALICE)
    assert ALICE not in here  # nothing read per command: known at the next read
    await here.refresh()
    await there.refresh()
    assert ALICE in here and ALICE in there and BOB not in here
    assert await there.take(ALICE) == "closed"
    assert await here.take(ALICE) is None  # told once, whichever process answers first
    assert ALICE not in here
    await here.refresh()
    assert ALICE not in here


async def test_a_problem_recorded_during_a_read_is_not_lost(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    notices = Notices(database, every=None)
    reading = asyncio.Event()

    async def slow_read(_session: object) -> set[int]:
        reading.set()
        await asyncio.sleep(0.05)
        return set()  # the read began before this process recorded ALICE's problem

    monkeypatch.setattr(checkins, "members_with_notices", slow_read)
    refresh = asyncio.create_task(notices.refresh())
    await reading.wait()
    notices.add(ALICE)
    await refresh
    assert ALICE in notices
