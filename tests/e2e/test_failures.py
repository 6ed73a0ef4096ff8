"""When storage fails mid-run: a clear private answer, nothing saved lost, nothing typed lost."""

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from db import Database
from sandbox import Interaction
from tests.e2e.conftest import World
from tests.e2e.test_journal import write
from tests.e2e.test_reflect import entries, open_reflect

GONE = "postgresql+asyncpg://nobody@127.0.0.1:9/unreachable"


async def test_database_gone_mid_run_hands_back_what_was_typed(world: World) -> None:
    await write(world, world.alice, "purpose", "saved before the outage")
    modal = await open_reflect(world, world.alice, "money")
    healthy, world.bot.database = world.bot.database, Database(GONE)
    try:
        ix = await world.emulator.submit_modal(world.alice, modal, {"text": "typed during it"})
        answer = await ix.message()
        assert ix.is_ephemeral()
        assert "can't reach its storage" in answer["content"]
        assert world.emulator.attachment_bytes(answer, "what-you-wrote.txt") == b"typed during it"
        ix = await world.slash(world.alice, "decide", leaning="no", why="a reason worth keeping")
        answer = await ix.message()
        assert "nothing was saved" in answer["content"]
        assert b"a reason worth keeping" in world.emulator.attachment_bytes(
            answer, "what-you-wrote.txt"
        )
        listing = await (await world.slash(world.alice, "journal list")).message()
        assert "can't reach its storage" in listing["content"]
        assert "Traceback" not in str(listing)
    finally:
        await world.bot.database.dispose()
        world.bot.database = healthy
    assert [e.text for e in await entries(world, world.alice)] == ["saved before the outage"]


async def test_read_only_database_refuses_writes_but_still_reads(world: World) -> None:
    await write(world, world.alice, "purpose", "already here")
    path = world.database.url.database
    healthy, world.bot.database = (
        world.bot.database,
        Database(f"sqlite+aiosqlite:///file:{path}?mode=ro&uri=true"),
    )
    try:
        listing = await (await world.slash(world.alice, "journal list")).message()
        assert "already here" in str(listing["embeds"])
        modal = await open_reflect(world, world.alice, "fame")
        ix = await world.emulator.submit_modal(world.alice, modal, {"text": "not lost"})
        answer = await ix.message()
        assert "nothing was saved" in answer["content"]
        assert world.emulator.attachment_bytes(answer, "what-you-wrote.txt") == b"not lost"
    finally:
        await world.bot.database.dispose()
        world.bot.database = healthy


async def test_a_bug_gets_an_apology_with_an_error_id(world: World, monkeypatch, caplog) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("simulated bug")

    # The module discord.py loaded as the extension, which is the one the command calls.
    monkeypatch.setattr(sys.modules["cogs.help"], "help_embed", broken)
    ix = await world.slash(world.alice, "help")
    answer = await ix.message()
    assert ix.is_ephemeral()
    assert "something went wrong on our side" in answer["content"]
    error_id = answer["content"].split("`")[1]
    assert "simulated bug" not in answer["content"]
    logged = [r for r in caplog.records if error_id in r.getMessage()]
    assert logged and logged[0].exc_info is not None  # the operator gets the traceback


async def test_every_write_acknowledges_before_touching_a_slow_database(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A busy database must never cost the member Discord's response window.

    Every write transaction is held shut until the test has seen the interaction
    acknowledged; a handler that wrote before deferring would never be acknowledged.
    """
    await write(world, world.alice, "purpose", "to delete later")
    [entry] = await entries(world, world.alice)
    modal = await open_reflect(world, world.alice, "money")
    database = world.bot.database
    fast_transaction, fast_write = database.transaction, database.write
    database_free = asyncio.Event()

    @asynccontextmanager
    async def held_transaction() -> AsyncIterator[AsyncSession]:
        await database_free.wait()
        async with fast_transaction() as session:
            yield session

    @asynccontextmanager
    async def held_write() -> AsyncIterator[AsyncConnection]:  # a write without the ORM
        await database_free.wait()
        async with fast_write() as connection:
            yield connection

    monkeypatch.setattr(database, "transaction", held_transaction)
    monkeypatch.setattr(database, "write", held_write)

    async def answered_after_acknowledging(ix: Interaction) -> str:
        database_free.clear()
        first = await ix.response(timeout=2)  # arrives only if nothing waited on the database
        assert first["type"] in (5, 6), first  # deferred: "thinking…" or a message update
        database_free.set()
        return str((await ix.message())["content"])

    saved = await world.emulator.submit_modal(world.alice, modal, {"text": "slow but safe"})
    assert "Saved" in await answered_after_acknowledging(saved)
    decided = await world.slash(world.alice, "decide", leaning="no")
    assert "Recorded" in await answered_after_acknowledging(decided)
    ask = await (await world.slash(world.alice, "journal delete", entry=str(entry.id))).message()
    deleted = await world.emulator.click(
        world.alice, ask, f"cr:journal-delete:{world.alice}:{entry.id}"
    )
    assert await answered_after_acknowledging(deleted) == "Deleted."
    ask = await (await world.slash(world.alice, "mydata forget")).message()
    forgot = await world.emulator.click(world.alice, ask, f"cr:mydata-forget:{world.alice}")
    assert "deleted" in await answered_after_acknowledging(forgot)


async def test_a_read_stuck_before_the_first_answer_still_answers_in_time(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read that must finish before answering (a form opens with what was written before,
    a page lists entries) gives up in time: the member learns storage is unavailable instead
    of Discord's "The application did not respond", and the emulator sees no late answer."""
    await write(world, world.alice, "purpose", "written before")
    database = world.bot.database
    fast_read = database.read
    never = asyncio.Event()

    @asynccontextmanager
    async def stuck_read(*, within: float | None = None) -> AsyncIterator[AsyncSession]:
        async with fast_read(within=within) as session:
            await never.wait()  # a query that does not come back
            yield session

    monkeypatch.setattr(database, "read", stuck_read)
    for command, options in (
        ("reflect", {"point": "money"}),
        ("journal list", {}),
        ("journal edit", {"entry": "1"}),
        ("mydata show", {}),
        ("checkin status", {}),
    ):
        answer = await (await world.slash(world.alice, command, **options)).message()
        assert "can't reach its storage" in answer["content"], command
    choices = await world.emulator.autocomplete(
        world.alice, "journal edit", focused="entry", value="wri"
    )
    assert choices == []  # an empty list in time, not a spinner
    assert world.emulator.violations == []
