"""Servers that removed the bot while it was down are forgotten at the next start.

Discord sends no GUILD_DELETE for a removal the bot was not connected to hear; the servers a
shard is given in READY are the truth. Each process forgets only its own shards' servers
(a server belongs to shard `(guild_id >> 22) % shard_count`): another process's servers are
not among those it was given, and must not look gone to it.
"""

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import func, select

from advice.clock import ManualClock
from advice.content import load_content
from cogs.core.bot import CrossroadsBot, SyncPolicy
from db import Database
from db.crypto import TextCipher, generate_key, parse_key
from db.guild_settings import Setting, change
from db.migrate import upgrade
from db.models import ConfigChange, GuildMember, GuildSettings, WeeklyPost
from db.server_stats import remember_member
from db.state import set_state
from sandbox import Emulator, point_discord_at
from tests.conftest import database_backends, database_url, reset_postgres_schema

BASE = 1_300_000_000_000_000_000 >> 22  # a plausible snowflake's timestamp part
SERVER_TABLES = (GuildSettings, ConfigChange, WeeklyPost, GuildMember)


def server_on_shard(emulator: Emulator, n: int, shard: int) -> int:
    """A server Discord gives to `shard` of two, with a channel and a moderator."""
    guild = emulator.add_guild(f"server{n}", id=((BASE + n) * 2 + shard) << 22)
    assert (guild >> 22) % 2 == shard
    emulator.add_text_channel(guild, "general")
    moderator = emulator.add_user(f"mod{n}")
    emulator.add_member(guild, moderator, manage_guild=True)
    return guild


async def keep_something_for(database: Database, guild: int, clock: ManualClock) -> None:
    """Settings, an audit row, a pending weekly post and a member who used the bot there."""
    async with database.transaction() as session:
        now = clock.now()
        await change(
            session, guild_id=guild, user_id=1, setting=Setting.CHANNEL, now=now, channel_id=5
        )
        await change(
            session,
            guild_id=guild,
            user_id=1,
            setting=Setting.WEEKLY_POST,
            now=now,
            weekly_post_enabled=True,
        )
        await remember_member(session, guild_id=guild, user_id=guild + 1, now=now)


async def rows_kept(database: Database, guild: int) -> int:
    async with database.read() as session:
        counts = [
            await session.scalar(
                select(func.count()).select_from(model).where(model.guild_id == guild)
            )
            for model in SERVER_TABLES
        ]
    return sum(count or 0 for count in counts)


async def run_shard(
    emulator: Emulator, database: Database, clock: ManualClock, cipher: TextCipher, shard: int
) -> list[int]:
    """Shard `shard` of two, in a process of its own, until it has checked its servers;
    which servers it forgot."""
    bot = CrossroadsBot(
        database=database,
        content=load_content(),
        cipher=cipher,
        clock=clock,
        sync=SyncPolicy.NEVER,
        shard_count=2,
        shard_ids=[shard],
    )
    checked: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()

    async def on_servers_checked(shard_id: int, forgotten: list[int]) -> None:
        if shard_id == shard and not checked.done():
            checked.set_result(forgotten)

    bot.add_listener(on_servers_checked)
    runner = asyncio.create_task(bot.start("test-token"))
    try:
        return await asyncio.wait_for(asyncio.shield(checked), 20)
    finally:
        await bot.close()
        await runner


@pytest.mark.parametrize("backend", database_backends())
async def test_a_server_removed_while_down_is_forgotten_by_its_own_shard_only(
    backend: str, tmp_path: Path, clock: ManualClock
) -> None:
    url = database_url(backend, tmp_path)
    if backend == "postgresql":
        await reset_postgres_schema(url)
    database = Database(url)
    await upgrade(database)
    emulator = Emulator()
    await emulator.start()
    point_discord_at(emulator.api_base, emulator.gateway_url)
    cipher = TextCipher(parse_key(generate_key()))
    try:
        stays, leaves = server_on_shard(emulator, 1, 0), server_on_shard(emulator, 2, 0)
        others_leaves = server_on_shard(emulator, 3, 1)
        for guild in (stays, leaves, others_leaves):
            await keep_something_for(database, guild, clock)
        full = await rows_kept(database, stays)
        assert full == 5  # settings, two changes, a weekly post, a member
        assert await run_shard(emulator, database, clock, cipher, 0) == []  # nothing gone yet

        # Removed while no process runs: no GUILD_DELETE reaches anyone.
        emulator.remove_guild(leaves)
        emulator.remove_guild(others_leaves)
        assert await run_shard(emulator, database, clock, cipher, 0) == [leaves]
        assert await rows_kept(database, leaves) == 0
        assert await rows_kept(database, stays) == full
        assert await rows_kept(database, others_leaves) == full  # shard 1's, not shard 0's

        assert await run_shard(emulator, database, clock, cipher, 1) == [others_leaves]
        assert await rows_kept(database, others_leaves) == 0
        assert await rows_kept(database, stays) == full
    finally:
        await emulator.stop()
        await database.dispose()
    assert emulator.violations == []


async def test_another_applications_database_is_left_alone(
    tmp_path: Path, clock: ManualClock
) -> None:
    """A bot started with another application's token on this database (a staging token,
    say) is in none of its servers: it must not take them all for gone."""
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'other.db'}")
    await upgrade(database)
    emulator = Emulator()
    await emulator.start()
    point_discord_at(emulator.api_base, emulator.gateway_url)
    try:
        guild = server_on_shard(emulator, 1, 0)
        await keep_something_for(database, guild, clock)
        emulator.remove_guild(guild)
        async with database.transaction() as session:
            await set_state(session, "servers:application-id", "1234", now=clock.now())
        cipher = TextCipher(parse_key(generate_key()))
        assert await run_shard(emulator, database, clock, cipher, 0) == []
        assert await rows_kept(database, guild) == 5
    finally:
        await emulator.stop()
        await database.dispose()
