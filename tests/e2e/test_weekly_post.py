"""The weekly post end to end: exactly once a week for two months across a restart, its Reflect
button, and switching itself off when the channel is gone or permission is lost.

The loop is ticked explicitly and time moves by the injected clock.
"""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from advice.content import load_content
from cogs.core.bot import CrossroadsBot, SyncPolicy
from db.guild_settings import server_settings
from db.journal import marks
from tests.e2e.conftest import World, answer, text_of

MONDAY_17 = datetime(2026, 1, 5, 17, tzinfo=UTC)  # the default slot; the clock starts 09:00
ORDER = list(load_content().slugs)
SEND_MESSAGES = 1 << 11


async def tick(world: World) -> int:
    cog: Any = world.bot.get_cog("WeeklyPosts")
    return int(await cog.loop.tick())


def posts(world: World) -> list[dict[str, Any]]:
    return world.emulator.channel_messages(world.channel_id)


async def turn_on(world: World) -> None:
    await answer(world, world.moderator, "config channel", channel=world.channel_id)
    reply = await answer(world, world.moderator, "config weekly-post", enabled=True)
    assert f"<t:{int(MONDAY_17.timestamp())}:F>" in reply["content"]


async def restart(world: World) -> None:
    """A new bot on the same database and emulator, as after a redeploy."""
    await world.bot.close()
    world.bot = CrossroadsBot(
        database=world.database,
        content=world.bot.content,
        cipher=world.bot.cipher,
        clock=world.clock,
        sync=SyncPolicy.AUTO,
        tick_seconds=None,
    )
    world.extra["runner"] = asyncio.create_task(world.bot.start("test-token"))
    await world.emulator.wait_until_ready()


async def test_one_post_a_week_for_two_months_across_a_restart(world_any_db: World) -> None:
    world = world_any_db
    await turn_on(world)
    assert await tick(world) == 0  # 09:00: not yet
    weeks = 9
    for week in range(weeks):
        world.clock.set(MONDAY_17 + timedelta(weeks=week, minutes=1))
        assert await tick(world) == 1, week
        assert await tick(world) == 0, week  # a second tick finds nothing more
        if week == 4:
            await restart(world)
            assert await tick(world) == 0
        world.clock.advance(timedelta(days=3))
        assert await tick(world) == 0
    sent = posts(world)
    titles = [embed["title"] for post in sent for embed in post["embeds"]]
    expected = [load_content().point(ORDER[w % len(ORDER)]).heading for w in range(weeks)]
    assert titles == [f"Point of the week: {heading}"[:256] for heading in expected]
    assert len({post["nonce"] for post in sent}) == weeks
    shown = text_of(await answer(world, world.moderator, "config show"))
    assert load_content().point(ORDER[weeks % len(ORDER)]).title in shown  # the next point
    runner = world.extra.get("runner")
    if isinstance(runner, asyncio.Task):
        await world.bot.close()
        await runner


async def test_the_posts_button_opens_the_pressing_members_own_form(world: World) -> None:
    await turn_on(world)
    world.clock.set(MONDAY_17)
    await tick(world)
    [post] = posts(world)
    modal = await (await world.emulator.click(world.bob, post, "cr:reflect:purpose")).modal()
    saved = await world.emulator.submit_modal(world.bob, modal, {"text": "Bob's own words."})
    assert "Only you can see it" in (await saved.message())["content"]
    assert saved.is_ephemeral()
    async with world.database.read() as session:
        assert [m.point for m in await marks(session, user_id=world.bob)] == ["purpose"]
        assert await marks(session, user_id=world.alice) == []
    assert len(posts(world)) == 1  # the reflection stayed private


async def test_a_deleted_channel_switches_the_post_off_and_show_says_why(world: World) -> None:
    await turn_on(world)
    waiter = asyncio.ensure_future(world.bot.wait_for("guild_channel_delete", timeout=5))
    world.emulator.delete_channel(world.channel_id)
    await waiter
    world.clock.set(MONDAY_17)
    assert await tick(world) == 0
    world.channel_id = world.emulator.add_channel(world.guild_id, "new-general")
    shown = text_of(await answer(world, world.moderator, "config show"))
    assert "switched it off" in shown and "no longer exists" in shown
    async with world.database.read() as session:
        assert not (await server_settings(session, world.guild_id)).weekly_post_enabled
    world.clock.advance(timedelta(weeks=1))
    assert await tick(world) == 0  # off stays off


async def test_lost_permission_switches_the_post_off(world: World) -> None:
    await turn_on(world)
    world.emulator.set_permissions(
        world.channel_id, world.emulator.application_id, deny=SEND_MESSAGES
    )
    world.clock.set(MONDAY_17)
    assert await tick(world) == 0
    assert posts(world) == []
    shown = text_of(await answer(world, world.moderator, "config show"))
    assert "lost permission" in shown and "Crossroads itself" in shown


async def test_a_post_missed_by_a_long_outage_is_skipped_not_sent_late(world: World) -> None:
    await turn_on(world)
    world.clock.set(MONDAY_17 + timedelta(days=2))  # the bot was down all Monday and Tuesday
    assert await tick(world) == 0
    world.clock.set(MONDAY_17 + timedelta(weeks=1))
    assert await tick(world) == 1
    [post] = posts(world)
    assert post["embeds"][0]["title"].endswith(load_content().point(ORDER[0]).heading)


async def test_after_eight_days_down_the_slot_missed_by_hours_is_still_posted(
    world: World,
) -> None:
    await turn_on(world)
    # Down from before the first slot until 2 h 42 min after the second.
    world.clock.set(MONDAY_17 + timedelta(weeks=1, hours=2, minutes=42))
    assert await tick(world) == 1
    [post] = posts(world)
    assert post["embeds"][0]["title"].endswith(load_content().point(ORDER[0]).heading)
    world.clock.set(MONDAY_17 + timedelta(weeks=1, hours=20))
    assert await tick(world) == 0  # only one: the long-missed slot is not posted as well
    world.clock.set(MONDAY_17 + timedelta(weeks=2))
    assert await tick(world) == 1  # and the week after comes as usual
    assert len(posts(world)) == 2


async def test_a_server_error_is_retried_and_the_post_goes_out_once(world: World) -> None:
    await turn_on(world)
    world.emulator.fail_next("POST", rf"/channels/{world.channel_id}/messages", status=503)
    world.clock.set(MONDAY_17)
    assert await tick(world) == 0
    world.clock.advance(timedelta(minutes=2))
    assert await tick(world) == 1
    assert len(posts(world)) == 1
