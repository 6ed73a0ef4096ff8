"""/config: moderators decide where and how Crossroads speaks in their server.

Every change is checked twice (Discord's default_member_permissions, then the member's
permissions in code), applied with its audit row in one transaction, and answered privately.
"""

import logging

import discord
from discord import app_commands
from discord.ext import commands

from advice.errors import InvalidInput
from advice.schedule import WEEKDAYS
from advice.weekly import point_of_the_week
from cogs.core.bot import CrossroadsBot
from cogs.core.checks import SERVER_INSTALL, SERVER_ONLY, missing_in, require_moderator
from cogs.core.cog import FeatureCog
from cogs.core.reply import acknowledge, reply
from cogs.core.style import COLOUR, timestamp, when
from cogs.core.zones import known_zone, zone_choices
from db import StorageUnavailable
from db import guild_settings as store
from db.guild_settings import Change, Setting
from db.models import GuildSettings, WeeklyPost
from db.weekly_posts import pending_post

log = logging.getLogger(__name__)

MODERATORS = discord.Permissions(manage_guild=True)
EMBED_FIELD_MAX = 1024


def changed_line(change: Change) -> str:
    if not change.changed:
        return f"**{change.setting}** is already {change.new}; nothing changed."
    return f"**{change.setting}**: {change.old} → {change.new}"


