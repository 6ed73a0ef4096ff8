"""The bot: Discord client, its dependencies, and the extensions that give it commands."""

import logging
from enum import StrEnum

import discord
from discord.ext import commands

from advice.clock import Clock
from advice.content import Content
from cogs import EXTENSIONS
from cogs._routing import Router
from cogs._sync import sync_commands
from cogs._tree import CrossroadsTree
from db import Database
from db.crypto import TextCipher

log = logging.getLogger(__name__)


class SyncPolicy(StrEnum):
    AUTO = "auto"  # only when the command definitions changed
    FORCE = "force"  # `python bot.py sync`, and the sandbox (a fresh emulator knows nothing)
    NEVER = "never"


def bot_intents() -> discord.Intents:
    """Guilds only: slash commands need no privileged intent and no member list."""
    intents = discord.Intents.none()
    intents.guilds = True
    return intents


class CrossroadsBot(commands.Bot):
    def __init__(
        self,
        *,
        database: Database,
        content: Content,
        cipher: TextCipher,
        clock: Clock,
        dev_guild_id: int | None = None,
        sync: SyncPolicy = SyncPolicy.AUTO,
    ) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            help_command=None,
            intents=bot_intents(),
            tree_cls=CrossroadsTree,
            allowed_mentions=discord.AllowedMentions.none(),
            member_cache_flags=discord.MemberCacheFlags.none(),
            chunk_guilds_at_startup=False,
            max_messages=None,
        )
        self.database = database
        self.content = content
        self.cipher = cipher
        self.clock = clock
        self.router = Router()
        self.dev_guild_id = dev_guild_id
        self.sync_policy = sync

    async def setup_hook(self) -> None:
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        if self.sync_policy is not SyncPolicy.NEVER:
            assert self.application_id is not None  # set by login() before this hook
            await sync_commands(
                self.tree,
                database=self.database,
                clock=self.clock,
                application_id=self.application_id,
                guild_id=self.dev_guild_id,
                force=self.sync_policy is SyncPolicy.FORCE,
            )

    async def on_ready(self) -> None:
        log.info(
            "connected as %s (%s) to %d servers", self.user, self.application_id, len(self.guilds)
        )

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        if interaction.type in (
            discord.InteractionType.component,
            discord.InteractionType.modal_submit,
        ):
            await self.router.dispatch(interaction)
