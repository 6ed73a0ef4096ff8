"""/decide, /progress and /mydata through the emulator; privacy checks on both databases."""

import json
from datetime import timedelta
from pathlib import Path

from sqlalchemy import text

from db.decisions import decision_history
from db.models import Base
from db.mydata import export
from tests.e2e.conftest import World
from tests.e2e.test_journal import write

PNG = b"\x89PNG\r\n\x1a\n"


async def test_decide_keeps_a_history(world: World) -> None:
    await (await world.slash(world.alice, "decide", leaning="undecided")).message()
    world.clock.advance(timedelta(days=30))
    ix = await world.slash(world.alice, "decide", leaning="leaning yes", why="I miss research")
    answer = await ix.message()
    assert ix.is_ephemeral()
    assert "undecided → leaning yes (2 records)" in answer["content"]
    async with world.database.read() as session:
        history = await decision_history(session, world.bot.cipher, user_id=world.alice)
    assert [(s.leaning.label, s.reason) for s in history] == [
        ("undecided", None),
        ("leaning yes", "I miss research"),
    ]


async def test_decide_reason_over_the_limit_comes_back(world: World) -> None:
    reason = "r" * 1001  # Discord's client stops this; a forged interaction would not
    ix = await world.slash(
        world.alice, "decide", leaning="no", why=reason, enforce_client_limits=False
    )
    answer = await ix.message()
    assert "1001 characters" in answer["content"]
    assert world.emulator.attachment_bytes(answer, "your-reason.txt") == reason.encode()


async def test_progress_starts_friendly_then_charts(world: World) -> None:
    ix = await world.slash(world.alice, "progress")
    assert (await ix.response())["type"] == 5  # deferred: the chart may take a moment
    start = await ix.message()
    assert "Nothing to chart yet" in start["content"] and not start["attachments"]
    await write(world, world.alice, "purpose", "Because the work outlives me.", "2")
    world.clock.advance(timedelta(days=100))
    await write(world, world.alice, "purpose", "Because I like the questions.", "4")
    await write(world, world.alice, "money", "Enough is enough.", "3")
    await (await world.slash(world.alice, "decide", leaning="leaning yes")).message()
    ix = await world.slash(world.alice, "progress")
    answer = await ix.message()
    assert ix.is_ephemeral()
    embed = answer["embeds"][0]
    assert "▰▰▱▱▱▱ 2/6" in embed["description"]
    assert "Consistency" in embed["description"]
    # Then vs now, for the point written about twice: what, when, and how comfort moved.
    then_now = next(f for f in embed["fields"] if f["name"].startswith("1. "))
    assert then_now["name"].endswith("· 2 reflections · comfort 2 → 4")
    assert "Because the work outlives me." in then_now["value"]
    assert "Because I like the questions." in then_now["value"]
    assert "2/5" in then_now["value"] and "4/5" in then_now["value"]
    assert "leaning yes" in str(embed["fields"])
    assert world.emulator.attachment_bytes(answer, "progress.png").startswith(PNG)


async def test_mydata_show_export_and_forget(world_any_db: World) -> None:
    world = world_any_db
    await write(world, world.alice, "purpose", "mine to keep")
    await write(world, world.bob, "purpose", "bob's own")
    await (await world.slash(world.alice, "decide", leaning="no", why="not yet")).message()
    shown = await (await world.slash(world.alice, "mydata show")).message()
    assert "1 on 1 of 6 points" in str(shown["embeds"][0])
    ix = await world.slash(world.alice, "mydata export")
    exported = await ix.message()
    assert ix.is_ephemeral()
    names = sorted(a["filename"] for a in exported["attachments"])
    assert names[0].endswith(".json") and names[1].endswith(".md")
    data = json.loads(world.emulator.attachment_bytes(exported, names[0]))
    async with world.database.read() as session:
        expected = await export(
            session, world.bot.cipher, user_id=world.alice, now=world.clock.now()
        )
    assert data == expected
    assert [r["text"] for r in data["reflections"]] == ["mine to keep"]
    markdown = world.emulator.attachment_bytes(exported, names[1]).decode()
    assert "mine to keep" in markdown and "bob's own" not in markdown

    ask = await (await world.slash(world.alice, "mydata forget")).message()
    refused = await world.emulator.click(world.bob, ask, f"cr:mydata-forget:{world.alice}")
    assert "someone else" in (await refused.message())["content"]
    done = await (
        await world.emulator.click(world.alice, ask, f"cr:mydata-forget:{world.alice}")
    ).message()
    assert "deleted" in done["content"]
    async with world.database.read() as session:
        for table in Base.metadata.sorted_tables:
            column = "user_id" if "user_id" in table.c else "id" if table.name == "users" else None
            if column:
                left = await session.scalar(
                    text(f"SELECT COUNT(*) FROM {table.name} WHERE {column} = :u"),
                    {"u": world.alice},
                )
                assert left == 0, table.name
    after = await (await world.slash(world.alice, "mydata show")).message()
    assert "stores nothing about you" in after["content"]
    bob = await (await world.slash(world.bob, "mydata show")).message()
    assert "1 on 1 of 6 points" in str(bob["embeds"][0])


CANARY = "canary-e2e-5b1d-never-in-clear"


async def test_canary_reflection_is_encrypted_at_rest(world_any_db: World, tmp_path: Path) -> None:
    world = world_any_db
    await write(world, world.alice, "purpose", f"secret {CANARY}")
    await (await world.slash(world.alice, "decide", leaning="yes", why=CANARY)).message()
    if world.database.is_sqlite:
        files = [p for p in tmp_path.iterdir() if p.name.startswith("crossroads.db")]
        assert any(p.name.endswith("-wal") for p in files)
        for path in files:
            assert CANARY.encode() not in path.read_bytes(), path.name
    else:
        async with world.database.read() as session:
            for table in ("reflections", "decisions"):
                dump = await session.scalar(text(f"SELECT string_agg(t::text, '|') FROM {table} t"))
                assert dump and CANARY not in dump and CANARY.encode().hex() not in dump
