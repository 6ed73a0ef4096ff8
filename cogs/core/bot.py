"""The bot: Discord client, its dependencies, and the extensions that give it commands."""

import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from enum import StrEnum

import discord
from discord.ext import commands
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from advice.clock import Clock
from advice.content import Content
from cogs import EXTENSIONS
from cogs.core.charts.service import Charts
from cogs.core.checks import ANY_INSTALL, ANYWHERE
from cogs.core.conversation import Conversation
from cogs.core.metrics import Metrics
from cogs.core.routing import Router
from cogs.core.sync import sync_commands
from cogs.core.tree import CrossroadsTree
from db import Database
from db.crypto import TextCipher
from db.database import BEFORE_ANSWER_S
from db.locks import lock_member
from db.server_stats import lock_and_remember, remember_member

log = logging.getLogger(__name__)


class SyncPolicy(StrEnum):
    AUTO = "auto"  # only when the command definitions changed
    FORCE = "force"  # `python bot.py sync`, and the sandbox (a fresh emulator knows nothing)
    NEVER = "never"


def bot_intents() -> discord.Intents:
    """Guilds, DMs (conversation and replies to check-ins) and server messages (mentions of the
    bot): no privileged intent, no member list.

    A DM's text reaches the bot without the privileged message content intent.
    """
    intents = discord.Intents.none()
    intents.guilds = True
    intents.dm_messages = True
    # Messages that mention the bot, for conversation in servers. Every server message's event
    # arrives, but without its text unless it mentions the bot: no privileged intent needed.
    intents.guild_messages = True
    return intents


def _server_written_in(interaction: discord.Interaction) -> int | None:
    """The server a member's write counts for in /stats: where they wrote, unless that server
    never installed the bot (a member using their own install there)."""
    in_server = interaction.guild_id is not None and interaction.is_guild_integration()
    return interaction.guild_id if in_server else None