class Config(FeatureCog):
    config = app_commands.Group(
        name="config",
        description="Moderators: where and how Crossroads speaks in this server",
        guild_only=True,  # dm_permission: false, for clients that predate `contexts`
        allowed_contexts=SERVER_ONLY,
        allowed_installs=SERVER_INSTALL,
        default_permissions=MODERATORS,
    )

    async def _change(
        self, interaction: discord.Interaction, setting: Setting, **values: object
    ) -> Change:
        guild_id = require_moderator(interaction)
        await acknowledge(interaction, thinking=True)
        async with self.bot.database.transaction() as session:
            return await store.change(
                session,
                guild_id=guild_id,
                user_id=interaction.user.id,
                setting=setting,
                now=self.bot.clock.now(),
                **values,
            )

    def _postable(self, interaction: discord.Interaction, channel_id: int) -> None:
        """Refuse a channel of another server, or one the bot cannot post in, naming why."""
        channel = self.bot.get_channel(channel_id)
        if not isinstance(channel, discord.TextChannel) or channel.guild.id != interaction.guild_id:
            raise InvalidInput(
                "I can't find that channel in this server. Pick a text or announcement channel "
                "from the list."
            )
        missing = missing_in(channel)
        if missing:
            raise InvalidInput(
                f"I can't post in {channel.mention}: I'm missing **{', '.join(missing)}** there. "
                "Give my role those permissions in the channel's settings and try again. "
                "Nothing was changed."
            )

    # --- the commands ------------------------------------------------------------------------

    @config.command(name="show", description="This server's Crossroads settings and recent changes")
    async def show(self, interaction: discord.Interaction) -> None:
        guild_id = require_moderator(interaction)
        await acknowledge(interaction, thinking=True)
        async with self.bot.database.read() as session:
            settings = await store.server_settings(session, guild_id)
            changes = await store.recent_changes(session, guild_id)
            post = await pending_post(session, guild_id)
        embed = discord.Embed(title="Crossroads in this server", colour=COLOUR)
        embed.add_field(name="Channel", value=self._channel_value(settings), inline=False)
        embed.add_field(
            name="Check-ins",
            value=f"Starting them here is **{store.describe(settings, Setting.CHECKINS)}**. "
            "Members who already have them keep them: DMs are theirs.",
            inline=False,
        )
        embed.add_field(name="Weekly post", value=self._weekly_value(settings, post), inline=False)
        embed.add_field(
            name="Chat",
            value=f"**{store.describe(settings, Setting.CHAT)}**: "
            + (
                "I answer messages that mention me, publicly and briefly, pinging nobody"
                + (
                    " (only in the channel above, since restrict is on)."
                    if settings.restricted
                    else "."
                )
                if settings.chat_enabled
                else "I don't answer messages that mention me here; DMs work as always."
            ),
            inline=False,
        )
        embed.add_field(
            name="Restrict",
            value=f"**{store.describe(settings, Setting.RESTRICT)}**: "
            + (
                "`/share` works only in the channel above; private commands work anywhere."
                if settings.restricted
                else "`/share` works from any channel and posts in the channel above."
            ),
            inline=False,
        )
        history = [
            f"{timestamp(c.created_at, 'f')} · "
            + (f"<@{c.moderator_id}>" if c.moderator_id else "Crossroads itself")
            + f" · **{c.setting}**: {c.old_value} → {c.new_value}"
            for c in changes
        ]
        embed.add_field(
            name="Last changes",
            value="\n".join(history)[:EMBED_FIELD_MAX] if history else "None yet.",
            inline=False,
        )
        await reply(interaction, embed=embed)

    def _channel_value(self, settings: GuildSettings) -> str:
        if settings.channel_id is None:
            return "Not set. `/share` and the weekly post need one: `/config channel`."
        channel = self.bot.get_channel(settings.channel_id)
        if not isinstance(channel, discord.TextChannel):
            return f"<#{settings.channel_id}>: ⚠️ I can't find it any more. Pick another one."
        missing = missing_in(channel)
        if missing:
            return f"{channel.mention}: ⚠️ I'm missing **{', '.join(missing)}** there."
        return f"{channel.mention}: shared reflections and the weekly post go here."

    def _weekly_value(self, settings: GuildSettings, post: WeeklyPost | None) -> str:
        lines = [f"**{store.describe(settings, Setting.WEEKLY_POST)}**"]
        if settings.weekly_post_enabled:
            slug = point_of_the_week(list(self.bot.content.slugs), settings.weekly_posts_made)
            title = self.bot.content.point(slug).title
            if post is not None:
                lines.append(f"Next: {when(post.due_at)}, on **{title}**.")
        elif settings.weekly_problem:
            lines.append(
                f"⚠️ I switched it off: {settings.weekly_problem} Fix that, then "
                "`/config weekly-post enabled:true`."
            )
        return "\n".join(lines)

    @config.command(
        name="channel", description="The channel for shared reflections and the weekly post"
    )
    @app_commands.describe(channel="A text or announcement channel I can post in")
    async def channel(self, interaction: discord.Interaction, channel: discord.TextChannel) -> None:
        require_moderator(interaction)
        self._postable(interaction, channel.id)
        change = await self._change(interaction, Setting.CHANNEL, channel_id=channel.id)
        await reply(interaction, changed_line(change))

    @config.command(name="checkins", description="Allow or stop /checkin start from this server")
    @app_commands.describe(enabled="Whether members may start DM check-ins from this server")
    async def checkins(self, interaction: discord.Interaction, enabled: bool) -> None:
        change = await self._change(interaction, Setting.CHECKINS, checkins_enabled=enabled)
        note = "" if enabled else " Members who already have check-ins keep them."
        await reply(interaction, changed_line(change) + note)

    @config.command(name="weekly-post", description="A weekly point of the essay in the channel")
    @app_commands.autocomplete(timezone=zone_choices)
    @app_commands.describe(
        enabled="Post a point of the week",
        weekday="The day (default: Monday, or what was set before)",
        hour="The hour, 0 to 23 (default: 17, or what was set before)",
        timezone="The time zone of that hour (default: UTC), e.g. Berlin, New York",
    )
    @app_commands.choices(
        weekday=[app_commands.Choice(name=name, value=i) for i, name in enumerate(WEEKDAYS)]
    )
    async def weekly_post(
        self,
        interaction: discord.Interaction,
        enabled: bool,
        weekday: int | None = None,
        hour: app_commands.Range[int, 0, 23] | None = None,
        timezone: str | None = None,
    ) -> None:
        guild_id = require_moderator(interaction)
        # The client's choices and ranges are a promise, not a guarantee: check them again.
        if weekday is not None and not 0 <= weekday <= 6:
            raise InvalidInput("Pick a weekday from the list.")
        if hour is not None and not 0 <= hour <= 23:
            raise InvalidInput("The hour is 0 to 23.")
        zone_name = known_zone(timezone) if timezone is not None else None
        await acknowledge(interaction, thinking=True)
        if enabled:
            async with self.bot.database.read() as session:
                channel_id = (await store.server_settings(session, guild_id)).channel_id
            if channel_id is not None:  # without one, store.change refuses, under its lock
                self._postable(interaction, channel_id)
        values: dict[str, object] = {"weekly_post_enabled": enabled}
        for column, value in (
            ("weekly_weekday", weekday),
            ("weekly_hour", hour),
            ("weekly_timezone", zone_name),
        ):
            if value is not None:
                values[column] = value
        change = await self._change(interaction, Setting.WEEKLY_POST, **values)
        lines = [changed_line(change)]
        if enabled:
            async with self.bot.database.read() as session:
                post = await pending_post(session, guild_id)
            if post is not None:
                lines.append(f"The next one: {when(post.due_at)}.")
        await reply(interaction, "\n".join(lines))

    @config.command(name="chat", description="Whether I answer messages that mention me here")
    @app_commands.describe(enabled="Answer messages that mention Crossroads in this server")
    async def chat(self, interaction: discord.Interaction, enabled: bool) -> None:
        change = await self._change(interaction, Setting.CHAT, chat_enabled=enabled)
        note = (
            " Members can still talk to me in DMs."
            if not enabled
            else " With `/config restrict` on, only in the configured channel."
        )
        await reply(interaction, changed_line(change) + (note if change.changed else ""))

    @config.command(name="restrict", description="Keep /share to the configured channel")
    @app_commands.describe(enabled="Whether public output stays in the configured channel")
    async def restrict(self, interaction: discord.Interaction, enabled: bool) -> None:
        change = await self._change(interaction, Setting.RESTRICT, restricted=enabled)
        await reply(interaction, changed_line(change))

    @config.command(
        name="reset", description="Every setting back to its default (changes are kept)"
    )
    async def reset(self, interaction: discord.Interaction) -> None:
        guild_id = require_moderator(interaction)
        await acknowledge(interaction, thinking=True)
        async with self.bot.database.transaction() as session:
            changes = await store.reset(
                session, guild_id=guild_id, user_id=interaction.user.id, now=self.bot.clock.now()
            )
        if not changes:
            await reply(interaction, "Everything was already at its default; nothing changed.")
            return
        lines = ["Back to the defaults:", *(f"• {changed_line(c)}" for c in changes)]
        lines.append("The audit trail keeps the old values (`/config show`).")
        await reply(interaction, "\n".join(lines))

    # --- leaving ---------------------------------------------------------------------------

    @commands.Cog.listener()
    async def on_guild_remove(self, guild: discord.Guild) -> None:
        """Removed from a server: forget it (members' own entries stay theirs)."""
        await self._forget(guild.id)

    async def _forget(self, guild_id: int) -> None:
        async with self.bot.database.transaction() as session:
            await store.forget_server(session, guild_id)
        log.info("left server %s; its settings, changes, posts and member list are gone", guild_id)
        self.bot.dispatch("server_forgotten", guild_id)  # for whoever waits on it (the tests)

    @commands.Cog.listener()
    async def on_shard_ready(self, shard_id: int) -> None:
        """A server that removed the bot while it was down sent no event. Once a shard's
        servers have arrived (READY lists every one, available or not), forget those of its
        own servers that are not among them. Only its own: a server belongs to shard
        (id >> 22) % shard count, and another process's servers are not this one's to judge."""
        forgotten: list[int] = []
        try:
            forgotten = await self._forget_servers_gone(shard_id)
        except StorageUnavailable:
            log.warning("shard %s: could not check for servers left while down", shard_id)
        if forgotten:
            log.info("shard %s: forgot %d servers left while down", shard_id, len(forgotten))
        self.bot.dispatch("servers_checked", shard_id, forgotten)

    async def _forget_servers_gone(self, shard_id: int) -> list[int]:
        count, application_id = self.bot.shard_count, self.bot.application_id
        if count is None or application_id is None:  # both are known once a shard is ready
            return []
        async with self.bot.database.transaction() as session:
            if not await store.is_this_applications(
                session, application_id, now=self.bot.clock.now()
            ):
                log.warning(
                    "the database belongs to another Discord application than %s: servers "
                    "this bot is not in are kept (set DATABASE_URL to this bot's database)",
                    application_id,
                )
                return []
            kept = await store.servers_kept(session, shard_id=shard_id, shard_count=count)
        # Read after the query: a server joined meanwhile is here already.
        gone = sorted(kept - {guild.id for guild in self.bot.guilds})
        for guild_id in gone:
            if self.bot.get_guild(guild_id) is None:
                await self._forget(guild_id)
        return gone


async def setup(bot: CrossroadsBot) -> None:
    await bot.add_cog(Config(bot))
