"""A member's own actions at once: every pair, both orders, never an error, never doubled.

People press twice, type in two windows, answer a check-in on their phone while deleting
their data on a laptop. Each round gives a fresh member the state the pair needs (an entry,
a delivered check-in, the confirmations already on screen), fires both actions at the same
moment, and then checks what a member and the database would show: a clear answer to each
(no error id, no traceback, no "did not respond"), at most one pending regular check-in and
one snoozed copy per point, and after a snooze pressed twice, one DM the next day.

Runs on SQLite and on PostgreSQL, where the lock order (db/locks.py) is what keeps the pairs
from deadlocking; before it, forget with edit (and five more pairs) ended in an error id.
"""

import asyncio
import itertools
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import DBAPIError

from db import checkins as store
from db.jobs import JobState
from db.models import Base, Checkin, Decision
from sandbox import Interaction
from tests.e2e.conftest import World, text_of
from tests.e2e.test_reflect import open_reflect, submit

JSON = dict[str, Any]
ROUNDS = 2
OUR_FAULT = ("went wrong on our side", "Traceback", "error id")
Trigger = Callable[[], Awaitable[str]]


@dataclass
class Member:
    user_id: int
    entry_id: int
    checkin_dm: JSON


_names = itertools.count()


async def answered(interaction: Interaction) -> str:
    """What the member saw: the message, or the form that opened."""
    if interaction.delivered:
        try:
            return text_of(await interaction.message())
        except AssertionError:
            return str((await interaction.modal()).get("title"))
    raise AssertionError("the interaction was never delivered")


async def fresh_member(world: World) -> Member:
    """A member in the test server with an entry and a delivered check-in DM."""
    user_id = world.emulator.add_user(f"racer{next(_names)}")
    world.emulator.add_member(world.guild_id, user_id)
    await submit(world, user_id, await open_reflect(world, user_id, "purpose"), "first words")
    await (await world.slash(user_id, "checkin start")).message()
    async with world.database.transaction() as session:  # due now, rather than at its slot
        await session.execute(
            update(Checkin)
            .where(Checkin.user_id == user_id, Checkin.state == JobState.PENDING)
            .values(due_at=world.clock.now(), scheduled_at=world.clock.now())
        )
    cog: Any = world.bot.get_cog("Checkins")
    await cog.loop.tick()
    dms = [
        m
        for m in world.emulator.dm_messages(user_id)
        if m["author"]["id"] == str(world.emulator.bot_user_id) and m.get("components")
    ]
    async with world.database.read() as session:
        entry_id = await session.scalar(
            select(Base.metadata.tables["reflections"].c.id).where(
                Base.metadata.tables["reflections"].c.user_id == user_id
            )
        )
    assert dms and entry_id is not None
    return Member(user_id, int(entry_id), dms[-1])


def button(message: JSON, prefix: str) -> str:
    for row in message.get("components") or []:
        for component in row.get("components") or []:
            if str(component.get("custom_id", "")).startswith(prefix):
                return str(component["custom_id"])
    raise AssertionError(f"no {prefix} button in {message}")


# --- each action: prepared (what must already be on screen), then fired ----------------------


async def forget(world: World, m: Member) -> Trigger:
    ask = await (await world.slash(m.user_id, "mydata forget")).message()
    custom_id = button(ask, "cr:mydata-forget:")
    return lambda: _press(world, m.user_id, ask, custom_id)


async def edit(world: World, m: Member) -> Trigger:
    modal = await (await world.slash(m.user_id, "journal edit", entry=str(m.entry_id))).modal()

    async def fire() -> str:
        ix = await world.emulator.submit_modal(m.user_id, modal, {"text": "edited words"})
        return await answered(ix)

    return fire


async def delete(world: World, m: Member) -> Trigger:
    ask = await (await world.slash(m.user_id, "journal delete", entry=str(m.entry_id))).message()
    custom_id = button(ask, "cr:journal-delete:")
    return lambda: _press(world, m.user_id, ask, custom_id)


async def reflect(world: World, m: Member) -> Trigger:
    modal = await open_reflect(world, m.user_id, "money")

    async def fire() -> str:
        ix = await world.emulator.submit_modal(m.user_id, modal, {"text": "a new reflection"})
        return await answered(ix)

    return fire


async def decide(world: World, m: Member) -> Trigger:
    return lambda: _slash(world, m.user_id, "decide", leaning="leaning yes", why="impact")


async def reply(world: World, m: Member) -> Trigger:
    channel = world.emulator.dm_channel_id(m.user_id)

    async def fire() -> str:
        sent = await world.emulator.send_dm(m.user_id, "my answer, by DM")
        return text_of(await world.emulator.wait_for_message(channel, after=sent))

    return fire


async def pause(world: World, m: Member) -> Trigger:
    return lambda: _slash(world, m.user_id, "checkin pause", days=3)


async def stop(world: World, m: Member) -> Trigger:
    return lambda: _slash(world, m.user_id, "checkin stop")


async def timezone(world: World, m: Member) -> Trigger:
    return lambda: _slash(world, m.user_id, "timezone", zone="Europe/Berlin")


