"""Sync slash commands only when their definition changed (Discord rate-limits syncing)."""

import hashlib
import json
import logging
from typing import Any

import discord
from discord import app_commands

from advice.clock import Clock
from db import Database
from db.state import get_state, set_state

log = logging.getLogger(__name__)


def command_payload(
    tree: app_commands.CommandTree[Any], guild: discord.abc.Snowflake | None
) -> list[Any]:
    commands = sorted(tree.get_commands(guild=guild), key=lambda c: c.name)
    return [command.to_dict(tree) for command in commands]


def command_hash(payload: list[Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


async def sync_commands(
    tree: app_commands.CommandTree,
    *,
    database: Database,
    clock: Clock,
    application_id: int,
    guild_id: int | None,
    force: bool,
) -> bool:
    """Sync to `guild_id` (a dev guild) or globally when needed; True if a sync was sent."""
    guild = discord.Object(guild_id) if guild_id else None
    if guild is not None:
        tree.copy_global_to(guild=guild)
    digest = command_hash(command_payload(tree, guild))
    key = f"commands:{application_id}:{guild_id or 'global'}"
    async with database.read() as session:
        unchanged = await get_state(session, key) == digest
    if unchanged and not force:
        log.info("slash commands unchanged since the last sync; not syncing")
        return False
    synced = await tree.sync(guild=guild)
    async with database.transaction() as session:
        await set_state(session, key, digest, now=clock.now())
    log.info(
        "synced %d slash commands %s", len(synced), f"to guild {guild_id}" if guild else "globally"
    )
    return True
