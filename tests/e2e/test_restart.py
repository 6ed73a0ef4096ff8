"""A restart: commands are not re-synced, and old buttons and open forms keep working."""

import asyncio
from datetime import timedelta
from pathlib import Path

from advice.clock import ManualClock
from advice.content import load_content
from cogs.core.bot import CrossroadsBot, SyncPolicy
from db import Database
from db.crypto import TextCipher, generate_key, parse_key
from db.journal import marks
from db.migrate import upgrade
from db.state import set_state
from sandbox import Emulator, point_discord_at
from tests.e2e.conftest import World


async def test_restart_keeps_buttons_and_forms_and_syncs_only_on_change(
    tmp_path: Path, clock: ManualClock
) -> None:
    emulator = Emulator()
    await emulator.start()
    point_discord_at(emulator.api_base, emulator.gateway_url)
    guild = emulator.add_guild()
    channel = emulator.add_text_channel(guild)
    alice = emulator.add_user("alice")
    emulator.add_member(guild, alice)
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'restart.db'}")
    await upgrade(database)
    cipher = TextCipher(parse_key(generate_key()))

    async def run_bot() -> tuple[CrossroadsBot, asyncio.Task[None]]:
        bot = CrossroadsBot(
            database=database,
            content=load_content(),
            cipher=cipher,
            clock=clock,
            sync=SyncPolicy.AUTO,
        )
        runner = asyncio.create_task(bot.start("test-token"))
        await emulator.wait_until_ready()
        return bot, runner

    def command_puts() -> int:
        return sum(
            1 for r in emulator.requests if r.method == "PUT" and r.path.endswith("/commands")
        )

    try:
        bot, runner = await run_bot()
        page = await (
            await emulator.slash(alice, "advice purpose", guild_id=guild, channel_id=channel)
        ).message()
        open_form = await (await emulator.click(alice, page, "cr:reflect:purpose")).modal()
        await bot.close()
        await runner

        bot, runner = await run_bot()
        assert command_puts() == 1  # unchanged definitions: no second sync
        saved = await (
            await emulator.submit_modal(alice, open_form, {"text": "typed before the restart"})
        ).message()
        assert "Saved" in saved["content"]
        clock.advance(timedelta(days=91))
        again = await (await emulator.click(alice, page, "cr:reflect:purpose")).modal()
        assert again["title"].startswith("Revisit")
        async with database.transaction() as session:
            await set_state(
                session, f"commands:{bot.application_id}:global", "old", now=clock.now()
            )
        await bot.close()
        await runner

        bot, runner = await run_bot()
        assert command_puts() == 2  # the stored hash differs: synced once more
        await bot.close()
        await runner
        async with database.read() as session:
            assert len(await marks(session, user_id=alice)) == 1
    finally:
        await emulator.stop()
        await database.dispose()
    assert emulator.violations == []


async def test_answered_interactions_leave_nothing_behind_in_the_bot(world: World) -> None:
    """Every button is routed by custom_id, so no view needs to stay in memory afterwards
    (discord.py would otherwise keep each ephemeral view, with a timer, for 15 minutes)."""
    import gc

    from cogs.core.routing import RoutedButton

    for _ in range(20):
        await (await world.slash(world.alice, "advice purpose")).message()
    gc.collect()
    alive = [o for o in gc.get_objects() if isinstance(o, RoutedButton)]
    assert alive == []


async def test_dev_guild_gets_the_commands_and_global_stays_empty(
    tmp_path: Path, clock: ManualClock
) -> None:
    from tests.e2e.conftest import start_world, stop_world

    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'dev.db'}")
    await upgrade(database)
    world, runner = await start_world(database, clock, dev_guild=True)
    try:
        registered = {c["name"] for c in world.emulator.registered_commands(world.guild_id)}
        assert {"advice", "reflect", "journal", "help"} <= registered
        assert world.emulator.registered_commands() == []
        message = await (await world.slash(world.alice, "advice fame")).message()
        assert message["embeds"][0]["title"].startswith("5.")
    finally:
        await stop_world(world, runner)
        await database.dispose()
    assert world.emulator.violations == []
