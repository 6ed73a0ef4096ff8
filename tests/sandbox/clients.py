"""What the emulator tests share: an emulator that discord.py is pointed at, and clients with
commands running against it.

discord.py keeps where it connects in class attributes, so each emulator puts them back when it
stops; otherwise a later test would talk to a closed port.

discord.py only logs what a handler raises (a command, a view, a modal, an event), so a failed
``assert`` inside one would pass unseen. The clients here keep those exceptions in ``failures``
and ``running`` fails the test on them; views and modals do the same through ``Recorded``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import discord
import yarl
from discord import app_commands

from sandbox import Emulator, point_discord_at

ClientT = TypeVar("ClientT", bound=discord.Client)


@contextlib.asynccontextmanager
async def pointed_emulator(**options: Any) -> AsyncIterator[Emulator]:
    """A started emulator that discord.py talks to until it stops."""
    emulator = Emulator(**options)
    await emulator.start()
    saved = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    point_discord_at(emulator.api_base, emulator.gateway_url)
    try:
        yield emulator
    finally:
        await emulator.stop()
        discord.http.Route.BASE = saved[0]
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(saved[1])


def failures_of(client: object) -> list[BaseException]:
    """Where a client built here keeps what its handlers raised."""
    failures: list[BaseException] = client.__dict__.setdefault("failures", [])
    return failures


def command_tree(client: discord.Client) -> app_commands.CommandTree[Any]:
    """A command tree whose commands' exceptions go to the client's ``failures``."""
    tree: app_commands.CommandTree[Any] = app_commands.CommandTree(client)

    @tree.error
    async def failed(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        failures_of(client).append(error)

    return tree


class Recorded:
    """For views and modals: what a callback raises goes to the client's ``failures``."""

    async def on_error(self, interaction: discord.Interaction, error: Exception, *_: Any) -> None:
        failures_of(interaction.client).append(error)


class KeepsFailures:
    """For clients: what an event handler raises goes to ``failures``."""

    async def on_error(self, event_method: str, /, *args: Any, **kwargs: Any) -> None:
        failures_of(self).append(sys.exc_info()[1] or RuntimeError(event_method))


class TreeClient(KeepsFailures, discord.Client):
    """A client that hears guilds (and DMs, if asked), with a command tree to add commands to."""

    def __init__(self, *, dm_messages: bool = False, **options: Any) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        intents.dm_messages = dm_messages
        super().__init__(intents=intents, guild_ready_timeout=0.05, **options)
        self.tree = command_tree(self)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        # discord.py waits 5 s before re-identifying; the emulator has no identify rate limit.
        return None


@contextlib.asynccontextmanager
async def running(client: ClientT) -> AsyncIterator[ClientT]:
    """The client logged in, connected and ready (its guilds received); closed afterwards, and
    the test fails if one of its handlers raised meanwhile."""
    await client.login("test-token")
    runner = asyncio.create_task(client.connect())
    try:
        await asyncio.wait_for(client.wait_until_ready(), 10)
        yield client
    finally:
        await client.close()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
    assert failures_of(client) == [], f"a handler raised: {failures_of(client)!r}"
