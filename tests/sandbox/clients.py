"""What the emulator tests share: an emulator that discord.py is pointed at, and a client with
commands running against it.

discord.py keeps where it connects in class attributes, so each emulator puts them back when it
stops; otherwise a later test would talk to a closed port.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import discord
import yarl
from discord import app_commands

from sandbox import Emulator, point_discord_at

ClientT = TypeVar("ClientT", bound=discord.Client)


@contextlib.asynccontextmanager
async def pointed_emulator() -> AsyncIterator[Emulator]:
    """A started emulator that discord.py talks to until it stops."""
    emulator = Emulator()
    await emulator.start()
    saved = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    point_discord_at(emulator.api_base, emulator.gateway_url)
    try:
        yield emulator
    finally:
        await emulator.stop()
        discord.http.Route.BASE = saved[0]
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(saved[1])


class TreeClient(discord.Client):
    """A client that hears guilds (and DMs, if asked), with a command tree to add commands to."""

    def __init__(self, *, dm_messages: bool = False, **options: Any) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        intents.dm_messages = dm_messages
        super().__init__(intents=intents, guild_ready_timeout=0.05, **options)
        self.tree = app_commands.CommandTree(self)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        # discord.py waits 5 s before re-identifying; the emulator has no identify rate limit.
        return None


@contextlib.asynccontextmanager
async def running(client: ClientT) -> AsyncIterator[ClientT]:
    """The client logged in, connected and ready (its guilds received); closed afterwards."""
    await client.login("test-token")
    runner = asyncio.create_task(client.connect())
    try:
        await asyncio.wait_for(client.wait_until_ready(), 10)
        yield client
    finally:
        await client.close()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
