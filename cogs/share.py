"""/share: a member posts one of their own reflections to the server's channel, after a preview.

Sharing is the member's own act (the essay's "build your own outlet" and "talk with real
people"): nothing of theirs is ever public otherwise. The post pings nobody, whatever the text
holds, and carries only the member's display name, the point and the text.
"""

import logging

import discord
from discord import app_commands

from advice.errors import InvalidInput
from cogs.core.bot import CrossroadsBot
from cogs.core.checks import require_server
from cogs.core.cog import FeatureCog
from cogs.core.entries import entry_choices, own_entry, point_title
from cogs.core.reply import acknowledge, reply
from cogs.core.routing import arg_int, button, confirmation, owner_only
from cogs.core.style import PERSONAL_COLOUR
from db.guild_settings import server_settings
from db.journal import Entry

log = logging.getLogger(__name__)

POST_ROUTE = "share-post"
CANCEL_ROUTE = "share-cancel"
NO_CHANNEL = (
    "This server has no channel for shared reflections yet, so nothing was posted. "
    "A moderator can choose one with `/config channel`."
)


def shared_embed(author: str, title: str, entry: Entry) -> discord.Embed:
    embed = discord.Embed(title=title[:256], description=entry.text, colour=PERSONAL_COLOUR)
    embed.set_author(name=f"{author[:200]} shared a reflection")
    embed.set_footer(text="Shared with /share · Crossroads")
    return embed


def nonce_for(preview_message_id: int) -> str:
    """One post per preview, however often Share is pressed (Discord drops a repeated nonce)."""
    return f"cr-sh-{preview_message_id}"


class Share(FeatureCog):
    async def _where(self, interaction: discord.Interaction) -> int:
        """The channel shared reflections go to, if sharing is possible from here; else a
        clear refusal."""
        guild_id = require_server(interaction)
        async with self.bot.read_for(interaction) as session:
            settings = await server_settings(session, guild_id)
        if settings.channel_id is None:
            raise InvalidInput(NO_CHANNEL)
        if self.bot.get_channel(settings.channel_id) is None:  # deleted since it was chosen
            raise InvalidInput(
                f"The channel for shared reflections (<#{settings.channel_id}>) is gone, so "
                "nothing was posted. A moderator can choose another with `/config channel`."
            )
        if settings.restricted and interaction.channel_id != settings.channel_id:
            raise InvalidInput(
                f"In this server, sharing happens in <#{settings.channel_id}>: "
                "run `/share` there. Nothing was posted."
            )
        return settings.channel_id

    @app_commands.command(name="share", description="Post one of your reflections to this server")
    @app_commands.describe(entry="The reflection to share: start typing its point, date or words")
    @app_commands.guild_only()  # dm_permission: false, for clients that predate `contexts`
    @app_commands.allowed_contexts(guilds=True, dms=False, private_channels=False)
    @app_commands.allowed_installs(guilds=True, users=False)
    async def share(self, interaction: discord.Interaction, entry: str) -> None:
        require_server(interaction)
        await acknowledge(interaction, thinking=True)
        channel_id = await self._where(interaction)
        found = await own_entry(self.bot, interaction, entry)
        owner = interaction.user.id
        view = confirmation(
            owner,
            confirm=(POST_ROUTE, "Share it"),
            cancel=(CANCEL_ROUTE, "Cancel"),
            args=(found.id,),
            style=discord.ButtonStyle.success,
        )
        preview = shared_embed(
            interaction.user.display_name, point_title(self.bot.content, found.point), found
        )
        await reply(
            interaction,
            f"This is how it will look in <#{channel_id}>, for everyone there to read. Share it?",
            embed=preview,
            view=view,
        )

    @share.autocomplete("entry")
    async def _choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await entry_choices(self.bot, interaction, current)

    @button(POST_ROUTE)
    async def _post(self, interaction: discord.Interaction, args: list[str]) -> None:
        owner_only(interaction, args)
        entry_id = arg_int(args, 1)
        await acknowledge(interaction)  # reads and a post may outlast Discord's 3 seconds
        channel_id = await self._where(interaction)
        found = await own_entry(self.bot, interaction, str(entry_id))
        embed = shared_embed(
            interaction.user.display_name, point_title(self.bot.content, found.point), found
        )
        channel = self.bot.get_partial_messageable(
            channel_id, guild_id=interaction.guild_id, type=discord.ChannelType.text
        )
        source = interaction.message.id if interaction.message else interaction.id
        try:
            posted = await channel.send(
                embed=embed,
                allowed_mentions=discord.AllowedMentions.none(),
                nonce=nonce_for(source),
            )
        except (discord.Forbidden, discord.NotFound) as error:
            log.info("share to %s refused: %s", channel_id, error)
            raise InvalidInput(
                f"I can't post in <#{channel_id}> right now (the channel is gone, or I "
                "lost permission there), so nothing was posted. Please tell a moderator."
            ) from None
        await interaction.edit_original_response(
            content=f"Shared in <#{channel_id}>: {posted.jump_url}", embed=None, view=None
        )

    @button(CANCEL_ROUTE)
    async def _cancel(self, interaction: discord.Interaction, args: list[str]) -> None:
        owner_only(interaction, args)
        await interaction.response.edit_message(
            content="Not shared. Nothing was posted.", embed=None, view=None
        )


async def setup(bot: CrossroadsBot) -> None:
    await bot.add_cog(Share(bot))
