"""What every server-facing feature checks: who may configure, and where the bot may speak."""

import discord

from advice.errors import UserFacingError

# Discord's own names, so a moderator can find each one in the channel's settings.
NEEDED_IN_CHANNEL = (
    ("view_channel", "View Channel"),
    ("send_messages", "Send Messages"),
    ("embed_links", "Embed Links"),
)


# Where commands may be used. Every command is private to its member unless it says otherwise,
# so by default (the tree's) a command works anywhere: in servers, in DMs with the bot, and for
# a person who installed Crossroads to their own account with no server at all.
ANYWHERE = discord.app_commands.AppCommandContext(guild=True, dm_channel=True, private_channel=True)
ANY_INSTALL = discord.app_commands.AppInstallationType(guild=True, user=True)
# What acts on a server (/config, /stats, /share): only where the bot is installed in it.
SERVER_ONLY = discord.app_commands.AppCommandContext(
    guild=True, dm_channel=False, private_channel=False
)
SERVER_INSTALL = discord.app_commands.AppInstallationType(guild=True, user=False)


class NotAllowed(UserFacingError):
    """The member may not do this here; nothing was changed."""


def require_server(interaction: discord.Interaction) -> int:
    """The server the interaction came from; a clear refusal from a DM."""
    if interaction.guild_id is None:
        raise NotAllowed("This command works inside a server, not in direct messages.")
    return interaction.guild_id


def require_moderator(interaction: discord.Interaction) -> int:
    """The server's id, if the member may manage it.

    Discord hides moderator commands by `default_member_permissions`, but a server can give
    them to anyone in its Integrations settings, so the permission is checked again here
    from what Discord says the member holds in this channel.
    """
    guild_id = require_server(interaction)
    permissions = interaction.permissions
    if not (permissions.manage_guild or permissions.administrator):
        raise NotAllowed(
            "Only members with the **Manage Server** permission can do this. Nothing was changed."
        )
    return guild_id


def missing_in(channel: discord.abc.GuildChannel) -> list[str]:
    """The permissions the bot lacks to post in `channel`, by Discord's names."""
    me = channel.guild.me
    if me is None:  # not in the cache: assume nothing rather than promise a post
        return [name for _, name in NEEDED_IN_CHANNEL]
    permissions = channel.permissions_for(me)
    return [name for attribute, name in NEEDED_IN_CHANNEL if not getattr(permissions, attribute)]
