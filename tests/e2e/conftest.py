"""The real bot, real discord.py, over real HTTP and websocket to the emulator on 127.0.0.1.

Every test ends by asserting the emulator recorded no violation: a request that breaks
Discord's spec or limits, or an interaction answered late or twice, fails the test. Without
Discord's spec beside the checkout the emulator could not check bodies against it, so a green
run would prove less than it says: every test here is skipped instead, saying why.
"""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from advice.clock import ManualClock
from advice.content import load_content
from cogs.core.bot import CrossroadsBot, SyncPolicy
from cogs.core.prometheus import PrometheusMetrics
from db import Database
from db.crypto import TextCipher, generate_key, parse_key
from db.migrate import upgrade
from sandbox import DEFAULT_SPEC_PATH, Emulator, Interaction, point_discord_at
from tests.conftest import database_backends, database_url, reset_postgres_schema


@pytest.fixture(autouse=True)
def discord_spec() -> None:
    """Skip, naming the missing file, before anything starts (autouse fixtures come first)."""
    if not DEFAULT_SPEC_PATH.is_file():
        pytest.skip(
            f"Discord's OpenAPI spec is missing at {DEFAULT_SPEC_PATH}: end-to-end tests check "
            "every request against it (shared/discord-api-spec must sit beside the checkout)"
        )


@dataclass
class World:
    emulator: Emulator
    bot: CrossroadsBot
    database: Database
    clock: ManualClock
    guild_id: int
    channel_id: int
    alice: int
    bob: int
    moderator: int
    extra: dict[str, object] = field(default_factory=dict)

    async def slash(
        self, user_id: int, command: str, *, enforce_client_limits: bool = True, **options: object
    ) -> Interaction:
        """A slash command from the test server's channel; options as name=value."""
        return await self.emulator.slash(
            user_id,
            command,
            options=options or None,
            guild_id=self.guild_id,
            channel_id=self.channel_id,
            enforce_client_limits=enforce_client_limits,
        )

    async def dm_slash(self, user_id: int, command: str, **options: object) -> Interaction:
        return await self.emulator.slash(user_id, command, options=options or None)


async def answer(world: World, user_id: int, command: str, **options: object) -> dict[str, Any]:
    interaction = await world.slash(user_id, command, **options)
    message = await interaction.message()
    assert interaction.is_ephemeral(), f"/{command} answered in public"
    return message


def text_of(message: dict[str, Any]) -> str:
    parts = [message.get("content") or ""]
    for embed in message.get("embeds") or []:
        parts += [embed.get("title") or "", embed.get("description") or ""]
        parts += [f"{f['name']}\n{f['value']}" for f in embed.get("fields") or []]
        parts.append((embed.get("footer") or {}).get("text") or "")
    return "\n".join(parts)


async def start_world(
    database: Database,
    clock: ManualClock,
    *,
    dev_guild: bool = False,
    tick_seconds: float | None = None,
    **bot_options: Any,
) -> tuple[World, asyncio.Task[None]]:
    """The emulator with a test server of three members, and the bot connected to it.

    With `dev_guild` the test server is the bot's DEV_GUILD_ID; `bot_options` go to the bot
    (a job lease, a request rate).
    """
    emulator = Emulator()
    await emulator.start()
    point_discord_at(emulator.api_base, emulator.gateway_url)
    guild_id = emulator.add_guild("Test Server")
    channel_id = emulator.add_text_channel(guild_id, "general")
    alice, bob, moderator = (emulator.add_user(n) for n in ("alice", "bob", "mod"))
    emulator.add_member(guild_id, alice)
    emulator.add_member(guild_id, bob)
    emulator.add_member(guild_id, moderator, manage_guild=True)
    bot = CrossroadsBot(
        database=database,
        content=load_content(),
        cipher=TextCipher(parse_key(generate_key())),
        clock=clock,
        dev_guild_id=guild_id if dev_guild else None,
        sync=SyncPolicy.AUTO,
        # By default tests tick the check-in loop themselves, so they know when it ran.
        tick_seconds=tick_seconds,
        # Counted for real in every end-to-end test, though only test_metrics scrapes it.
        metrics=PrometheusMetrics(),
        **bot_options,
    )
    runner = asyncio.create_task(bot.start("test-token"))
    ready = asyncio.create_task(emulator.wait_until_ready())
    await asyncio.wait({runner, ready}, return_when=asyncio.FIRST_COMPLETED)
    if runner.done():  # the bot died while starting: show why instead of a time-out
        ready.cancel()
        await emulator.stop()
        runner.result()
    await ready
    world = World(emulator, bot, database, clock, guild_id, channel_id, alice, bob, moderator)
    return world, runner


async def stop_world(world: World, runner: asyncio.Task[None]) -> None:
    await world.bot.close()
    await runner
    await world.emulator.stop()


@pytest.fixture
async def world(tmp_path: Path, clock: ManualClock) -> AsyncIterator[World]:
    """The bot on an SQLite file, connected to a fresh emulator."""
    async for each in _world("sqlite", tmp_path, clock):
        yield each


@pytest.fixture(params=database_backends())
async def world_any_db(
    request: pytest.FixtureRequest, tmp_path: Path, clock: ManualClock
) -> AsyncIterator[World]:
    """The same, once on SQLite and once on PostgreSQL (when TEST_DATABASE_URL is set)."""
    async for each in _world(request.param, tmp_path, clock):
        yield each


async def _world(backend: str, tmp_path: Path, clock: ManualClock) -> AsyncIterator[World]:
    url = database_url(backend, tmp_path)
    if backend == "postgresql":
        await reset_postgres_schema(url)
    database = Database(url)
    await upgrade(database)
    world, runner = await start_world(database, clock)
    try:
        yield world
    finally:
        await stop_world(world, runner)
        await database.dispose()
    assert world.emulator.violations == [], world.emulator.violations


@pytest.fixture
async def paced_emulator() -> AsyncIterator[Emulator]:
    """An emulator enforcing Discord's global 50 requests a second, for real bot processes."""
    emulator = Emulator(global_rate_limit=50, record_requests=False)
    await emulator.start()
    yield emulator
    await emulator.stop()