def press_on_checkin(prefix: str) -> Callable[[World, Member], Awaitable[Trigger]]:
    async def prepare(world: World, m: Member) -> Trigger:
        custom_id = button(m.checkin_dm, prefix)
        return lambda: _press(world, m.user_id, m.checkin_dm, custom_id)

    return prepare


snooze, skip, stop_button = (
    press_on_checkin("cr:checkin-snooze:"),
    press_on_checkin("cr:checkin-skip:"),
    press_on_checkin("cr:checkin-stop:"),
)


async def _press(world: World, user_id: int, message: JSON, custom_id: str) -> str:
    return await answered(await world.emulator.click(user_id, message, custom_id))


async def _slash(world: World, user_id: int, command: str, **options: object) -> str:
    return await answered(await world.slash(user_id, command, **options))


PAIRS = {
    "forget+edit": (forget, edit),
    "forget+delete": (forget, delete),
    "forget+reflect": (forget, reflect),
    "forget+decide": (forget, decide),
    "forget+reply": (forget, reply),
    "forget+pause": (forget, pause),
    "forget+stop": (forget, stop),
    "forget+snooze": (forget, snooze),
    "forget+skip": (forget, skip),
    "edit+delete": (edit, delete),
    "timezone+stop": (timezone, stop),
    "timezone+pause": (timezone, pause),
    "snooze+snooze": (snooze, snooze),
    "snooze+skip": (snooze, skip),
    "skip+stop-button": (skip, stop_button),
    "reply+snooze": (reply, snooze),
}


async def pending_rows(world: World, user_id: int) -> list[Checkin]:
    async with world.database.read() as session:
        return list(
            await session.scalars(
                select(Checkin).where(Checkin.user_id == user_id, Checkin.state == JobState.PENDING)
            )
        )


@pytest.mark.parametrize("pair", sorted(PAIRS))
async def test_a_pair_of_a_members_actions_at_once(world_any_db: World, pair: str) -> None:
    world = world_any_db
    first, second = PAIRS[pair]
    for round_number in range(ROUNDS):
        for order in ((first, second), (second, first)):
            member = await fresh_member(world)
            triggers = [await prepare(world, member) for prepare in order]
            answers = await asyncio.gather(*(fire() for fire in triggers))
            for each in answers:
                assert not any(fault in each for fault in OUR_FAULT), (pair, round_number, each)
            pending = await pending_rows(world, member.user_id)
            regular = [c for c in pending if c.point is None]
            snoozed = [c.point for c in pending if c.point is not None]
            assert len(regular) <= 1 and len(snoozed) == len(set(snoozed)), (pair, pending)
            if pair == "snooze+snooze":
                assert sum("Snoozed" in each for each in answers) == 1, answers
                assert sum("already answered" in each for each in answers) == 1, answers
    assert world.emulator.deduplicated_nonces == 0


async def test_a_snooze_pressed_twice_brings_one_dm_the_next_day(world_any_db: World) -> None:
    world = world_any_db
    member = await fresh_member(world)
    custom_id = button(member.checkin_dm, "cr:checkin-snooze:")
    await asyncio.gather(
        *(_press(world, member.user_id, member.checkin_dm, custom_id) for _ in range(2))
    )
    before = len(world.emulator.dm_messages(member.user_id))
    world.clock.advance(timedelta(days=2))  # past "tomorrow at their hour"
    cog: Any = world.bot.get_cog("Checkins")
    await cog.loop.tick()
    after = world.emulator.dm_messages(member.user_id)[before:]
    assert len([m for m in after if m.get("components")]) == 1
    assert world.emulator.deduplicated_nonces == 0


class LostARace(Exception):
    """What asyncpg raises for a deadlock (SQLSTATE 40P01), as the database layer sees it."""

    sqlstate = "40P01"


def losing(times: int, real: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """`real`, but its first `times` calls lose a deadlock."""
    calls = 0

    async def maybe_lose(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls <= times:
            raise DBAPIError("UPDATE ...", None, LostARace())
        return await real(*args, **kwargs)

    return maybe_lose


@pytest.mark.parametrize("losses", [1, 2])
async def test_a_write_that_loses_a_deadlock_is_tried_once_more(
    world: World, monkeypatch: pytest.MonkeyPatch, losses: int
) -> None:
    """Once: the member never knows. Twice: the clear 'changed at the same moment' answer,
    never an error id, and nothing saved twice."""
    decide = sys.modules["cogs.decide"]
    monkeypatch.setattr(decide, "add_decision", losing(losses, decide.add_decision))
    said = await _slash(world, world.alice, "decide", leaning="leaning yes", why="impact")
    member = await fresh_member(world)
    monkeypatch.setattr(store, "snooze", losing(losses, store.snooze))
    pressed = await _press(
        world, member.user_id, member.checkin_dm, button(member.checkin_dm, "cr:checkin-snooze:")
    )
    for answer in (said, pressed):
        assert not any(fault in answer for fault in OUR_FAULT), answer
    async with world.database.read() as session:
        decisions = await session.scalar(
            select(func.count()).select_from(Decision).where(Decision.user_id == world.alice)
        )
    if losses == 1:
        assert "leaning yes" in said.lower() and "Snoozed" in pressed
        assert decisions == 1
    else:
        assert "changed at the same moment" in said and "changed at the same moment" in pressed
        assert decisions == 0
