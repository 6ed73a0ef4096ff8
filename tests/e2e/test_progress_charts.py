"""/progress draws a member's chart once, shows it again while nothing it shows has changed,
and draws it anew after they write, whichever bot process took the write."""

from advice.progress import Leaning
from db import Database
from db.decisions import add_decision
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