class CrossroadsBot(commands.AutoShardedBot):
    """The bot, as one process running some or all of its shards (`shard_ids`; all of them
    when None, `shard_count` of them, or Discord's recommended count when that is None too).
    Every process serves the interactions of its shards' servers (and shard 0's DMs); timed
    jobs are claimed in the database, so each runs once however many processes there are."""

    def __init__(
        self,
        *,
        database: Database,
        content: Content,
        cipher: TextCipher,
        clock: Clock,
        dev_guild_id: int | None = None,
        sync: SyncPolicy = SyncPolicy.AUTO,
        tick_seconds: float | None = 15.0,
        job_lease: timedelta = timedelta(seconds=90),
        requests_per_second: float = 50.0,
        shard_count: int | None = None,
        shard_ids: list[int] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        # What the framework counts (cogs.core.metrics): nowhere unless given a registry that
        # is scraped (cogs.core.prometheus); its HTTP trace counts 429s.
        metrics = metrics if metrics is not None else Metrics()
        super().__init__(
            shard_count=shard_count,
            shard_ids=shard_ids,  # type: ignore[arg-type]  # None means all, as documented
            command_prefix=commands.when_mentioned,
            help_command=None,
            intents=bot_intents(),
            tree_cls=CrossroadsTree,
            allowed_contexts=ANYWHERE,
            allowed_installs=ANY_INSTALL,
            allowed_mentions=discord.AllowedMentions.none(),
            member_cache_flags=discord.MemberCacheFlags.none(),
            chunk_guilds_at_startup=False,
            max_messages=None,
            http_trace=metrics.http_trace(),  # type: ignore[arg-type]  # None: its default
        )
        self.metrics = metrics
        self.database = database
        self.content = content
        self.cipher = cipher
        self.clock = clock
        self.router = Router()
        self.dev_guild_id = dev_guild_id
        self.sync_policy = sync
        # Timed jobs: how often the loop looks for due work (None: never by itself, for tests
        # that tick it explicitly), how long a claim is held, and Discord's global request
        # limit, shared by every process of this bot.
        self.tick_seconds = tick_seconds
        self.job_lease = job_lease
        self.requests_per_second = requests_per_second
        # Chart workers, shared by /progress and the year-end summary; started on first use.
        self.charts = Charts(clock=clock)
        # What members write in their own words: the matcher, and their last messages.
        self.conversation = Conversation(content, clock)

    async def setup_hook(self) -> None:
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        if self.sync_policy is SyncPolicy.FORCE or (
            # Commands belong to the application, not a shard: the process that runs shard 0
            # keeps them current, so processes starting together don't all sync.
            self.sync_policy is SyncPolicy.AUTO and (self.shard_ids is None or 0 in self.shard_ids)
        ):
            if self.application_id is None:  # login() sets it before running this hook
                raise discord.ClientException("commands can only be synced once logged in")
            await sync_commands(
                self.tree,
                database=self.database,
                clock=self.clock,
                application_id=self.application_id,
                guild_id=self.dev_guild_id,
                force=self.sync_policy is SyncPolicy.FORCE,
            )

    @asynccontextmanager
    async def member_transaction(
        self, interaction: discord.Interaction
    ) -> AsyncIterator[AsyncSession]:
        """A write on behalf of the member who pressed or typed. In a server it also records
        that they used the bot there: /stats counts members by where they wrote."""
        guild_id = _server_written_in(interaction)
        async with self.member_write(interaction.user.id, guild_id=guild_id) as session:
            yield session

    @asynccontextmanager
    async def member_core_write(
        self, interaction: discord.Interaction
    ) -> AsyncIterator[AsyncConnection]:
        """member_transaction on a Core connection, without the ORM Session: for hot paths
        whose statements are all Core (a reflection saved). The same locks, in the same order."""
        async with self.database.write() as connection:
            await lock_and_remember(
                connection,
                user_id=interaction.user.id,
                guild_id=_server_written_in(interaction),
                now=self.clock.now(),
            )
            yield connection

    @asynccontextmanager
    async def member_write(
        self, user_id: int, *, guild_id: int | None = None
    ) -> AsyncIterator[AsyncSession]:
        """One transaction writing a member's rows, in the lock order of db.locks: the
        member's own row first, then the server they wrote in, then whatever the caller
        writes. So two of a member's actions at once take turns instead of deadlocking."""
        async with self.database.transaction() as session:
            now = self.clock.now()
            if guild_id is None:
                await lock_member(session, user_id, now=now)
            else:
                # Locks the member's row first, then records the server: on PostgreSQL in one
                # statement, a round trip fewer on every command in a server.
                await remember_member(session, guild_id=guild_id, user_id=user_id, now=now)
            yield session

    def read_for(
        self, interaction: discord.Interaction
    ) -> AbstractAsyncContextManager[AsyncSession]:
        """A read on a member's behalf. Before the interaction's first answer it is bounded,
        so a slow or unreachable database still leaves time to tell them so (Discord allows
        three seconds); after it (deferred, say), it may take as long as it needs."""
        within = None if interaction.response.is_done() else BEFORE_ANSWER_S
        return self.database.read(within=within)

    def wake_timed_jobs(self) -> None:
        """Look for due timed jobs now (the sandbox calls this after moving the clock)."""
        self.dispatch("timed_jobs_wake")

    async def close(self) -> None:
        await super().close()
        await self.charts.close()

    async def on_ready(self) -> None:
        log.info(
            "connected as %s (%s) to %d servers, shards %s of %s",
            self.user,
            self.application_id,
            len(self.guilds),
            ",".join(map(str, sorted(self.shards))),
            self.shard_count,
        )

    async def on_message(self, message: discord.Message, /) -> None:
        """No text commands: a message that mentions the bot is conversation (cogs.chat), not
        a prefix (discord.py's default would look each one up as a command)."""

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        if interaction.type in (
            discord.InteractionType.component,
            discord.InteractionType.modal_submit,
        ):
            await self.router.dispatch(interaction)
