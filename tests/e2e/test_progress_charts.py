"""/progress draws a member's chart once, shows it again while nothing it shows has changed,
and draws it anew after they write, whichever bot process took the write; reflections without
a rating are charted too, and every chart comes with its words."""

import io
from datetime import timedelta

from PIL import Image

from advice.progress import Leaning
from db import Database
from db.decisions import add_decision
from db.journal import add_reflection
from db.progress import progress_data
from tests.e2e.conftest import World, answer
from tests.e2e.test_journal import write

PNG = b"\x89PNG\r\n\x1a\n"


async def chart(world: World, user: int) -> bytes:
    png = world.emulator.attachment_bytes(await answer(world, user, "progress"), "progress.png")
    assert png.startswith(PNG)
    return png


async def test_progress_draws_once_until_the_member_writes(world: World) -> None:
    await write(world, world.alice, "purpose", "Because the work outlives me.", "2")
    await write(world, world.bob, "purpose", "Because the work outlives me.", "5")
    first = await chart(world, world.alice)
    assert world.bot.charts.drawn == 1
    assert await chart(world, world.alice) == first
    assert world.bot.charts.drawn == 1  # shown again, not drawn again
    assert await chart(world, world.bob) != first  # his own chart, not hers
    assert world.bot.charts.drawn == 2

    await write(world, world.alice, "money", "Enough is enough.", "4")  # /reflect
    changed = await chart(world, world.alice)
    assert changed != first and world.bot.charts.drawn == 3
    assert await chart(world, world.alice) == changed and world.bot.charts.drawn == 3


async def test_a_write_through_another_process_is_never_shown_stale(
    world_any_db: World,
) -> None:
    world = world_any_db
    await write(world, world.alice, "purpose", "Because I like the questions.", "3")
    first = await chart(world, world.alice)
    # Another bot process (another shard, or the one serving DMs) records her decision: this
    # process hears nothing of it, and has only the database to go by.
    other_process = Database(world.database.url)
    try:
        async with other_process.transaction() as session:
            await add_decision(
                session,
                world.bot.cipher,
                user_id=world.alice,
                leaning=Leaning.LEANING_YES,
                reason=None,
                now=world.clock.now(),
            )
    finally:
        await other_process.dispose()
    changed = await chart(world, world.alice)
    assert changed != first and world.bot.charts.drawn == 2


async def test_a_year_of_replies_without_ratings_is_charted(world: World) -> None:
    """Replies to DM check-ins carry no rating: each is still a mark on its point's row, and
    the chart says so in words."""
    world.bot.charts.clock = world.clock  # the bot's one clock, as the bot wires it
    content = world.bot.content
    began = world.clock.now()
    for index in range(18):
        async with world.database.transaction() as session:
            await add_reflection(
                session,
                world.bot.cipher,
                user_id=world.alice,
                point=content.points[index % 6].slug,
                text=f"reply {index}",
                comfort=None,
                submission_key=None,
                now=world.clock.now(),
            )
        world.clock.advance(timedelta(days=20))
    world.clock.set(began + timedelta(days=365))
    png = await chart(world, world.alice)
    assert Image.open(io.BytesIO(png)).size[0] == 800

    async with world.database.read() as session:
        data = await progress_data(session, world.bot.cipher, user_id=world.alice)
    drawn = await world.bot.charts.chart(data, content, member=world.alice)
    assert drawn is not None and drawn.png == png  # the same chart, served from the cache
    assert drawn.description == (
        "18 reflections (12 of them revisits) on all 6 points, from 5 Jan 2026 to 5 Jan 2027, "
        "none rated."
    )
    assert drawn.file().description == drawn.description


async def test_nothing_to_chart_is_no_chart(world: World) -> None:
    async with world.database.read() as session:
        data = await progress_data(session, world.bot.cipher, user_id=world.alice)
    assert await world.bot.charts.chart(data, world.bot.content, member=world.alice) is None
